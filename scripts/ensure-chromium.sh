#!/usr/bin/env bash
# Make sure Debian's Chromium is there for the browser tests (tests/web, Playwright
# with executable_path=/usr/bin/chromium; `playwright install` downloads nothing here).
#
#  * chromium present (or LIAISON_CHROMIUM names one) -> nothing to do.
#  * as root with apt-get -> apt-get install chromium.
#  * otherwise -> say the browser tests will be SKIPPED, exit 0. Under CI (CI=true, 1
#    or yes) this is an error (exit 1) instead: CI must never silently skip the browser
#    tests.
set -euo pipefail

BROWSER="${LIAISON_CHROMIUM:-/usr/bin/chromium}"

# CI services set CI=true; some set CI=1 or yes (tests/conftest.py reads it the same way).
in_ci() { case "$(echo "${CI:-}" | tr '[:upper:]' '[:lower:]' | tr -d '[:space:]')" in
    true|1|yes) return 0 ;; *) return 1 ;; esac; }

log() { echo "ensure-chromium: $*" >&2; }

unavailable() {
    if in_ci; then
        log "ERROR: Chromium is required in CI (CI=${CI}) but unavailable: $*"
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
