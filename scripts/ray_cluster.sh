#!/usr/bin/env bash
# A real two-node Ray cluster on loopback, for tests and benchmarks (`compute.engine: ray`).
#
#   scripts/ray_cluster.sh start [DIR]        head node on 127.0.0.2 + worker node on
#                                             127.0.0.3, each its own raylet with
#                                             $RAY_CLUSTER_CPUS CPUs (default 1); prints
#                                             the address (HOST:PORT) for compute.address
#   scripts/ray_cluster.sh address [DIR]      print the address of the running cluster
#   scripts/ray_cluster.sh stop [DIR]         stop both nodes (drain, then SIGKILL leftovers)
#   scripts/ray_cluster.sh kill-worker [DIR]  SIGKILL every process of the worker node at
#                                             once: a lost machine, for fault tests
#   scripts/ray_cluster.sh add-worker [DIR]   start the worker node again
#
# DIR (default $SHELFWISE_RAY_DIR, else /tmp/shelfwise-ray-$UID) holds the pids, logs and
# the nodes' Ray temp folders. Keep it short: Ray's unix sockets live under it and a
# socket path may not exceed 107 bytes.
#
# Why 127.0.0.2 and .3 and not 127.0.0.1: Ray turns "127.0.0.1"/"localhost" into the
# machine's outward address, so the cluster would talk over the network interface; other
# loopback addresses are taken as given. Two addresses also make the nodes look like two
# hosts to Ray's scheduler. Every port is picked free, so several clusters can run at once
# (one per DIR). Each node runs under `ray start --block` in a process group of its own:
# SIGTERM to that process drains and stops the node, and the group id finds any leftover.
#
# Token authentication is on (RAY_AUTH_MODE=token, the token in ~/.ray/auth_token,
# generated when missing): some of the nodes' ports listen on every interface. Both
# nodes get the mode explicitly, as Ray turns it on by itself only for a head that finds
# a token. A driver joining by address needs RAY_AUTH_MODE=token in its environment too.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${2:-${SHELFWISE_RAY_DIR:-/tmp/shelfwise-ray-$(id -u)}}"
HEAD_IP="${RAY_CLUSTER_HEAD_IP:-127.0.0.2}"
WORKER_IP="${RAY_CLUSTER_WORKER_IP:-127.0.0.3}"
CPUS="${RAY_CLUSTER_CPUS:-1}"
# Small object stores: the defaults (30% of RAM per node) are far more than tests need.
STORE_BYTES="$(( ${RAY_CLUSTER_OBJECT_STORE_MB:-300} * 1024 * 1024 ))"
START_TIMEOUT_S="${RAY_CLUSTER_START_TIMEOUT_S:-180}"
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"

log() { echo "ray_cluster: $*" >&2; }

python_bin() {
  if [[ -x "$ROOT/.venv/bin/python" ]]; then echo "$ROOT/.venv/bin/python"; else echo python3; fi
}

ray_bin() {
  if [[ -n "${RAY:-}" ]]; then echo "$RAY"
  elif [[ -x "$ROOT/.venv/bin/ray" ]]; then echo "$ROOT/.venv/bin/ray"
  elif command -v ray >/dev/null; then command -v ray
  else log "no 'ray' command: pip install -c constraints.txt -e '.[cluster]'"; exit 1
  fi
}

free_port() {
  "$(python_bin)" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

alive() { [[ -f "$DIR/$1.pid" ]] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

# start_node NAME ARGS...: `ray start --block ARGS` in a new session (its own process
# group, id = its pid), then wait until it says it is up, or fail with its log.
start_node() {
  local name="$1"
  shift
  mkdir -p "$DIR/$name"
  : >"$DIR/$name.log"
  setsid "$(ray_bin)" start --block --disable-usage-stats --temp-dir "$DIR/$name" \
    --object-store-memory "$STORE_BYTES" --num-cpus "$CPUS" \
    --dashboard-agent-listen-port "$(free_port)" "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$DIR/$name.pid"
  local waited=0
  until grep -q "block forever" "$DIR/$name.log"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "the $name node exited while starting; its log ($DIR/$name.log):"
      tail -n 30 "$DIR/$name.log" >&2
      return 1
    fi
    if ((waited >= START_TIMEOUT_S * 2)); then
      log "the $name node did not start within ${START_TIMEOUT_S}s; see $DIR/$name.log"
      stop_node "$name"
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

# stop_node NAME: SIGTERM drains the node (Ray waits for its running tasks, at most
# 30 s); whatever is left of its process group after that is killed.
stop_node() {
  local name="$1"
  [[ -f "$DIR/$name.pid" ]] || return 0
  local pid
  pid="$(cat "$DIR/$name.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # 10 s to drain, then the group is killed: a node that ran a test session's tasks
    # could take half a minute to exit on its own, which no test or benchmark needs
    for _ in $(seq 1 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
  fi
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$DIR/$name.pid"
}

start_worker() {
  start_node worker --address "$(cat "$DIR/address")" --node-ip-address "$WORKER_IP"
}

case "${1:-}" in
  start)
    if alive head; then
      log "already running (stop it first)"
      cat "$DIR/address"
      exit 0
    fi
    mkdir -p "$DIR"
    if [[ "$RAY_AUTH_MODE" == token && -z "${RAY_AUTH_TOKEN:-}" ]]; then
      "$(ray_bin)" get-auth-token --generate >/dev/null  # no-op when one exists
    fi
    port="$(free_port)"
    echo "$HEAD_IP:$port" >"$DIR/address"
    # Faster detection of a dead node than the defaults (5 failed checks 3 s apart), so
    # that the tasks of a lost worker are retried elsewhere within seconds.
    RAY_health_check_period_ms=1000 RAY_health_check_failure_threshold=3 \
      start_node head --head --node-ip-address "$HEAD_IP" --port "$port" \
      --include-dashboard=false --dashboard-host 127.0.0.1 --dashboard-port "$(free_port)"
    if ! start_worker; then
      stop_node head
      exit 1
    fi
    cat "$DIR/address"
    ;;
  address)
    alive head || { log "no cluster running under $DIR"; exit 1; }
    cat "$DIR/address"
    ;;
  stop)
    stop_node worker
    stop_node head
    ;;
  kill-worker)
    alive worker || { log "no worker node running under $DIR"; exit 1; }
    kill -KILL -- "-$(cat "$DIR/worker.pid")"
    rm -f "$DIR/worker.pid"
    ;;
  add-worker)
    alive head || { log "no cluster running under $DIR"; exit 1; }
    alive worker && { log "the worker node is already running"; exit 0; }
    start_worker
    ;;
  *)
    echo "usage: $0 start|address|stop|kill-worker|add-worker [DIR]" >&2
    exit 2
    ;;
esac
