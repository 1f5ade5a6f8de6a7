# The shape and the rules of a node's config: every key's type comes from the defaults,
# value rules from RULES here and from each sensor's module, and a few checks across
# keys (one GPIO used twice, interlocks naming relays that exist). Errors name the key
# and the reason, and say the fix. Loaded only while a config is checked.
#
# A rule is a constant (kept in flash when the firmware is frozen, not in the heap):
#   (low, high)        two numbers: a range, both ends allowed
#   (a, b, ...)        a choice (strings, or more than two numbers)
#   "gpio", "gpio_out", "gpio_pullup", "adc1", "name", "nonempty_name", "prefix", "hex_key"
#                      the named checks in _named() below
from firmware import defaults, sensors
from firmware.errors import ConfigError  # noqa: F401 (raised by validate, part of this API)
from firmware.profiles import NAMES as PROFILE_NAMES
from micropython import const

_NO_SUCH_GPIO = const((20, 24, 28, 29, 30, 31))
_FLASH_GPIO = const((6, 7, 8, 9, 10, 11))
_MAX_NETWORKS = const(8)


def wifi_reason(ssid, password):
    """Why a network's ssid and password cannot be joined, or None. The password is
    never echoed: a reason reaches logs and answers."""
    if type(ssid) is not str or not 0 < len(ssid) <= 32:
        return "ssid: the network's name, 1 to 32 characters"
    if type(password) is not str or (password and not 8 <= len(password) <= 64):
        return "password of %s: 8 to 64 characters, or empty for an open network" % ssid
    return None

# Value rules by dotted key; "*" stands for the name of a user-named entry.
RULES = (
    ("device_id", "name"), ("farm_id", "name"), ("org_id", "name"), ("wifi.networks", "networks"),
    ("profile", PROFILE_NAMES),
    ("interval_s", (1, 86400)), ("failsafe_s", (10, 86400)), ("watchdog_s", (10, 3600)),
    ("safe_mode.pin", "gpio_pullup"), ("safe_mode.retry_s", (0, 604800)),
    ("mqtt.port", (1, 65535)), ("mqtt.keepalive", (0, 65535)), ("mqtt.prefix", "prefix"),
    ("mqtt.client", ("farmnode", "umqtt")), ("homeassistant.prefix", "prefix"), ("mqtt.queue_max", (1, 1000)),
    ("mqtt.queue_bytes", (1024, 262144)), ("mqtt.spill_bytes", (0, 1048576)), ("mqtt.fallback_s", (5, 3600)),
    ("i2c.id", (0, 1)), ("i2c.scl", "gpio_out"), ("i2c.sda", "gpio_out"), ("i2c.freq", (10000, 1000000)),
    ("relays.*", "nonempty_name"), ("relays.*.pin", "gpio_out"), ("relays.*.max_on_s", (1, 86400)),
    ("relays.*.pump_id", (0, 99)), ("relays.*.flow_ml_s", (0.0, 10000.0)),
    ("interlocks.*", "nonempty_name"), ("interlocks.*.sensor", sensors.KEYS),
    ("relay_groups.*", "nonempty_name"),
    ("alerts.*", "nonempty_name"), ("alerts.*.sensor", sensors.KEYS + sensors.OPTIONAL_KEYS), ("alerts.*.hysteresis", (0.0, 1000.0)),
    ("alerts.*.severity", ("warning", "critical")),  # "info" is a clear
    ("trims.*", sensors.KEYS), ("trims.*.scale", (0.01, 100.0)), ("trims.*.offset", (-1000.0, 1000.0)),
    ("signing.key", "hex_key"), ("signing.window_s", (10, 3600)),
    ("clock.utc_offset_min", (-720, 840)),
    ("automation.manual_hold_s", (0, 604800)),  # its rules' and schedules': firmware/automation_config.py
    ("power.mode", ("always_on", "deepsleep")), ("power.sleep_s", (10, 86400)), ("power.awake_s", (5, 600)),
)


