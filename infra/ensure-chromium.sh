#!/usr/bin/env bash
# `make test` runs this before the suite: the console's tests drive Debian's `chromium` (never a downloaded
# browser), so it is installed here when missing, as the Makefile installs uv and Postgres. Installing a system
# package needs root or passwordless sudo; without either, stop with one line that says what to run.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

install="apt-get update && apt-get install -y --no-install-recommends chromium"
_fail() {
    echo "make test: $1" >&2
    exit 1
}

if ! command -v apt-get >/dev/null 2>&1; then
    _fail "the console's tests need Chromium as \`chromium\` on PATH, and this is not a Debian machine: install it"
elif [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    _fail "the console's tests need Debian's chromium: run \`sudo sh -c '$install'\` (or run make test as root or with passwordless sudo, which installs it)"
fi

echo "make test: installing Debian's chromium for the console's tests (${as_root[*]:-as root} apt-get)"
"${as_root[@]}" apt-get update -qq || _fail "apt-get update failed (its error is above): fix that, then run make test again"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium ||
    _fail "apt-get could not install chromium (its error is above): fix that, then run make test again"
command -v chromium >/dev/null 2>&1 || _fail "apt-get installed chromium but \`chromium\` is not on PATH; add /usr/bin"
