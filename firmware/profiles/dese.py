# Seed 004: multi-tenant topics under the organisation. Its required "chlorine" is not
# measured by a farm node: it is sent as null, never made up.
from firmware.profiles import MORE_SENSORS

TOPICS = (
    ("telemetry", "devices/{org_id}/{device_id}/telemetry"),
    ("status", "devices/{org_id}/{device_id}/status"),
    ("commands", "devices/{org_id}/{device_id}/commands"),
    ("command_response", "devices/{org_id}/{device_id}/command_response"),
    ("config", "devices/{org_id}/{device_id}/config"),
    ("alert", "devices/{org_id}/{device_id}/alert"),
)
SUBSCRIBE = ("commands", "config")
NEEDS_TIME = True  # seed 004: "timestamp" is required, ISO 8601
# Seed 004's command_response names the time "timestamp".
RESPONSE = (("command_id", "$command_id"), ("device_id", "$device_id"), ("command", "$command"),
            ("success", "$success"), ("response", "$response"), ("error", "$error"), ("timestamp", "$ts"))
ALERT = (("severity", "$severity"), ("message", "$message"), ("sensor", "$sensor"), ("value", "$value"),
         ("threshold", "$threshold"), ("timestamp", "$ts"))
TELEMETRY = (
    ("device_id", "$device_id"), ("timestamp", "$ts"), ("organization_id", "$org_id"),
    # pairs later in the tuple win: its ph carries seed 004's range
    ("sensors", MORE_SENSORS + (("ph", ("$sensors.ph", 0, 14)), ("chlorine", None),
                                ("temperature", "$sensors.temp"), ("humidity", "$sensors.humidity"))),
    ("metadata", (("battery", "$sensors.battery_pct"), ("signal_strength", "$meta.rssi"),
                  ("firmware_version", "$meta.firmware_version"))),
)
STATUS = (("status", "$status"), ("battery", None), ("signal_strength", "$rssi"),
          ("firmware_version", "$firmware_version"), ("timestamp", "$ts"))
