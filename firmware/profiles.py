# Profiles: how one backend wants its topics and payloads, as data. A payload
# template is a dict whose values are literals, nested templates, or "$path" strings
# naming a field of the canonical message (PROTOCOL.md), e.g. "$sensors.moisture".
# A profile never changes what the node measures or its safety rules.

_CANONICAL_TELEMETRY = {
    "device_id": "$device_id", "farm_id": "$farm_id", "boot_id": "$boot_id", "seq": "$seq",
    "ts": "$ts", "uptime_s": "$uptime_s", "sensors": "$sensors", "relays": "$relays",
    "errors": "$errors", "meta": "$meta",
}

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
    if template is None:
        return message
    if type(template) is dict:
        out = {}
        for key in template:
            out[key] = render(template[key], message)
        return out
    if type(template) is str and template.startswith("$"):
        return _lookup(message, template[1:])
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

    def subscriptions(self):
        return [self.topics[key] for key in self.spec["subscribe"]]

    def telemetry(self, reading):
        return render(self.spec["telemetry"], reading)

    def status(self, info):
        return render(self.spec["status"], info)


def _fill(template, identity):
    out = template
    for key in identity:
        out = out.replace("{" + key + "}", identity[key] or "")
    return out
