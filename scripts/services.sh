#!/usr/bin/env bash
# Local services for tests and CI: a throwaway redis-server on loopback.
#
#   scripts/services.sh start    install redis-server (apt) when missing, start it on
#                                127.0.0.1 on a free port (daemonized, no persistence);
#                                idempotent: a running one is kept. Prints its URL.
#   scripts/services.sh url      print the URL of the running server (exit 1 if none)
#   scripts/services.sh stop     stop the server this script started
#
# State (pid, log, URL) lives in $SHELFWISE_SERVICES_DIR (default ./.services). Tests
# read the URL from $SHELFWISE_TEST_REDIS_URL, else from .services/redis.url, and
# start the server through this script when neither answers.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${SHELFWISE_SERVICES_DIR:-$ROOT/.services}"
PID_FILE="$DIR/redis.pid"
URL_FILE="$DIR/redis.url"
LOG_FILE="$DIR/redis.log"

log() { echo "services: $*" >&2; }

python_bin() {
  if [[ -x "$ROOT/.venv/bin/python" ]]; then echo "$ROOT/.venv/bin/python"; else echo python3; fi
}

# PING over a raw socket, so redis-cli is not needed.
ping_port() {
  "$(python_bin)" - "$1" <<'EOF'
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
EOF
}

free_port() {
  "$(python_bin)" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

running_url() {
  [[ -f "$URL_FILE" && -f "$PID_FILE" ]] || return 1
  local url port
  url="$(cat "$URL_FILE")"
  port="${url##*:}"
  port="${port%%/*}"
  kill -0 "$(cat "$PID_FILE")" 2>/dev/null && ping_port "$port" && echo "$url"
}

install_redis() {
  command -v redis-server >/dev/null && return 0
  if ! command -v apt-get >/dev/null; then
    log "redis-server is missing and apt-get is not available; install redis-server yourself"
    return 1
  fi
  local sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      log "redis-server is missing; run: sudo apt-get install -y redis-server"
      return 1
    fi
  fi
  log "installing redis-server with apt-get"
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null; then
    $sudo apt-get update -q >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null
  fi
}

start() {
  if url="$(running_url)"; then echo "$url"; return 0; fi
  install_redis
  mkdir -p "$DIR"
  local port
  port="$(free_port)"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$PID_FILE" \
    --logfile "$LOG_FILE" --dir "$DIR" --save '' --appendonly no --protected-mode yes
  for _ in $(seq 50); do
    if ping_port "$port"; then
      echo "redis://127.0.0.1:$port/0" >"$URL_FILE"
      log "redis-server on 127.0.0.1:$port (pid $(cat "$PID_FILE"))"
      cat "$URL_FILE"
      return 0
    fi
    sleep 0.1
  done
  log "redis-server did not answer on port $port; see $LOG_FILE"
  return 1
}

stop() {
  if [[ -f "$PID_FILE" ]]; then
    kill "$(cat "$PID_FILE")" 2>/dev/null || true
    rm -f "$PID_FILE" "$URL_FILE"
    log "redis-server stopped"
  fi
}

case "${1:-start}" in
  start) start ;;
  url) running_url ;;
  stop) stop ;;
  *) echo "usage: $0 [start|url|stop]" >&2; exit 2 ;;
esac
