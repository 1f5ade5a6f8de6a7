# A model of the field a node stands in: the physical values its probes would see.
# Soil moisture dries with time (faster when hot) and rises while the irrigation valve
# is open; air temperature and humidity follow the day; wind blows with gusts;
# nutrients, EC and pH drift slowly and rise while fertigation runs; the node's battery
# drains slowly and a small solar panel charges it by day. Per-sensor faults
# can be switched on. Values and faults can be steered from outside a running process
# through a JSON file (see Field.steer_path). Runs on CPython and MicroPython alike.
import json
import math
import time

from ticks import ticks_diff, ticks_ms

VALUE_NAMES = ("moisture", "temp", "humidity", "n", "p", "k", "ec", "ph", "wind_speed", "soil_temp", "battery_v")
SENSORS = ("soil", "dht", "soil_temp", "npk", "ec", "ph", "wind", "battery")
# "hang": the read never returns (a wedged driver or bus), what the watchdog is for.
FAULTS = ("timeout", "crc", "unplugged", "stuck", "hang")
# The values each sensor reports: what a "stuck" fault freezes.
SENSOR_VALUES = {"soil": ("moisture",), "dht": ("temp", "humidity"), "soil_temp": ("soil_temp",),
                 "npk": ("n", "p", "k"), "ec": ("ec",), "ph": ("ph",), "wind": ("wind_speed",),
                 "battery": ("battery_v",)}
_STEER_POLL_MS = 200

# Soil water balance, in % of volumetric moisture per simulated hour.
_DRY_PER_HOUR_AT_25C = 0.6
_WET_PER_HOUR_IRRIGATING = 30.0
_MOISTURE_LIMITS = (3.0, 97.0)
# The node's Li-ion cell (terminal volts): a steady drain, and a small panel's charge
# that follows the sun (none at night, most at noon). Over a day the two about cancel.
_BATTERY_DRAIN_V_PER_HOUR = 0.005
_BATTERY_SUN_V_PER_HOUR = 0.02  # at noon
_BATTERY_LIMITS = (3.0, 4.2)
_BATTERY_STEP_H = 0.25  # the sun's share integrated in steps this long (at most a day's)


def _now_s():
    return time.time()