def _named(rule, value):
    if rule == "name":
        # Used inside MQTT topics and as relay names: no wildcards, no level separators.
        if len(value) > 64:
            return "must be at most 64 characters"
        for ch in value:
            if not (ch.isalpha() or ch.isdigit() or ch in "-_."):
                return "may only hold letters, digits, '-', '_' and '.', got %r" % value
        return None
    if rule == "nonempty_name":
        return "must not be empty" if not value else _named("name", value)
    if rule == "prefix":
        if not value or "+" in value or "#" in value:
            return "must be a non-empty topic level without '+' or '#'"
        return None
    if rule == "networks":
        if len(value) > _MAX_NETWORKS:
            return "at most %d networks" % _MAX_NETWORKS
        for network in value:
            if type(network) is not dict or sorted(network) != ["password", "ssid"]:
                return 'each network must be an object {"ssid": ..., "password": ...}'
            reason = wifi_reason(network["ssid"], network["password"])
            if reason:
                return reason
        return None
    if rule in ("hhmm", "weekdays"):
        from firmware import automation_config

        return automation_config.named(rule, value)
    if rule == "hex_key":
        # The value is never echoed: a reason reaches logs and answers, a key must not.
        if value and (len(value) != 64 or any(ch not in "0123456789abcdefABCDEF" for ch in value)):
            return "must be 64 hex digits (a 32-byte key) or empty (no signing)"
        return None
    if rule == "adc1":
        if not 32 <= value <= 39:
            return "must be an ADC1 pin (GPIO 32-39): ADC2 cannot be read while Wi-Fi is on"
        return None
    if 34 <= value <= 39 and rule == "gpio_out":
        return "GPIO %d is input-only (34-39 cannot drive an output)" % value
    if 34 <= value <= 39 and rule == "gpio_pullup":
        return "GPIO %d has no internal pull-up (34-39)" % value
    if not 0 <= value <= 39 or value in _NO_SUCH_GPIO:
        return "GPIO %d does not exist on the ESP32" % value
    if value in _FLASH_GPIO:
        return "GPIO %d is wired to the SPI flash" % value
    return None


def rule_check(rule, value):
    """None when value obeys rule, else the reason."""
    if type(rule) is str:
        return _named(rule, value)
    if len(rule) == 2 and type(rule[0]) is not str:
        if not rule[0] <= value <= rule[1]:
            return "must be between %s and %s, got %s" % (rule[0], rule[1], value)
    elif value not in rule:
        return "must be one of %s, got %r" % (", ".join(str(o) for o in rule), value)
    return None


def _rule_of(pattern):
    table = RULES
    if pattern.startswith("sensors."):  # sensors.<name>.<setting>: the sensor's own rules
        parts = pattern.split(".")
        if len(parts) != 3:
            return None
        table = sensors.module(parts[1]).RULES
        pattern = parts[2]
    elif pattern.startswith("automation.rules.") or pattern.startswith("automation.schedules."):
        from firmware import automation_config  # loaded only for a config that has entries

        table = automation_config.RULES
        pattern = pattern[11:]
    for key, rule in table:
        if key == pattern:
            return rule
    return None


# --- structure ---

def type_name(value):
    kind = type(value)
    if kind is dict:
        return "an object"
    if kind is bool:
        return "true or false"
    if kind is int:
        return "an integer"
    if kind is float:
        return "a number"
    if kind is str:
        return "a string"
    return "null" if value is None else "a list"


def _same_type(value, template):
    if template is None:  # a number or null
        return value is None or type(value) in (int, float)
    want = type(template)
    return type(value) is want or (want is float and type(value) is int)


def _check_tree(value, template, path, rule_path, problems):
    """value (a dict) against template (defaults: a tuple of pairs)."""
    for key in value:
        shown = path + key
        pattern = rule_path + key
        expected = defaults.child(template, key)
        if expected is defaults.MISSING:
            problems.append((shown, "unknown key"))
            continue
        got = value[key]
        if pattern in defaults.NAMED:
            if type(got) is not dict:
                problems.append((shown, "must be an object"))
                continue
            entry_template = defaults.child(defaults.ENTRIES, pattern)
            for name in got:
                _check_value(name, "", shown + "." + name, pattern + ".*", problems)
                if not defaults.is_object(entry_template):
                    _check_value(got[name], entry_template, shown + "." + name, pattern + ".*.", problems)
                elif type(got[name]) is not dict:
                    problems.append((shown + "." + name, "must be an object"))
                else:
                    _check_tree(got[name], entry_template, shown + "." + name + ".", pattern + ".*.", problems)
        elif defaults.is_object(expected):
            if type(got) is not dict:
                problems.append((shown, "must be an object"))
            else:
                _check_tree(got, expected, shown + ".", pattern + ".", problems)
        else:
            _check_value(got, expected, shown, pattern, problems)


