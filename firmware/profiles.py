# Profiles: how one backend wants its topics and payloads, as data. A payload
# template is a dict whose values are literals, nested templates, or "$path" strings
# naming a field of the canonical message (PROTOCOL.md), e.g. "$sensors.moisture".
# A profile never changes what the node measures or its safety rules.

_CANONICAL_TELEMETRY = {
    "device_id": "$device_id", "farm_id": "$farm_id", "boot_id": "$boot_id", "seq": "$seq",
    "ts": "$ts", "uptime_s": "$uptime_s", "sensors": "$sensors", "relays": "$relays",
    "errors": "$errors", "meta": "$meta",
}
# The other sensors, under their telemetry names, for profiles whose seed lists fewer.
_MORE_SENSORS = {
    "moisture": "$sensors.moisture", "n": "$sensors.n", "p": "$sensors.p", "k": "$sensors.k",
    "ec": "$sensors.ec", "ph": "$sensors.ph", "wind_speed": "$sensors.wind_speed",
}


def _with(base, more):
    """base with the keys of more it lacks (base's own entries win)."""
    out = dict(more)
    out.update(base)
    return out


# A value outside a seed's validation range is sent as null: (path, low, high).
PROFILES = {
    "farmnode": {
        "topics": {
            "telemetry": "{prefix}/{device_id}/telemetry",
            "status": "{prefix}/{device_id}/status",
            "commands": "{prefix}/{device_id}/commands",
            "broadcast": "{prefix}/all/commands",
            "command_response": "{prefix}/{device_id}/command_response",
            "config": "{prefix}/{device_id}/config",
            "alert": "{prefix}/{device_id}/alert",
        },
        "subscribe": ("commands", "broadcast", "config"),
        "telemetry": _CANONICAL_TELEMETRY,
        "status": None,  # the canonical status as it is
    },
    # Seed 000: one telemetry topic for every farm, a flat payload checked by Pydantic
    # (moisture/humidity 0-100, npk 0-1023, ec_salinity 0-20, wind_speed 0-150, soil_ph 0-14).
    # "npk" is one number there (an analog probe); here the sum of N, P and K in mg/kg.
    # Actuator acks ({"type": "STATUS", ...}) go to the telemetry topic too.
    "smartfarm": {
        "topics": {
            "telemetry": "farm/telemetry",
            "status": "farm/{farm_id}/status",
            "commands": "farm/{farm_id}/commands",
            "command_response": "farm/telemetry",
        },
        "subscribe": ("commands",),
        "ack": "status",  # ACTUATE is acknowledged with {"type": "STATUS", "<device>": "ON", ...}
        "telemetry": {
            "farm_id": "$farm_id", "timestamp": "$ts",
            "moisture": ("$sensors.moisture", 0, 100), "temp": "$sensors.temp",
            "humidity": ("$sensors.humidity", 0, 100), "npk": ("$npk_total", 0, 1023),
            "ec_salinity": ("$sensors.ec", 0, 20), "wind_speed": ("$sensors.wind_speed", 0, 150),
            "soil_ph": ("$sensors.ph", 0, 14),
        },
        "status": None,
    },
    # Seed 001: camelCase with units, epoch seconds, uptime in ms (the ESP32's millis()).
    "plantnanny": {
        "topics": {
            "telemetry": "devices/{device_id}/data",
            "status": "devices/{device_id}/status",
            "commands": "devices/{device_id}/command",
        },
        "subscribe": ("commands",),
        "telemetry": _with({"temperatureC": "$sensors.temp", "humidityPct": "$sensors.humidity",
                            "ts": "$unix", "uptime": "$uptime_ms"}, _MORE_SENSORS),
        "status": {"status": "$status"},
    },
    # Seed 002: a publisher's readings; the backend has no command topic.
    "harit": {
        "topics": {
            "telemetry": "harit-samarth/sensor/data",
            "status": "harit-samarth/status",
        },
        "subscribe": (),
        "telemetry": {
            "timestamp": "$ts", "publisher_id": "$device_id",
            "sensor_readings": {"N": "$sensors.n", "P": "$sensors.p", "K": "$sensors.k",
                                "Temperature": "$sensors.temp", "Moisture": "$sensors.moisture",
                                "pH": "$sensors.ph"},
        },
        "status": {"status": "$status", "message": "$message", "timestamp": "$ts",
                   "publisher_id": "$device_id"},
    },
    # Seed 003: Telegraf reads it into InfluxDB; epoch seconds; acks on the status topic.
    "iotnode": {
        "topics": {
            "telemetry": "iot/node/{device_id}/telemetry",
            "status": "iot/node/{device_id}/status",
            "commands": "iot/node/{device_id}/command",
            "command_response": "iot/node/{device_id}/status",
        },
        "subscribe": ("commands",),
        "telemetry": {
            "node_id": "$device_id", "timestamp": "$unix",
            "sensors": _with({"temperature": "$sensors.temp", "humidity": "$sensors.humidity"}, _MORE_SENSORS),
            "wifi_rssi": "$meta.rssi", "uptime": "$uptime_s",
        },
        "status": {"node_id": "$device_id", "status": "$status", "uptime": "$uptime_s",
                   "wifi_rssi": "$rssi", "timestamp": "$unix"},
    },
    # Seed 004: multi-tenant topics under the organisation. Its required "chlorine" is
    # not measured by a farm node: it is sent as null, never made up.
    "dese": {
        "topics": {
            "telemetry": "devices/{org_id}/{device_id}/telemetry",
            "status": "devices/{org_id}/{device_id}/status",
            "commands": "devices/{org_id}/{device_id}/commands",
            "command_response": "devices/{org_id}/{device_id}/command_response",
            "config": "devices/{org_id}/{device_id}/config",
            "alert": "devices/{org_id}/{device_id}/alert",
        },
        "subscribe": ("commands", "config"),
        # Seed 004's command_response names the time "timestamp".
        "response": {"command_id": "$command_id", "device_id": "$device_id", "command": "$command",
                     "success": "$success", "response": "$response", "error": "$error",
                     "timestamp": "$ts"},
        "alert": {"severity": "$severity", "message": "$message", "sensor": "$sensor", "value": "$value",
                  "threshold": "$threshold", "timestamp": "$ts"},
        "telemetry": {
            "device_id": "$device_id", "timestamp": "$ts", "organization_id": "$org_id",
            "sensors": _with({"ph": ("$sensors.ph", 0, 14), "chlorine": None,
                              "temperature": "$sensors.temp", "humidity": "$sensors.humidity"},
                             _MORE_SENSORS),
            "metadata": {"battery": None, "signal_strength": "$meta.rssi",
                         "firmware_version": "$meta.firmware_version"},
        },
        "status": {"status": "$status", "battery": None, "signal_strength": "$rssi",
                   "firmware_version": "$firmware_version", "timestamp": "$ts"},
    },
}

