# Seed 001: camelCase with units, epoch seconds, uptime in ms (the ESP32's millis()),
# and the other sensors under their telemetry names.
from firmware.profiles import MORE_SENSORS

TOPICS = (
    ("telemetry", "devices/{device_id}/data"),
    ("status", "devices/{device_id}/status"),
    ("commands", "devices/{device_id}/command"),
)
SUBSCRIBE = ("commands",)
TELEMETRY = MORE_SENSORS + (
    ("temperatureC", "$sensors.temp"), ("humidityPct", "$sensors.humidity"), ("ts", "$unix"),
    ("uptime", "$uptime_ms"),
)
STATUS = (("status", "$status"),)
