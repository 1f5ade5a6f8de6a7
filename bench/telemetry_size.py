# Bytes of one telemetry message per profile: the JSON payload and the whole MQTT
# PUBLISH packet (QoS 1). Runs under MicroPython and CPython; prints one JSON line.
import json
import sys

from firmware.profiles import NAMES, Profile

IDENTITY = {"prefix": "farm", "device_id": "node-240ac45e1107", "farm_id": "farm_001", "org_id": "org-123"}
READING = {
    "device_id": "node-240ac45e1107", "farm_id": "farm_001", "org_id": "org-123", "boot_id": "5f1c0a",
    "seq": 4242, "ts": "2026-01-24T22:30:00Z", "unix": 1769293800, "uptime_s": 86400,
    "uptime_ms": 86400000, "npk_total": 205,
    "sensors": {"moisture": 53.1, "temp": 26.1, "humidity": 41.9, "n": 38, "p": 15, "k": 152,
                "ec": 1.06, "ph": 6.8, "wind_speed": 20.6, "wind_gust": 31.2},
    "relays": {"irrigation": 0, "fertigation": 0}, "errors": {},
    "meta": {"rssi": -65, "heap_free": 61234, "firmware_version": "0.1.0", "dropped": 0},
}


def packet_bytes(topic, payload):
    remaining = 2 + len(topic) + 2 + len(payload)
    header = 2 if remaining < 128 else 3 if remaining < 16384 else 4
    return header + remaining


def main():
    sizes = {}
    for name in sorted(NAMES):
        profile = Profile(name, IDENTITY)
        payload = json.dumps(profile.telemetry(READING))
        sizes[name] = {"payload": len(payload), "packet": packet_bytes(profile.topics["telemetry"], payload)}
    print(json.dumps({"bench": "telemetry_bytes", "interpreter": sys.implementation.name, "profiles": sizes}))


if __name__ == "__main__":
    main()