def _lookup(message, path):
    value = message
    for part in path.split("."):
        if type(value) is not dict:
            return None
        value = value.get(part)
    return value


def render(template, message):
    """The payload a template describes, filled from the canonical message."""
    if type(template) is dict:
        out = {}
        for key in template:
            out[key] = render(template[key], message)
        return out
    if type(template) is str and template.startswith("$"):
        return _lookup(message, template[1:])
    if type(template) is tuple:  # (path, low, high): null when outside the range
        value = render(template[0], message)
        if value is None or not template[1] <= value <= template[2]:
            return None
        return value
    return template


class Profile:
    """One profile bound to a node's identity (the placeholders of its topic templates)."""

    def __init__(self, name, identity):
        if name not in PROFILES:
            raise ValueError("unknown profile %r" % name)
        spec = PROFILES[name]
        self.name = name
        self.spec = spec
        self.topics = {}
        for key in spec["topics"]:
            self.topics[key] = _fill(spec["topics"][key], identity)
        for key in ("commands", "broadcast", "command_response", "config", "alert"):
            self.topics.setdefault(key, None)  # this backend has no such topic

    def subscriptions(self):
        return [self.topics[key] for key in self.spec["subscribe"]]

    def telemetry(self, reading):
        return render(self.spec["telemetry"], reading)

    def status(self, info, extra):
        """The status payload: the canonical info as is, or the profile's template filled
        from info and extra (fields only some backends want)."""
        template = self.spec["status"]
        if template is None:
            return info
        merged = dict(extra)
        merged.update(info)
        return render(template, merged)


def _fill(template, identity):
    out = template
    for key in identity:
        out = out.replace("{" + key + "}", identity[key] or "")
    return out
