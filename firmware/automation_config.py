# The config rules of the automation's entries (firmware/automation.py): value rules of
# automation.rules.* and automation.schedules.*, as firmware/schema.py reads them, and
# the checks across keys. Loaded only while a config that has such entries is checked.
from firmware.sensors import KEYS

# Keys below automation.rules. and automation.schedules.; "*" is an entry's name.
RULES = (
    ("rules.*", "nonempty_name"), ("rules.*.sensor", KEYS), ("rules.*.max_run_s", (1, 86400)),
    ("rules.*.min_rest_s", (0, 604800)),
    ("schedules.*", "nonempty_name"), ("schedules.*.at", "hhmm"), ("schedules.*.run_s", (1, 86400)),
    ("schedules.*.days", "weekdays"),
)


def named(rule, value):
    """The reason value breaks a named rule of these ("hhmm", "weekdays"), or None."""
    if rule == "hhmm":
        if len(value) != 5 or value[2] != ":" or not (value[:2] + value[3:]).isdigit() \
                or int(value[:2]) > 23 or int(value[3:]) > 59:
            return 'must be a local time "HH:MM" (00:00 to 23:59), got %r' % value
        return None
    if not value or any(type(day) is not int or not 0 <= day <= 6 for day in value) or len(set(value)) != len(value):
        return "must list weekdays 0 (Monday) to 6 (Sunday), each once, at least one"
    return None


def check(cfg, problems):
    """What one key cannot tell alone: the relays the entries name, and their bounds."""
    relays = cfg["relays"]
    automation = cfg["automation"]
    for kind in ("rules", "schedules"):
        entries = automation[kind]
        for name in entries:
            spec = entries[name]
            key = "automation.%s.%s." % (kind, name)
            if spec["relay"] not in relays:
                problems.append((key + "relay", "no relay named %r" % spec["relay"]))
            elif kind == "schedules" and spec["run_s"] > relays[spec["relay"]]["max_on_s"]:
                problems.append((key + "run_s", "must not be above relays.%s.max_on_s (%d)"
                                 % (spec["relay"], relays[spec["relay"]]["max_on_s"])))
            if kind == "rules" and spec["on_below"] >= spec["off_above"]:
                problems.append((key + "on_below", "must be below off_above"))
