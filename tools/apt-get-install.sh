#!/usr/bin/env bash
# Installs Debian packages with apt-get, as root or through sudo without a password.
# Exits 1 without a word when it cannot (no apt-get, no such rights): the caller says
# what to install by hand.
set -euo pipefail
command -v apt-get >/dev/null 2>&1 || exit 1
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    exit 1
fi
echo "Installing $* (apt-get)..." >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
