# The physical world around one node: what its probes would see. Soil moisture dries
# with time (faster when hot) and rises while the irrigation valve is open; air
# temperature and humidity follow the day; soil temperature lags behind the air; wind
# blows with gusts; N, P, K and EC rise while fertigation runs. Each sensor can be given
# a fault. A JSON "steering" file lets a person or a tool change values and faults of
# a running simulation. Deterministic for a given seed and the same calls at the same
# times. Runs on CPython and MicroPython alike (no typing, no dataclasses, no os.path).
import json
import math

from ticks import ticks_diff, ticks_ms

# Physical values, named as in PROTOCOL.md telemetry (soil_temp is extra: no telemetry
# key carries it, but the pH and EC probes feel it).
VALUE_NAMES = ("moisture", "temp", "humidity", "n", "p", "k", "ec", "ph", "wind_speed", "soil_temp")
SENSORS = ("soil", "dht", "npk", "ec", "ph", "wind")
FAULTS = ("timeout", "crc", "unplugged", "stuck")
# The values each sensor reports: what a "stuck" fault freezes.
SENSOR_VALUES = {"soil": ("moisture",), "dht": ("temp", "humidity"), "npk": ("n", "p", "k"),
                 "ec": ("ec",), "ph": ("ph",), "wind": ("wind_speed",)}
STEER_POLL_MS = 200  # the steering file is looked at no more often than this

# Soil water balance, in % volumetric moisture per simulated hour.
_DRY_PER_HOUR_AT_25C = 0.6
_DRY_PER_DEGREE = 0.04  # 4 % faster evaporation per degree above 25 C
_WET_PER_HOUR_IRRIGATING = 30.0
_MOISTURE_LIMITS = (3.0, 97.0)  # residual water / saturation: never 0 or 100
# Fertigation, per simulated hour: N, P, K in mg/kg and EC in mS/cm.
_FERT_PER_HOUR = (20.0, 8.0, 30.0)
_EC_PER_HOUR_FERTIGATING = 0.6
_NPK_MAX = 1999.0
_EC_MAX = 4.0


