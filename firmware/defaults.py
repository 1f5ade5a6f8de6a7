# Every setting a node has, with its default. config.json on the device holds only
# what differs from here; secrets.json holds the keys listed in SECRET_KEYS.
# Pin numbers are ESP32 GPIOs; the wiring is described in README.md. Each sensor's
# settings come from its own module (firmware/sensors).
# tree() builds the defaults anew on each call rather than keeping a table: this
# module is loaded only while a config is read or checked (firmware.unload).
from firmware import sensors


def tree():
    """A new dict of every setting at its default."""
    return {
        "device_id": "",  # empty: "node-" + the MAC in hex
        "farm_id": "",
        "org_id": "",
        "profile": "farmnode",
        "interval_s": 60,
        "wifi": {"ssid": "", "password": ""},
        "mqtt": {
            "host": "",
            "port": 1883,
            "user": "",
            "password": "",
            "keepalive": 60,
            "tls": False,
            "ca": "",
            "prefix": "farm",
            "client": "farmnode",
            # Messages waiting for the broker in RAM; the oldest go first, counted.
            "queue_max": 50,
            "queue_bytes": 16384,
            # While the broker is unreachable they wait on flash instead (outbox.txt), which
            # a reset does not clear: ~5 h of readings at 60 s. When it is full the oldest
            # half goes, counted. 0: in RAM only.
            "spill_bytes": 131072,
            # A remote config that moves the node to another broker (or Wi-Fi) is tried for
            # this long; if the new broker is not reached the node goes back to the old one.
            "fallback_s": 60,
        },
        "ntp": {"host": "pool.ntp.org"},
        # Command signing (README.md, "Signed commands: the wire form"): with a key (64 hex
        # digits, kept in secrets.json) every command and config must carry a valid
        # HMAC-SHA256 and have been signed at most window_s seconds from the device's clock.
        "signing": {"key": "", "window_s": 120},
        "i2c": {"id": 0, "scl": 22, "sda": 21, "freq": 100000},
        "sensors": {name: sensors.module(name).settings() for name, _ in sensors.SENSORS},
        # Relays are named by the user; each entry follows entry("relays"). pump_id is
        # how seed 004's set_pump names them.
        "relays": {
            "irrigation": {"pin": 26, "active_low": False, "max_on_s": 1800, "pump_id": 1, "flow_ml_s": 0.0},
            "fertigation": {"pin": 25, "active_low": False, "max_on_s": 600, "pump_id": 2, "flow_ml_s": 0.0},
        },
        # A relay may only switch on (and stays on) while sensor is within min..max and
        # the reading is at most two telemetry intervals old.
        "interlocks": {
            "spray_drift": {"relay": "fertigation", "sensor": "wind_speed", "min": 0.0, "max": 20.0},
            "nutrient_lockout": {"relay": "fertigation", "sensor": "ph", "min": 5.5, "max": 7.5},
        },
        # Relays that must never be on together (switching one on switches the others off).
        "relay_groups": {},
        "failsafe_s": 300,
        # A loop that makes no progress for this long is reset by the hardware watchdog.
        # It also bounds how long a hung loop can overrun a relay's max_on_s.
        "watchdog_s": 30,
        # Safe mode (maintenance status, no application): entered while the BOOT button on
        # pin is held at reset, or after 3 boots in a row failed before reaching the broker;
        # that second kind tries the application again after retry_s (0: never by itself).
        "safe_mode": {"pin": 0, "retry_s": 3600},
        # Alert rules: an alert when a reading leaves min..max (null: no bound on that side),
        # one "info" clear when it is back inside by at least hysteresis.
        "alerts": {
            "ph": {"sensor": "ph", "min": 5.5, "max": 7.5, "hysteresis": 0.1, "severity": "warning"},
            "soil_dry": {"sensor": "moisture", "min": 20.0, "max": None, "hysteresis": 2.0, "severity": "warning"},
            "frost": {"sensor": "temp", "min": 2.0, "max": None, "hysteresis": 0.5, "severity": "critical"},
        },
        # Corrections laid over a calibrated reading, by telemetry name: value * scale + offset
        # (seed 004's sensor_calibration).
        "trims": {},
    }


# Config keys whose entries are the user's to name (a relay, an alert rule...).
NAMED = ("relays", "interlocks", "relay_groups", "alerts", "trims")


def entry(key):
    """What a new entry of the named key starts from (a new value each call)."""
    if key == "relays":
        # flow_ml_s: what the relay's pump delivers, for seed 001's amountMl (0: not known).
        return {"pin": 26, "active_low": False, "max_on_s": 600, "pump_id": 0, "flow_ml_s": 0.0}
    if key == "interlocks":
        return {"relay": "", "sensor": "", "min": 0.0, "max": 0.0}
    if key == "alerts":
        # None: a number or null.
        return {"sensor": "", "min": None, "max": None, "hysteresis": 0.0, "severity": "warning"}
    if key == "trims":
        return {"scale": 1.0, "offset": 0.0}
    return []  # relay_groups: a list of relay names


# Kept in secrets.json, never sent off the device, kept by reset_config.
SECRET_KEYS = ("wifi.ssid", "wifi.password", "mqtt.host", "mqtt.port", "mqtt.user",
               "mqtt.password", "mqtt.tls", "mqtt.ca", "signing.key")
# Of those, the ones never shown (get_config leaves them out).
HIDDEN_KEYS = ("wifi.password", "mqtt.password", "signing.key")


def public(cfg, path=""):
    """A copy of cfg that can leave the device: HIDDEN_KEYS left out."""
    out = {}
    for key in cfg:
        here = path + key
        if here in HIDDEN_KEYS:
            continue
        value = cfg[key]
        if type(value) is dict:
            value = public(value, here + ".")
        elif type(value) is list:
            value = list(value)
        out[key] = value
    return out
