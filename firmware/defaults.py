# Every setting a node has, with its default. config.json on the device holds only
# what differs from here; secrets.json holds the keys listed in SECRET_KEYS.
# Pin numbers are ESP32 GPIOs; the wiring is described in README.md. Each sensor's
# settings are in its own module (firmware/sensors, SETTINGS).
# The defaults are constants, tuples of (key, value) pairs for an object: frozen into an
# image they stay in flash, and checking or saving a config walks them as they are,
# without building a dict of them (tree() builds one when a whole config is wanted).
from firmware import HIDDEN_KEYS, sensors

DEFAULTS = (
    ("device_id", ""),  # empty: "node-" + the MAC in hex
    ("farm_id", ""),
    ("org_id", ""),
    ("profile", "farmnode"),
    ("interval_s", 60),
    # networks: more access points, as {"ssid", "password"} objects (at most 8); with
    # more than one network the node joins the strongest in range (firmware/wifi.py).
    # secrets.json may give "wifi" as a list of them: the same as networks alone.
    ("wifi", (("ssid", ""), ("password", ""), ("networks", []))),
    ("mqtt", (
        ("host", ""),
        ("port", 1883),
        ("user", ""),
        ("password", ""),
        ("keepalive", 60),
        ("tls", False),
        ("ca", ""),
        ("prefix", "farm"),
        ("client", "farmnode"),
        # Messages waiting for the broker in RAM; the oldest go first, counted.
        ("queue_max", 50),
        ("queue_bytes", 16384),
        # While the broker is unreachable they wait on flash instead (outbox.txt), which
        # a reset does not clear: ~5 h of readings at 60 s. When it is full the oldest
        # half goes, counted. 0: in RAM only.
        ("spill_bytes", 131072),
        # A remote config that moves the node to another broker (or Wi-Fi) is tried for
        # this long; if the new broker is not reached the node goes back to the old one.
        ("fallback_s", 60),
    )),
    ("ntp", (("host", "pool.ntp.org"),)),
    # Local time is UTC plus this (schedules run by it): 60 for CET, 330 for India.
    ("clock", (("utc_offset_min", 0),)),
    # Home Assistant MQTT discovery (README.md): the node describes itself, retained,
    # on <prefix>/device/<device_id>/config. The farmnode profile only: the seed
    # profiles' backends have their own topics and ACLs, and it is off for them.
    ("homeassistant", (("discovery", True), ("prefix", "homeassistant"))),
    # Command signing (README.md, "Signed commands: the wire form"): with a key (64 hex
    # digits, kept in secrets.json) every command and config must carry a valid
    # HMAC-SHA256 and have been signed at most window_s seconds from the device's clock.
    ("signing", (("key", ""), ("window_s", 120))),
    ("i2c", (("id", 0), ("scl", 22), ("sda", 21), ("freq", 100000))),
    ("sensors", ()),  # each sensor's SETTINGS, by its name (see child())
    # Relays are named by the user; each entry follows ENTRIES' relay. pump_id is how
    # seed 004's set_pump names them.
    ("relays", (
        ("irrigation", (("pin", 26), ("active_low", False), ("max_on_s", 1800), ("pump_id", 1), ("flow_ml_s", 0.0))),
        ("fertigation", (("pin", 25), ("active_low", False), ("max_on_s", 600), ("pump_id", 2), ("flow_ml_s", 0.0))),
    )),
    # A relay may only switch on (and stays on) while sensor is within min..max and
    # the reading is at most two telemetry intervals old.
    ("interlocks", (
        ("spray_drift", (("relay", "fertigation"), ("sensor", "wind_speed"), ("min", 0.0), ("max", 20.0))),
        ("nutrient_lockout", (("relay", "fertigation"), ("sensor", "ph"), ("min", 5.5), ("max", 7.5))),
    )),
    # Relays that must never be on together (switching one on switches the others off).
    ("relay_groups", ()),
    ("failsafe_s", 300),
    # "deepsleep": a battery node that wakes every sleep_s, reads, sends, takes what waited
    # at the broker and sleeps again, awake at most awake_s (firmware/sleep.py). Not with
    # relays: a sleeping chip cannot time them.
    ("power", (("mode", "always_on"), ("sleep_s", 600), ("awake_s", 20))),
    # A loop that makes no progress for this long is reset by the hardware watchdog.
    # It also bounds how long a hung loop can overrun a relay's max_on_s.
    ("watchdog_s", 30),
    # Safe mode (maintenance status, no application): entered while the BOOT button on
    # pin is held at reset, or after 3 boots in a row failed before reaching the broker;
    # that second kind tries the application again after retry_s (0: never by itself).
    ("safe_mode", (("pin", 0), ("retry_s", 3600))),
    # Alert rules: an alert when a reading leaves min..max (null: no bound on that side),
    # one "info" clear when it is back inside by at least hysteresis.
    ("alerts", (
        ("ph", (("sensor", "ph"), ("min", 5.5), ("max", 7.5), ("hysteresis", 0.1), ("severity", "warning"))),
        ("soil_dry", (("sensor", "moisture"), ("min", 20.0), ("max", None), ("hysteresis", 2.0),
                      ("severity", "warning"))),
        ("frost", (("sensor", "temp"), ("min", 2.0), ("max", None), ("hysteresis", 0.5), ("severity", "critical"))),
    )),
    # The node's own irrigation (firmware/automation.py, README.md: Automation): rules run a
    # relay by a reading (on below on_below, off above off_above), schedules at a local
    # time. A command for a relay holds them off it for manual_hold_s. offline: they go on
    # while the broker is unreachable (the failsafe then stops only what commands started).
    ("automation", (("rules", ()), ("schedules", ()), ("manual_hold_s", 3600), ("offline", True))),
    # Corrections laid over a calibrated reading, by telemetry name: value * scale + offset
    # (seed 004's sensor_calibration).
    ("trims", ()),
)

