# What a config message carries (PROTOCOL.md, Commands: config): the partial config in
# a message on the config topic or in a config command's parameters, seed 004's
# {"config": {...}} with its own names included. Loaded for such a message only.
from firmware.errors import CommandError
from micropython import const

# A config message's own fields, not settings.
_ENVELOPE = const(("command_id", "device_id", "timestamp", "ts"))
# Seed 004's names for sensors (its "temperature" is our "temp").
_SEED_004_SENSORS = const((("temperature", "temp"), ("soil_moisture", "moisture"), ("wind", "wind_speed")))


def patch_of(data):
    """The partial config in a config message or command's parameters: the object
    itself, or seed 004's {"config": {...}} with its own names. CommandError if none."""
    if type(data) is not dict:
        raise CommandError("a config must be a JSON object")
    inner = data.get("config")
    if inner is not None:
        if type(inner) is not dict:
            raise CommandError("'config' must be an object")
        return _from_seed_004(inner)
    return {key: data[key] for key in data if key not in _ENVELOPE}


def _sensor(name):
    for theirs, ours in _SEED_004_SENSORS:
        if theirs == name:
            return ours
    return name


def _from_seed_004(cfg):
    patch = {}
    for key in cfg:
        value = cfg[key]
        if key == "telemetry_interval":  # milliseconds there, whole seconds here
            if type(value) is not int or value < 1000:
                raise CommandError("'telemetry_interval' must be a whole number of ms, at least 1000")
            patch["interval_s"] = (value + 500) // 1000
        elif key == "mqtt_keepalive":
            patch["mqtt"] = {"keepalive": value}
        elif key == "sensor_calibration":
            patch["trims"] = _per_sensor(key, value, ("scale", "offset"), None)
        elif key == "alert_thresholds":
            patch["alerts"] = _per_sensor(key, value, ("min", "max", "hysteresis", "severity"), "sensor")
        else:
            patch[key] = value  # our own name, checked with the rest
    return patch


def _per_sensor(key, value, fields, name_field):
    """{sensor: {field: ...}} of seed 004, keyed by our sensor names."""
    if type(value) is not dict:
        raise CommandError("'%s' must be an object of sensors" % key)
    out = {}
    for name in value:
        spec = value[name]
        if type(spec) is not dict:
            raise CommandError("'%s.%s' must be an object" % (key, name))
        item = {f: spec[f] for f in fields if f in spec}
        if name_field:
            item[name_field] = _sensor(name)
        out[_sensor(name)] = item
    return out
