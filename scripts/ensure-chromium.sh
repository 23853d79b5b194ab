#!/usr/bin/env bash
# Make sure Debian's Chromium is there for the browser tests (tests/web, Playwright
# with executable_path=/usr/bin/chromium; `playwright install` downloads nothing here).
#
#  * chromium present (or LIAISON_CHROMIUM names one) -> nothing to do.
#  * as root with apt-get -> apt-get install chromium.
#  * otherwise -> say the browser tests will be SKIPPED, exit 0. With CI=true this is
#    an error (exit 1) instead: CI must never silently skip the browser tests.
set -euo pipefail

BROWSER="${LIAISON_CHROMIUM:-/usr/bin/chromium}"

log() { echo "ensure-chromium: $*" >&2; }

unavailable() {
    if [[ "${CI:-}" == "true" ]]; then
        log "ERROR: Chromium is required in CI (CI=true) but unavailable: $*"
        exit 1
    fi
    log "Chromium unavailable: $*"
    log "browser tests (tests/web) will be SKIPPED. (Run as root on Debian, or install" \
        "chromium, or set LIAISON_CHROMIUM to a Chromium binary.)"
    exit 0
}

if [[ -x "$BROWSER" ]] || command -v "$BROWSER" >/dev/null 2>&1; then
    exit 0
fi
[[ "$(id -u)" -eq 0 ]] || unavailable "$BROWSER not found and not root (cannot apt-get install chromium)"
command -v apt-get >/dev/null 2>&1 || unavailable "$BROWSER not found and no apt-get"
log "installing chromium with apt-get ..."
if ! { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    unavailable "apt-get install chromium failed"
fi
[[ -x "$BROWSER" ]] || unavailable "chromium installed but $BROWSER is not there"
log "ok: $("$BROWSER" --version 2>/dev/null || echo "$BROWSER")"
