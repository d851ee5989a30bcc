#!/usr/bin/env bash
# Make sure Debian's chromium is at /usr/bin/chromium for the browser tests.
#
# Installs the Debian package with apt-get when it is missing and this runs as root. Otherwise
# prints what to install and exits 0, so that the browser tests skip with a reason instead of
# failing the whole run. Exits non-zero only when apt-get itself fails.
# Playwright's own browser download (`playwright install`) is never used.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    echo "chromium: found $CHROMIUM"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "chromium: $CHROMIUM is missing, so the browser tests will be skipped." >&2
    echo "chromium: to run them, install Debian's package as root: apt-get install chromium" >&2
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: $CHROMIUM is missing and apt-get is not available, so the browser tests will be" \
        "skipped. Install a chromium build at $CHROMIUM to run them." >&2
    exit 0
fi

echo "chromium: installing Debian's chromium package with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium

if [[ ! -x "$CHROMIUM" ]]; then
    echo "chromium: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
