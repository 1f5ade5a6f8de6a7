# Electrical conductivity (mS/cm, compensated to 25 C) from an analog EC probe on an
# ADC1 pin, or from an Atlas EZO-EC circuit on I2C. The analog probe board's output is
# linear in the conductivity at the solution's own temperature: ec_t = k * volts +
# offset. Compensation to 25 C is linear with a coefficient of 1.85-2 %/C depending on
# the probe's maker (temp_coef). Calibration uses reference solutions whose value is
# given at 25 C (1.413, 12.88 mS/cm): firmware/calibration.py.
from micropython import const

from firmware.sensors.sampling import AnalogProbe

NAME = "ec"
KEYS = ("ec",)
UNITS = ("mS/cm",)
DECIMALS = (3,)  # the resolution published: places after the point
RULES = (("bus", ("adc", "i2c")), ("pin", "adc1"), ("i2c_addr", (8, 119)), ("temp_coef", (0.0, 0.1)),
         ("k", (0.001, 1000.0)), ("offset", (-50.0, 50.0)))

_RAIL_HIGH_UV = const(3050000)  # at 11 dB the ADC saturates near 3.1 V: an open input
_MAX_MS_CM = const(20.0)  # the analog probes' range


# Analog: ec_t = k * volts + offset (mS/cm), then compensated to 25 C.
SETTINGS = (("enabled", True), ("bus", "adc"), ("pin", 35), ("i2c_addr", 0x64), ("temp_coef", 0.02),
            ("k", 2.0), ("offset", 0.0))


def build(spec, hw):
    if spec["bus"] == "i2c":
        from ezo import EzoCircuit
        from firmware.sensors.ezo_probes import EzoEC

        return EzoEC(EzoCircuit(hw.i2c(), spec["i2c_addr"]))
    return AnalogEC(hw.adc(spec["pin"]), spec["k"], spec["offset"], spec["temp_coef"])


def to_25c(ec_t, temp_c, temp_coef):
    return ec_t / (1 + temp_coef * (temp_c - 25))


class AnalogEC(AnalogProbe):
    name = NAME
    keys = KEYS
    decimals = DECIMALS

    def __init__(self, adc, k=1.0, offset=0.0, temp_coef=0.02, samples=9):
        super().__init__(adc, samples)
        self.k = k
        self.offset = offset
        self.temp_coef = temp_coef

    def configure(self, spec):
        self.k = spec["k"]
        self.offset = spec["offset"]
        self.temp_coef = spec["temp_coef"]

    def read_steps(self, values, errors):
        micro = self.read_volts()
        yield
        values["ec"] = None
        if micro >= _RAIL_HIGH_UV:
            errors["ec"] = "unplugged"
            return
        ec25 = to_25c(max(0.0, self.k * self.volts + self.offset), self.temperature(), self.temp_coef)
        if ec25 > _MAX_MS_CM:
            errors["ec"] = "range"
            return
        values["ec"] = round(ec25, 3)
