#!/usr/bin/env bash
# Install Debian's Chromium for the operator console's browser tests
# (tests/unit/serve/console/: Playwright for Python drives the system browser through
# `executable_path`; `playwright install` downloads a browser, which cannot work offline),
# and a CJK font (fonts-wqy-zenhei, 7 MB) so Chinese titles in screenshots are not boxes.
#
#   scripts/install_chromium.sh     install what is missing; prints the browser's path
#
# Idempotent and quiet. Exit 1 with a message when it is missing and apt-get (or root)
# is not there: the browser tests then skip with that reason, they never fail for it.
set -euo pipefail

log() { echo "install_chromium: $*" >&2; }

browser="${SHELFWISE_CHROMIUM:-/usr/bin/chromium}"
missing=()
[[ -x "$browser" ]] || missing+=(chromium)
[[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]] || missing+=(fonts-wqy-zenhei)
if ((${#missing[@]} == 0)); then echo "$browser"; exit 0; fi
# the browser without the font still runs the tests: only CJK text renders as boxes
cannot() { log "$1"; if [[ -x "$browser" ]]; then echo "$browser"; exit 0; fi; exit 1; }

if ! command -v apt-get >/dev/null; then
  cannot "${missing[*]} missing and apt-get is not available; install them yourself"
fi
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    cannot "${missing[*]} missing; run: sudo apt-get install -y --no-install-recommends ${missing[*]}"
  fi
fi
install() {
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
}
log "installing ${missing[*]} with apt-get"
if ! install; then
  $sudo apt-get update -q >/dev/null
  install
fi
[[ -x "$browser" ]] || { log "chromium installed but $browser is missing"; exit 1; }
echo "$browser"