# Config keys whose entries are the user's to name, and what a new entry starts from.
# None in a template: a number or null. flow_ml_s: what a relay's pump delivers, for
# seed 001's amountMl (0: not known). A relay group is a list of relay names.
ENTRIES = (
    ("relays", (("pin", 26), ("active_low", False), ("max_on_s", 600), ("pump_id", 0), ("flow_ml_s", 0.0))),
    ("interlocks", (("relay", ""), ("sensor", ""), ("min", 0.0), ("max", 0.0))),
    ("relay_groups", []),
    ("alerts", (("sensor", ""), ("min", None), ("max", None), ("hysteresis", 0.0), ("severity", "warning"))),
    ("trims", (("scale", 1.0), ("offset", 0.0))),
    ("automation.rules", (("relay", ""), ("sensor", ""), ("on_below", 0.0), ("off_above", 0.0),
                          ("max_run_s", 900), ("min_rest_s", 1800))),
    # at: local time "HH:MM"; days: 0 = Monday ... 6 = Sunday
    ("automation.schedules", (("relay", ""), ("at", "06:00"), ("run_s", 600), ("days", [0, 1, 2, 3, 4, 5, 6]))),
)
NAMED = ("relays", "interlocks", "relay_groups", "alerts", "trims", "automation.rules", "automation.schedules")

# Kept in secrets.json, never sent off the device, kept by reset_config.
SECRET_KEYS = ("wifi.ssid", "wifi.password", "wifi.networks", "mqtt.host", "mqtt.port", "mqtt.user",
               "mqtt.password", "mqtt.tls", "mqtt.ca", "signing.key")
# Of those, the ones never shown: firmware.HIDDEN_KEYS.

MISSING = ("missing",)  # child() of a key a template does not have


def child(template, key):
    """What template (an object: a tuple of pairs) holds under key, or MISSING. The
    sensors' part of DEFAULTS is their modules' SETTINGS."""
    if template is DEFAULTS and key == "sensors":
        return tuple((name, sensors.module(name).SETTINGS) for name, _ in sensors.SENSORS)
    for name, value in template:
        if name == key:
            return value
    return MISSING


def is_object(template):
    return type(template) is tuple


def value(template):
    """A template as a new config value (objects as dicts, lists copied)."""
    if type(template) is tuple:
        out = {}
        for key, item in template:
            out[key] = value(child(template, key) if template is DEFAULTS else item)
        return out
    if type(template) is list:
        return list(template)
    return template


def tree():
    """A new dict of every setting at its default."""
    return value(DEFAULTS)


def equal(item, template):
    """Whether a config value is what template describes."""
    if type(template) is tuple:
        if type(item) is not dict or len(item) != len(template):
            return False
        for key, part in template:
            if key not in item or not equal(item[key], part):
                return False
        return True
    return item == template


def entry(key):
    """A new entry of the named key at its defaults."""
    return value(child(ENTRIES, key))


def public(cfg, path=""):
    """A copy of cfg that can leave the device: HIDDEN_KEYS left out."""
    out = {}
    for key in cfg:
        here = path + key
        if here in HIDDEN_KEYS:
            continue
        item = cfg[key]
        if type(item) is dict:
            item = public(item, here + ".")
        elif type(item) is list:
            item = list(item)
        out[key] = item
    return out
