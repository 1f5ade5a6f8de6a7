# Capacitive soil moisture probe on an ADC1 pin (11 dB attenuation, set by the board).
# The probe's output falls as the soil gets wetter; a two-point calibration in raw
# 12-bit counts (dry air / saturated soil) maps it to 0-100 %.
from micropython import const

from firmware.sensors import Sensor
from firmware.sensors.sampling import median

NAME = "soil"
KEYS = ("moisture",)
UNITS = ("%",)
DECIMALS = (1,)  # the resolution published: places after the point
RULES = (("pin", "adc1"), ("samples", (1, 64)), ("dry", (0, 4095)), ("wet", (0, 4095)))

_FLOOR = const(40)  # counts: no probe output is this low; the input is open
_FULL_SCALE = const(4095)


# dry/wet: raw counts in air and in saturated soil (calibrate moisture dry/wet)
SETTINGS = (("enabled", True), ("pin", 34), ("samples", 9), ("dry", 3200), ("wet", 1300))


def check(spec, problems):
    if spec["dry"] == spec["wet"]:
        problems.append(("sensors.soil.wet", "must differ from sensors.soil.dry"))
        problems.append(("sensors.soil.dry", "must differ from sensors.soil.wet"))


def build(spec, hw):
    return SoilMoisture(hw.adc(spec["pin"]), spec["dry"], spec["wet"], spec["samples"])


def connected(raw):
    """Whether a raw count can come from a probe (not an open or shorted input)."""
    return _FLOOR <= raw < _FULL_SCALE


class SoilMoisture(Sensor):
    name = NAME
    keys = KEYS
    decimals = DECIMALS

    def __init__(self, adc, dry=3200, wet=1300, samples=9):
        self._adc = adc
        self._samples = [0] * samples
        self.raw = None  # last median, for calibration from the REPL or a command
        self.calibrate(dry, wet)

    def configure(self, spec):
        self.calibrate(spec["dry"], spec["wet"])

    def calibrate(self, dry, wet):
        if dry == wet:
            raise ValueError("dry and wet counts must differ")
        self.dry = dry
        self.wet = wet

    def _sample(self):
        return self._adc.read_u16() >> 4  # 12-bit counts, whatever the ADC's width

    def read_raw(self):
        self.raw = median(self._sample, self._samples)
        return self.raw

    def read_steps(self, values, errors):
        raw = self.read_raw()
        yield  # sampling took a few ms: give the main loop its turn
        if not connected(raw):
            values["moisture"] = None
            errors["soil"] = "unplugged"
            return
        percent = (self.dry - raw) * 100 / (self.dry - self.wet)
        values["moisture"] = round(min(100.0, max(0.0, percent)), 1)
