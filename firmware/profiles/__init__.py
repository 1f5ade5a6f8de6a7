# Profiles: how one backend wants its topics and payloads, as data, one module per
# profile (only the active one is loaded). A payload template is a constant:
#   ((key, template), ...)   an object, each value filled by its template
#   "$path"                  a field of the canonical message (PROTOCOL.md), e.g.
#                            "$sensors.moisture"
#   ("$path", low, high)     the same, sent as null when outside low..high (a seed's
#                            validation range)
#   anything else            itself (a literal)
# A profile module has TOPICS (pairs of topic name and template with {prefix},
# {device_id}, {farm_id}, {org_id}), SUBSCRIBE, TELEMETRY, STATUS (None: the canonical
# status as it is), and may have RESPONSE and ALERT templates, ACK = "status" (seed
# 000's actuator acknowledgements) and NEEDS_TIME = True (its backend refuses or merges
# readings without a timestamp: they wait for the clock). A profile never changes what
# the node measures or its safety rules.

NAMES = ("farmnode", "smartfarm", "plantnanny", "harit", "iotnode", "dese")
# Every topic a profile may have; one it lacks is None.
TOPIC_NAMES = ("telemetry", "status", "commands", "broadcast", "command_response", "config", "alert")
# The sensors under their telemetry names, for profiles whose seed lists fewer.
MORE_SENSORS = (
    ("moisture", "$sensors.moisture"), ("soil_temp", "$sensors.soil_temp"),
    ("n", "$sensors.n"), ("p", "$sensors.p"), ("k", "$sensors.k"),
    ("ec", "$sensors.ec"), ("ph", "$sensors.ph"), ("wind_speed", "$sensors.wind_speed"),
)


def spec(name):
    """The module of the profile called name (ValueError if there is none)."""
    if name not in NAMES:
        raise ValueError("unknown profile %r" % name)
    return __import__("firmware.profiles." + name, None, None, ("TOPICS",), 0)


def topic_templates(name):
    """{topic name: template} of a profile, placeholders unfilled (host tools)."""
    return {key: template for key, template in spec(name).TOPICS}


def _lookup(message, path):
    value = message
    for part in path.split("."):
        if type(value) is not dict:
            return None
        value = value.get(part)
    return value


def render(template, message):
    """The payload a template describes, filled from the canonical message."""
    if type(template) is tuple:
        if template and type(template[0]) is tuple:  # an object
            out = {}
            for key, value in template:
                out[key] = render(value, message)
            return out
        value = _lookup(message, template[0][1:])  # ("$path", low, high)
        if value is None or not template[1] <= value <= template[2]:
            return None
        return value
    if type(template) is str and template.startswith("$"):
        return _lookup(message, template[1:])
    return template


class Profile:
    """One profile bound to a node's identity (the placeholders of its topic templates)."""

    def __init__(self, name, identity):
        module = spec(name)
        self.name = name
        self.spec = module
        topics = {key: None for key in TOPIC_NAMES}
        for key, template in module.TOPICS:
            topics[key] = _fill(template, identity)
        self.topics = topics
        self.ack = getattr(module, "ACK", None)
        self.response = getattr(module, "RESPONSE", None)
        self.alert = getattr(module, "ALERT", None)
        self.needs_time = getattr(module, "NEEDS_TIME", False)

    def subscriptions(self):
        return [self.topics[key] for key in self.spec.SUBSCRIBE]

    def telemetry(self, reading):
        return render(self.spec.TELEMETRY, reading)

    def status(self, info, extra):
        """The status payload: the canonical info as is, or the profile's template filled
        from info and extra (fields only some backends want)."""
        template = self.spec.STATUS
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