class Field:
    """The physical world of one node.

    seed: makes noise and gusts repeatable; speed: simulated seconds per real second;
    start_hour: local time of day when the model starts; steer_path: a JSON file re-read
    when it changes: {"moisture": 12.5, ..., "faults": {"dht": "timeout"}, "speed": 60};
    moisture, battery_v: what the soil and the battery start at."""

    def __init__(self, seed=1, speed=1.0, start_hour=9.0, steer_path=None, moisture=45.0, battery_v=3.95):
        self._rng = (seed * 2654435761 + 12345) & 0x7FFFFFFF
        self.speed = float(speed)
        self.start_hour = start_hour
        self.steer_path = steer_path
        self.steer_error = None
        self._steer_text = None
        self._steer_checked = None
        self._file_values = {}
        self._file_faults = {}
        self._set_values = {}
        self._set_faults = {}
        self._access_point = True
        self._access_points = None  # {ssid: rssi} on the air, when the steering file lists them
        self._stuck = {}
        self._banked_s = 0.0  # simulated seconds before the last speed change
        self._since = _now_s()
        self._updated_s = 0.0
        self.actuators = {"irrigation": False, "fertigation": False}
        self._moisture = moisture
        self._nutrients = [38.0, 15.0, 152.0]
        self._ec = 1.06
        self._ph = 6.8
        self._battery_v = battery_v

    # --- time ---

    def sim_seconds(self):
        return self._banked_s + (_now_s() - self._since) * self.speed

    def set_speed(self, speed):
        self._banked_s = self.sim_seconds()
        self._since = _now_s()
        self.speed = float(speed)

    def hour(self, sim_s=None):
        """Local time of day (hours) now, or at simulated second sim_s."""
        return (self.start_hour + (self.sim_seconds() if sim_s is None else sim_s) / 3600) % 24

    # --- steering ---

    def set(self, name, value):
        """Override a physical value (None gives it back to the model)."""
        if name not in VALUE_NAMES:
            raise ValueError("unknown value %r" % name)
        if value is None:
            self._set_values.pop(name, None)
        else:
            self._set_values[name] = float(value)

    def fault(self, sensor, kind):
        """Switch a fault on for a sensor (kind None switches it off)."""
        if sensor not in SENSORS:
            raise ValueError("unknown sensor %r" % sensor)
        if kind is None:
            self._set_faults.pop(sensor, None)
        elif kind in FAULTS:
            self._set_faults[sensor] = kind
            self.fault_of(sensor)  # a stuck sensor freezes at this moment's values
        else:
            raise ValueError("unknown fault %r" % kind)

    def clear(self):
        self._set_values = {}
        self._set_faults = {}

    def fault_of(self, sensor):
        self._poll_steering()
        kind = self._set_faults.get(sensor) or self._file_faults.get(sensor)
        if kind == "stuck":
            if sensor not in self._stuck:
                self._stuck[sensor] = {k: self._value(k) for k in SENSOR_VALUES[sensor]}
        else:
            self._stuck.pop(sensor, None)
        return kind

    def access_point_up(self):
        """The farm's Wi-Fi access point is on the air (steering: "access_point": false)."""
        self._poll_steering()
        return self._access_point

    def access_point_rssi(self, ssid, rssi):
        """The RSSI the access point ssid is heard at here: rssi, unless the steering file
        lists the access points ("access_points": [{"ssid": "barn", "rssi": -60}, ...]):
        then its own, or None for one not listed (not on the air)."""
        self._poll_steering()
        if self._access_points is None:
            return rssi
        return self._access_points.get(ssid)

    def _poll_steering(self):
        if self.steer_path is None:
            return
        now = ticks_ms()
        if self._steer_checked is not None and ticks_diff(now, self._steer_checked) < _STEER_POLL_MS:
            return
        self._steer_checked = now
        try:
            with open(self.steer_path) as f:
                text = f.read()
        except OSError:
            text = ""  # no file: nothing steered
        if text == self._steer_text:
            return
        self._steer_text = text
        try:
            self._apply_steering(json.loads(text) if text.strip() else {})
            self.steer_error = None
        except (ValueError, TypeError) as exc:
            self.steer_error = "%s: %s" % (self.steer_path, exc)

    def _apply_steering(self, data):
        if type(data) is not dict:
            raise ValueError("must hold a JSON object")
        values = {}
        faults = {}
        for key in data:
            value = data[key]
            if key == "faults":
                if type(value) is not dict:
                    raise ValueError("faults must be an object")
                for sensor in value:
                    if sensor not in SENSORS or value[sensor] not in FAULTS + (None,):
                        raise ValueError("bad fault %r: %r" % (sensor, value[sensor]))
                    if value[sensor] is not None:
                        faults[sensor] = value[sensor]
            elif key == "speed":
                if type(value) not in (int, float) or value <= 0:
                    raise ValueError("speed must be a positive number")
            elif key == "access_point":
                if type(value) is not bool:
                    raise ValueError("access_point must be true or false")
            elif key == "access_points":
                if type(value) is not list or any(
                        type(ap) is not dict or type(ap.get("ssid")) is not str
                        or type(ap.get("rssi")) not in (int, float) for ap in value):
                    raise ValueError('access_points must be a list of {"ssid": name, "rssi": dBm}')
            elif key in VALUE_NAMES:
                if value is not None and type(value) not in (int, float):
                    raise ValueError("%s must be a number" % key)
                if value is not None:
                    values[key] = float(value)
            else:
                raise ValueError("unknown key %r" % key)
        self._file_values = values
        self._file_faults = faults
        self._access_point = data.get("access_point", True)
        listed = data.get("access_points")
        self._access_points = None if listed is None else {ap["ssid"]: ap["rssi"] for ap in listed}
        if "speed" in data and float(data["speed"]) != self.speed:
            self.set_speed(data["speed"])

    # --- across a deep sleep ---

    def state(self):
        """The model's clock and what it integrated, for a process that ends while its
        node sleeps: the next one resumes the same field, not a new one."""
        self._advance()
        return {"sim_s": self._updated_s, "moisture": self._moisture, "nutrients": list(self._nutrients),
                "ec": self._ec, "battery_v": self._battery_v}

    def resume(self, state, gap_s):
        """Go on from state(), gap_s simulated seconds later (the sleep): the gap is
        integrated on the next read, with the actuators as they are now (off)."""
        self._moisture = float(state["moisture"])
        self._nutrients = [float(v) for v in state["nutrients"]]
        self._ec = float(state["ec"])
        self._battery_v = float(state["battery_v"])
        self._updated_s = float(state["sim_s"])
        self._banked_s = self._updated_s + gap_s
        self._since = _now_s()

    # --- actuators ---

    def set_actuator(self, name, on):
        self._advance()  # integrate up to now under the old state
        self.actuators[name] = bool(on)

    # --- physics ---

    def _noise(self, amplitude):
        self._rng = (self._rng * 1103515245 + 12345) & 0x7FFFFFFF
        return ((self._rng >> 8) / float(1 << 23) - 0.5) * 2 * amplitude

    def _advance(self):
        now = self.sim_seconds()
        since = self._updated_s
        hours = (now - since) / 3600
        if hours <= 0:
            return
        self._updated_s = now
        temp = self._air_temp()
        rate = -_DRY_PER_HOUR_AT_25C * (1 + 0.04 * (temp - 25))
        if self.actuators.get("irrigation"):
            rate += _WET_PER_HOUR_IRRIGATING
        low, high = _MOISTURE_LIMITS
        self._moisture = min(high, max(low, self._moisture + rate * hours))
        if self.actuators.get("fertigation"):
            self._ec = min(4.0, self._ec + 0.6 * hours)
            for i, per_hour in enumerate((20.0, 8.0, 30.0)):
                self._nutrients[i] = min(1999.0, self._nutrients[i] + per_hour * hours)
        self._charge(since, hours)

    def _charge(self, since_s, hours):
        """The battery over the hours from simulated second since_s: in steps, as the
        sun's charge changes over a long span (a node read rarely, or a fast field)."""
        steps = min(int(24 / _BATTERY_STEP_H), int(hours / _BATTERY_STEP_H) + 1)
        step_h = hours / steps
        low, high = _BATTERY_LIMITS
        volts = self._battery_v
        for i in range(steps):
            hour = self.hour(since_s + (i + 0.5) * step_h * 3600)
            sun = max(0.0, math.sin(2 * math.pi * (hour - 6.0) / 24))  # up 06:00 to 18:00
            volts += (_BATTERY_SUN_V_PER_HOUR * sun - _BATTERY_DRAIN_V_PER_HOUR) * step_h
            volts = min(high, max(low, volts))
        self._battery_v = volts

    def _air_temp(self):
        # Coolest near 05:00, warmest near 15:00.
        return 24.0 + 7.0 * math.sin(2 * math.pi * (self.hour() - 9.0) / 24)

    def _model(self, name):
        if name == "moisture":
            self._advance()
            return self._moisture
        if name == "temp":
            return self._air_temp()
        if name == "humidity":
            return min(98.0, max(20.0, 60.0 - 2.2 * (self._air_temp() - 24.0)))
        if name == "soil_temp":
            return 22.0 + 3.0 * math.sin(2 * math.pi * (self.hour() - 11.0) / 24)
        if name in ("n", "p", "k"):
            self._advance()
            return self._nutrients[("n", "p", "k").index(name)]
        if name == "ec":
            self._advance()
            return self._ec
        if name == "ph":
            return self._ph
        if name == "wind_speed":
            return self._wind()
        if name == "battery_v":
            self._advance()
            return self._battery_v
        raise ValueError("unknown value %r" % name)

    def _wind(self):
        # A daily breeze, stronger in the afternoon, with a sharp gust about every 40 s.
        t = self.sim_seconds()
        base = 8.0 + 5.0 * math.sin(2 * math.pi * (self.hour() - 10.0) / 24)
        gust = 14.0 * max(0.0, math.sin(2 * math.pi * t / 41.0)) ** 12
        return max(0.0, base + gust)

    def _value(self, name):
        self._poll_steering()
        if name in self._set_values:
            return self._set_values[name]
        if name in self._file_values:
            return self._file_values[name]
        return self._model(name)

    def value(self, name):
        """The physical value now, as the probe sees it (a stuck sensor's frozen value)."""
        for sensor in SENSOR_VALUES:
            if name in SENSOR_VALUES[sensor] and self.fault_of(sensor) == "stuck":
                return self._stuck[sensor][name]
        return self._value(name)

    def physical(self, name):
        """The value itself, whatever a probe reports (a stuck probe's frozen value is
        what it reports, not what the medium is: the soil's temperature still acts on
        the EC and pH probes)."""
        return self._value(name)

    def noisy(self, name, amplitude):
        return self.value(name) + self._noise(amplitude)

    def snapshot(self):
        return {name: self.value(name) for name in VALUE_NAMES}