def _check_value(value, template, shown, pattern, problems):
    if not _same_type(value, template):
        want = "a number or null" if template is None else type_name(template)
        problems.append((shown, "must be %s, got %s" % (want, type_name(value))))
        return
    if value is None:
        return
    if type(value) is float and value - value != 0:  # NaN or infinite
        problems.append((shown, "must be a finite number, got %s" % value))
        return
    rule = _rule_of(pattern)
    reason = rule_check(rule, value) if rule is not None else None
    if reason:
        problems.append((shown, reason))


def _pins_in_use(cfg):
    """(key, gpio) for every pin the config wires, to catch two uses of one pin."""
    used = []
    specs = cfg["sensors"]
    uses_i2c = False
    for name in specs:
        spec = specs[name]
        if not spec.get("enabled"):
            continue
        if spec.get("bus") == "i2c":
            uses_i2c = True
            continue
        for key in ("pin", "tx", "rx", "de"):
            if key in spec:
                used.append(("sensors.%s.%s" % (name, key), spec[key]))
    if uses_i2c:
        used.append(("i2c.scl", cfg["i2c"]["scl"]))
        used.append(("i2c.sda", cfg["i2c"]["sda"]))
    for name in cfg["relays"]:
        used.append(("relays.%s.pin" % name, cfg["relays"][name]["pin"]))
    return used


def _check_whole(cfg, problems):
    if problems:
        return  # cross-checks assume well-typed values
    # A clash names both keys, so either side can be the one that is fixed or dropped.
    owner = {}
    for key, pin in _pins_in_use(cfg):
        if pin in owner:
            problems.append((key, "GPIO %d is also used by %s" % (pin, owner[pin])))
            problems.append((owner[pin], "GPIO %d is also used by %s" % (pin, key)))
        else:
            owner[pin] = key
    relays = cfg["relays"]
    for rule in cfg["interlocks"]:
        spec = cfg["interlocks"][rule]
        if spec["relay"] not in relays:
            problems.append(("interlocks.%s.relay" % rule, "no relay named %r" % spec["relay"]))
        if spec["min"] > spec["max"]:
            problems.append(("interlocks.%s.min" % rule, "must not be above max"))
    for group in cfg["relay_groups"]:
        for member in cfg["relay_groups"][group]:
            if member not in relays:
                problems.append(("relay_groups.%s" % group, "no relay named %r" % member))
    for rule in cfg["alerts"]:
        spec = cfg["alerts"][rule]
        if spec["min"] is None and spec["max"] is None:
            problems.append(("alerts.%s" % rule, "needs a min, a max or both"))
        elif spec["min"] is not None and spec["max"] is not None and spec["min"] >= spec["max"]:
            problems.append(("alerts.%s.min" % rule, "must be below max"))
    automation = cfg["automation"]
    if automation["rules"] or automation["schedules"]:
        from firmware import automation_config

        automation_config.check(cfg, problems)
    if cfg["power"]["mode"] == "deepsleep":
        if relays:
            problems.append(("power.mode", "a node with relays (%s) cannot deep-sleep: a sleeping chip cannot time "
                             "them; remove them first (relays: {name: null})" % ", ".join(sorted(relays))))
        if not cfg["mqtt"]["spill_bytes"]:
            problems.append(("mqtt.spill_bytes", "must not be 0 with power.mode deepsleep: readings wait on flash "
                             "while the chip sleeps"))
    for name, _ in sensors.SENSORS:
        sensor = sensors.module(name)
        if hasattr(sensor, "check"):
            sensor.check(cfg["sensors"][name], problems)


def check(cfg):
    """All problems of a complete config, as a list of (key, reason); empty when valid."""
    problems = []
    if type(cfg) is not dict:
        return [("config", "must be an object, got %s" % type_name(cfg))]
    _check_tree(cfg, defaults.DEFAULTS, "", "", problems)
    _check_whole(cfg, problems)
    return problems


def validate(cfg):
    problems = check(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg
