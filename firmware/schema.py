# The shape and the rules of a node's config: every key's type comes from the defaults,
# value rules (ranges, choices, ESP32 pin facts) from RULES, and a few checks across keys
# (one GPIO used twice, interlocks naming relays that exist). Errors name key and reason.
from firmware.defaults import DEFAULTS, NAMED, PROFILES, SENSOR_KEYS

_NO_SUCH_GPIO = (20, 24, 28, 29, 30, 31)
_FLASH_GPIO = (6, 7, 8, 9, 10, 11)


class ConfigError(ValueError):
    """A config was refused. problems: list of (key, reason); key/reason: the first."""

    def __init__(self, problems):
        super().__init__("; ".join("%s: %s" % p for p in problems))
        self.problems = problems
        self.key = problems[0][0]
        self.reason = problems[0][1]


# --- value rules: each returns None when the value is fine, else the reason ---

def _range(low, high):
    def check(value):
        if not low <= value <= high:
            return "must be between %s and %s, got %s" % (low, high, value)
    return check


def _choice(options):
    def check(value):
        if value not in options:
            return "must be one of %s, got %r" % (", ".join(str(o) for o in options), value)
    return check


def _name(value):
    # Used inside MQTT topics and as relay names: no wildcards, no level separators.
    if len(value) > 64:
        return "must be at most 64 characters"
    for ch in value:
        if not (ch.isalpha() or ch.isdigit() or ch in "-_."):
            return "may only hold letters, digits, '-', '_' and '.', got %r" % value


def _nonempty_name(value):
    return "must not be empty" if not value else _name(value)


def _gpio(value):
    if not 0 <= value <= 39 or value in _NO_SUCH_GPIO:
        return "GPIO %d does not exist on the ESP32" % value
    if value in _FLASH_GPIO:
        return "GPIO %d is wired to the SPI flash" % value


def _output_gpio(value):
    if 34 <= value <= 39:
        return "GPIO %d is input-only (34-39 cannot drive an output)" % value
    return _gpio(value)


def _pullup_gpio(value):
    if 34 <= value <= 39:
        return "GPIO %d has no internal pull-up (34-39)" % value
    return _gpio(value)


def _adc1_gpio(value):
    if not 32 <= value <= 39:
        return "must be an ADC1 pin (GPIO 32-39): ADC2 cannot be read while Wi-Fi is on"


_MQTT_PREFIX_FORBIDDEN = "+#"


def _topic_prefix(value):
    if not value or any(ch in _MQTT_PREFIX_FORBIDDEN for ch in value):
        return "must be a non-empty topic level without '+' or '#'"


def _signing_key(value):
    # The value is never echoed: a reason reaches logs and answers, a key must not.
    if value and (len(value) != 64 or any(ch not in "0123456789abcdefABCDEF" for ch in value)):
        return "must be 64 hex digits (a 32-byte key) or empty (no signing)"


RULES = {
    "device_id": _name,
    "farm_id": _name,
    "org_id": _name,
    "profile": _choice(PROFILES),
    "interval_s": _range(1, 86400),
    "failsafe_s": _range(10, 86400),
    "watchdog_s": _range(10, 3600),
    "safe_mode.pin": _pullup_gpio,
    "safe_mode.retry_s": _range(0, 604800),
    "mqtt.port": _range(1, 65535),
    "mqtt.keepalive": _range(0, 65535),
    "mqtt.prefix": _topic_prefix,
    "mqtt.client": _choice(("farmnode", "umqtt")),
    "mqtt.queue_max": _range(1, 1000),
    "mqtt.queue_bytes": _range(1024, 262144),
    "mqtt.spill_bytes": _range(0, 1048576),
    "i2c.id": _range(0, 1),
    "i2c.scl": _output_gpio,
    "i2c.sda": _output_gpio,
    "i2c.freq": _range(10000, 1000000),
    "sensors.soil.pin": _adc1_gpio,
    "sensors.soil.samples": _range(1, 64),
    "sensors.soil.dry": _range(0, 4095),
    "sensors.soil.wet": _range(0, 4095),
    "sensors.dht.pin": _output_gpio,  # one-wire: the pin also drives the start pulse
    "sensors.dht.type": _choice(("DHT11", "DHT22")),
    "sensors.npk.uart": _range(1, 2),  # UART0 is the REPL
    "sensors.npk.tx": _output_gpio,
    "sensors.npk.rx": _gpio,
    "sensors.npk.de": _output_gpio,
    "sensors.npk.baud": _choice((2400, 4800, 9600, 19200)),
    "sensors.npk.addr": _range(1, 247),
    "sensors.npk.reg_n": _range(0, 0xFFFF),
    "sensors.npk.reg_p": _range(0, 0xFFFF),
    "sensors.npk.reg_k": _range(0, 0xFFFF),
    "sensors.npk.timeout_ms": _range(50, 5000),
    "sensors.ec.bus": _choice(("adc", "i2c")),
    "sensors.ec.pin": _adc1_gpio,
    "sensors.ec.i2c_addr": _range(8, 119),
    "sensors.ec.temp_coef": _range(0.0, 0.1),
    "sensors.ec.k": _range(0.001, 1000.0),
    "sensors.ec.offset": _range(-50.0, 50.0),
    "sensors.ph.bus": _choice(("adc", "i2c")),
    "sensors.ph.pin": _adc1_gpio,
    "sensors.ph.i2c_addr": _range(8, 119),
    "sensors.ph.gain": _range(0.1, 20.0),
    "sensors.ph.slope_mv": _range(-2000.0, -1.0),
    "sensors.ph.offset_v": _range(0.0, 3.3),
    "sensors.wind.pin": _pullup_gpio,
    "sensors.wind.kmh_per_hz": _range(0.01, 100.0),
    "sensors.wind.debounce_ms": _range(0, 100),
    "relays.*": _nonempty_name,  # the relay's name
    "relays.*.pin": _output_gpio,
    "relays.*.max_on_s": _range(1, 86400),
    "relays.*.pump_id": _range(0, 99),
    "relays.*.flow_ml_s": _range(0.0, 10000.0),
    "interlocks.*": _nonempty_name,
    "interlocks.*.sensor": _choice(SENSOR_KEYS),
    "relay_groups.*": _nonempty_name,
    "alerts.*": _nonempty_name,
    "alerts.*.sensor": _choice(SENSOR_KEYS),
    "alerts.*.hysteresis": _range(0.0, 1000.0),
    "alerts.*.severity": _choice(("warning", "critical")),  # "info" is a clear
    "trims.*": _choice(SENSOR_KEYS),
    "trims.*.scale": _range(0.01, 100.0),
    "trims.*.offset": _range(-1000.0, 1000.0),
    "mqtt.fallback_s": _range(5, 3600),
    "signing.key": _signing_key,
    "signing.window_s": _range(10, 3600),
}


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
    for key in value:
        shown = path + key
        pattern = rule_path + key
        if key not in template:
            problems.append((shown, "unknown key"))
            continue
        got = value[key]
        entry_template = NAMED.get(pattern)
        if entry_template is not None:
            if type(got) is not dict:
                problems.append((shown, "must be an object"))
                continue
            for name in got:
                _check_value(name, "", shown + "." + name, pattern + ".*", problems)
                if type(entry_template) is not dict:
                    _check_value(got[name], entry_template, shown + "." + name, pattern + ".*.", problems)
                elif type(got[name]) is not dict:
                    problems.append((shown + "." + name, "must be an object"))
                else:
                    _check_tree(got[name], entry_template, shown + "." + name + ".",
                                pattern + ".*.", problems)
        elif type(template[key]) is dict:
            if type(got) is not dict:
                problems.append((shown, "must be an object"))
            else:
                _check_tree(got, template[key], shown + ".", pattern + ".", problems)
        else:
            _check_value(got, template[key], shown, pattern, problems)


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
    rule = RULES.get(pattern)
    reason = rule(value) if rule else None
    if reason:
        problems.append((shown, reason))


def _pins_in_use(cfg):
    """(key, gpio) for every pin the config wires, to catch two uses of one pin."""
    used = []
    sensors = cfg["sensors"]
    uses_i2c = False
    for name in sensors:
        sensor = sensors[name]
        if not sensor.get("enabled"):
            continue
        if sensor.get("bus") == "i2c":
            uses_i2c = True
            continue
        for key in ("pin", "tx", "rx", "de"):
            if key in sensor:
                used.append(("sensors.%s.%s" % (name, key), sensor[key]))
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
    soil = cfg["sensors"]["soil"]
    if soil["dry"] == soil["wet"]:
        problems.append(("sensors.soil.wet", "must differ from sensors.soil.dry"))
        problems.append(("sensors.soil.dry", "must differ from sensors.soil.wet"))


def check(cfg):
    """All problems of a complete config, as a list of (key, reason); empty when valid."""
    problems = []
    if type(cfg) is not dict:
        return [("config", "must be an object, got %s" % type_name(cfg))]
    _check_tree(cfg, DEFAULTS, "", "", problems)
    _check_whole(cfg, problems)
    return problems


def validate(cfg):
    problems = check(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg
