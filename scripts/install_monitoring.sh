#!/usr/bin/env bash
# Install Prometheus and Alertmanager for the monitoring tests (tests/unit/monitoring/,
# tests/integration/test_alerting_loop.py): Debian's `prometheus` (prometheus, promtool)
# and `prometheus-alertmanager` (prometheus-alertmanager, amtool) packages, with apt.
#
#   scripts/install_monitoring.sh     install what is missing; prints the promtool path
#
# Idempotent. Services are not started (the tests start their own processes on loopback
# ports); where a package's init script would start one, stop it: it is not ours to run.
# Exit 1 with a message when the tools are missing and apt-get (or root) is not there.
set -euo pipefail

log() { echo "install_monitoring: $*" >&2; }

missing=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null \
  || missing+=(prometheus-alertmanager)
if ((${#missing[@]} == 0)); then command -v promtool; exit 0; fi

if ! command -v apt-get >/dev/null; then
  log "${missing[*]} missing and apt-get is not available; install Prometheus and Alertmanager yourself"
  exit 1
fi
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    log "${missing[*]} missing; run: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
fi
install() {
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
log "installing ${missing[*]} with apt-get"
if ! install; then
  $sudo apt-get update -q >/dev/null
  install
fi
# Debian's packages enable their services; on a CI machine with an init system the ones
# just installed would now listen on :9090 / :9093. Stop those (machines without one:
# nothing to do).
for service in "${missing[@]}"; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    $sudo systemctl stop "$service" || true
  fi
done
command -v promtool
