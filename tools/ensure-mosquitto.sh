#!/usr/bin/env bash
# Installs mosquitto, the broker that tests and the simulator start privately, when missing.
set -euo pipefail
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        SUDO="unavailable"
    fi
    if [ "$SUDO" != "unavailable" ]; then
        echo "Installing mosquitto (apt-get)..." >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto >/dev/null
        exit 0
    fi
fi
cat >&2 <<'MSG'
mosquitto (the MQTT broker) is not installed and cannot be installed from here.
Install it, then run the command again:
  Debian/Ubuntu:  sudo apt-get install mosquitto
  macOS:          brew install mosquitto
MSG
exit 1