class Field:
    """The physical world of one node.

    seed: makes noise and gusts repeatable. speed: simulated seconds per real second.
    start_hour: local time of day when the model starts. moisture: % at the start.
    steer_path: a JSON file re-read when its content changes, e.g.
      {"moisture": 12.5, "wind_speed": 30, "faults": {"dht": "timeout"}, "speed": 60}
    A value present in the file overrides the model; removing it hands it back.
    Bad content is reported in steer_error and ignored (the last good steering stays)."""

    def __init__(self, seed=1, speed=1.0, start_hour=9.0, steer_path=None, moisture=45.0):
        self.seed = seed
        self._rng = (seed * 2654435761 + 12345) & 0x7FFFFFFF
        # Gusts differ between seeds: their period and phase come from the seed.
        self._gust_period_s = 31.0 + (seed * 7919) % 23
        self._gust_phase_s = float((seed * 104729) % 60)
        self.speed = float(speed)
        self.start_hour = float(start_hour)
        self.steer_path = steer_path
        self.steer_error = None
        self._steer_text = None
        self._steer_checked = None
        self._file_values = {}
        self._file_faults = {}
        self._set_values = {}
        self._set_faults = {}
        self._stuck = {}  # sensor -> {value name: frozen value}
        self._sim_s = 0.0
        self._ticks = ticks_ms()
        self._integrated_s = 0.0  # simulated time the soil and nutrients are integrated up to
        self.actuators = {"irrigation": False, "fertigation": False}
        self._moisture = float(moisture)
        self._nutrients = [38.0, 15.0, 152.0]
        self._ec = 1.06
        self._ph = 6.8

    # --- time ---

    def sim_seconds(self):
        """Simulated seconds since the model started."""
        now = ticks_ms()
        self._sim_s += ticks_diff(now, self._ticks) / 1000 * self.speed
        self._ticks = now
        return self._sim_s

    def set_speed(self, speed):
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.sim_seconds()  # bank the time run at the old speed
        self.speed = float(speed)

    def hour(self):
        """Local time of day in the simulation, 0 <= hour < 24."""
        return (self.start_hour + self.sim_seconds() / 3600) % 24

    # --- programmatic steering ---

    def set(self, name, value):
        """Override a physical value; None gives it back to the model."""
        if name not in VALUE_NAMES:
            raise ValueError("unknown value %r" % name)
        if value is None:
            self._set_values.pop(name, None)
        else:
            self._set_values[name] = float(value)

    def fault(self, sensor, kind):
        """Switch a fault on for a sensor; kind None switches it off."""
        if sensor not in SENSORS:
            raise ValueError("unknown sensor %r" % sensor)
        if kind is None:
            self._set_faults.pop(sensor, None)
        elif kind in FAULTS:
            self._set_faults[sensor] = kind
        else:
            raise ValueError("unknown fault %r" % kind)
        self.fault_of(sensor)  # a stuck sensor freezes at this moment's values

    def clear(self, name=None):
        """Drop programmatic overrides and faults: all of them, or those of one value
        or sensor name ("ph" and "ec" are both). The steering file's stay."""
        if name is None:
            self._set_values = {}
            self._set_faults = {}
        elif name in VALUE_NAMES or name in SENSORS:
            self._set_values.pop(name, None)
            self._set_faults.pop(name, None)
        else:
            raise ValueError("unknown value or sensor %r" % name)
        for sensor in SENSORS:
            self.fault_of(sensor)

    def fault_of(self, sensor):
        """The fault a sensor has now (None when it works)."""
        self._poll_steering()
        kind = self._set_faults.get(sensor) or self._file_faults.get(sensor)
        if kind == "stuck":
            if sensor not in self._stuck:
                self._stuck[sensor] = {k: self._value(k) for k in SENSOR_VALUES[sensor]}
        else:
            self._stuck.pop(sensor, None)
        return kind

    # --- the steering file ---

    def _poll_steering(self):
        if self.steer_path is None:
            return
        now = ticks_ms()
        if self._steer_checked is not None and ticks_diff(now, self._steer_checked) < STEER_POLL_MS:
            return
        self._steer_checked = now
        try:
            with open(self.steer_path) as f:
                text = f.read()
        except OSError:
            text = ""  # no file (yet): nothing is steered
        # The content decides, not the mtime: mtime has a one-second resolution.
        if text == self._steer_text:
            return
        self._steer_text = text
        try:
            data = json.loads(text) if text.strip() else {}
            self._apply_steering(data)
            self.steer_error = None
        except (ValueError, TypeError) as exc:  # json's errors are ValueErrors on both
            self.steer_error = "%s: %s" % (self.steer_path, exc)

    def _apply_steering(self, data):
        # Checked in full before anything changes: a bad file changes nothing.
        if type(data) is not dict:
            raise ValueError("must hold a JSON object")
        values = {}
        faults = {}
        speed = None
        for key in data:
            value = data[key]
            if key == "faults":
                if type(value) is not dict:
                    raise ValueError("faults must be an object")
                for sensor in value:
                    if sensor not in SENSORS:
                        raise ValueError("unknown sensor %r in faults" % sensor)
                    if value[sensor] is not None and value[sensor] not in FAULTS:
                        raise ValueError("unknown fault %r for %s" % (value[sensor], sensor))
                    if value[sensor] is not None:
                        faults[sensor] = value[sensor]
            elif key == "speed":
                if type(value) not in (int, float) or not value > 0:
                    raise ValueError("speed must be a positive number")
                speed = value
            elif key in VALUE_NAMES:
                if value is not None and type(value) not in (int, float):
                    raise ValueError("%s must be a number" % key)
                if value is not None:
                    values[key] = float(value)
            else:
                raise ValueError("unknown key %r" % key)
        self._file_values = values
        self._file_faults = faults
        if speed is not None and float(speed) != self.speed:
            self.set_speed(speed)

    # --- actuators ---

    def set_actuator(self, name, on):
        """An actuator (relay) switched; the soil is integrated up to now first."""
        self._integrate()
        self.actuators[name] = bool(on)

    # --- physics ---

    def noise(self, amplitude):
        """A deterministic pseudo-random value in [-amplitude, amplitude]."""
        self._rng = (self._rng * 1103515245 + 12345) & 0x7FFFFFFF
        return ((self._rng >> 8) / float(1 << 23) - 0.5) * 2 * amplitude

    def _integrate(self):
        now = self.sim_seconds()
        hours = (now - self._integrated_s) / 3600
        if hours <= 0:
            return
        self._integrated_s = now
        rate = -_DRY_PER_HOUR_AT_25C * (1 + _DRY_PER_DEGREE * (self._air_temp() - 25))
        if self.actuators.get("irrigation"):
            rate += _WET_PER_HOUR_IRRIGATING
        low, high = _MOISTURE_LIMITS
        self._moisture = min(high, max(low, self._moisture + rate * hours))
        if self.actuators.get("fertigation"):
            self._ec = min(_EC_MAX, self._ec + _EC_PER_HOUR_FERTIGATING * hours)
            for i in range(3):
                self._nutrients[i] = min(_NPK_MAX, self._nutrients[i] + _FERT_PER_HOUR[i] * hours)

    def _air_temp(self):
        # Coolest near 03:00, warmest near 15:00.
        return 24.0 + 7.0 * math.sin(2 * math.pi * (self.hour() - 9.0) / 24)

    def _wind(self):
        # A breeze that is strongest in the afternoon, with a sharp gust every half minute or so.
        t = self.sim_seconds() + self._gust_phase_s
        base = 8.0 + 5.0 * math.sin(2 * math.pi * (self.hour() - 10.0) / 24)
        gust = 14.0 * max(0.0, math.sin(2 * math.pi * t / self._gust_period_s)) ** 12
        return max(0.0, base + gust)

    def _model(self, name):
        if name == "moisture":
            self._integrate()
            return self._moisture
        if name == "temp":
            return self._air_temp()
        if name == "humidity":
            # Relative humidity falls as the air warms (the absolute humidity barely moves).
            return min(98.0, max(20.0, 60.0 - 2.2 * (self._air_temp() - 24.0)))
        if name == "soil_temp":
            # The soil follows the air with a smaller swing, about two hours later.
            return 22.0 + 3.0 * math.sin(2 * math.pi * (self.hour() - 11.0) / 24)
        if name in ("n", "p", "k"):
            self._integrate()
            return self._nutrients[("n", "p", "k").index(name)]
        if name == "ec":
            self._integrate()
            return self._ec
        if name == "ph":
            return self._ph
        if name == "wind_speed":
            return self._wind()
        raise ValueError("unknown value %r" % name)

    def _value(self, name):
        self._poll_steering()
        if name in self._set_values:
            return self._set_values[name]
        if name in self._file_values:
            return self._file_values[name]
        return self._model(name)

    def value(self, name):
        """The physical value now as the probe sees it (a stuck sensor's frozen value)."""
        if name not in VALUE_NAMES:
            raise ValueError("unknown value %r" % name)
        for sensor in SENSOR_VALUES:
            if name in SENSOR_VALUES[sensor] and self.fault_of(sensor) == "stuck":
                return self._stuck[sensor][name]
        return self._value(name)

    def snapshot(self):
        """Every physical value now, as a dict."""
        return {name: self.value(name) for name in VALUE_NAMES}
