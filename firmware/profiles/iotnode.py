# Seed 003: Telegraf reads it into InfluxDB; epoch seconds; acks on the status topic.
from firmware.profiles import MORE_SENSORS

TOPICS = (
    ("telemetry", "iot/node/{device_id}/telemetry"),
    ("status", "iot/node/{device_id}/status"),
    ("commands", "iot/node/{device_id}/command"),
    ("command_response", "iot/node/{device_id}/status"),
)
SUBSCRIBE = ("commands",)
TELEMETRY = (
    ("node_id", "$device_id"), ("timestamp", "$unix"),
    ("sensors", MORE_SENSORS + (("temperature", "$sensors.temp"), ("humidity", "$sensors.humidity"))),
    ("wifi_rssi", "$meta.rssi"), ("uptime", "$uptime_s"),
)
STATUS = (("node_id", "$device_id"), ("status", "$status"), ("uptime", "$uptime_s"), ("wifi_rssi", "$rssi"),
          ("timestamp", "$unix"))
