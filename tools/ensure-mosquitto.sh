#!/usr/bin/env bash
# Installs mosquitto, the broker that tests and the simulator start privately, when missing.
set -euo pipefail
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
    exit 0
fi
if "$(dirname "$0")/apt-get-install.sh" mosquitto; then
    exit 0
fi
cat >&2 <<'MSG'
mosquitto (the MQTT broker) is not installed and cannot be installed from here.
Install it, then run the command again:
  Debian/Ubuntu:  sudo apt-get install mosquitto
  macOS:          brew install mosquitto
MSG
exit 1
