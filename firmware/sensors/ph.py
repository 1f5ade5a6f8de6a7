# pH from an analog probe through its amplifier board on an ADC1 pin, or from an
# Atlas EZO-pH circuit on I2C. The analog calibration is stored as a slope (mV per pH
# at 25 C, negative: the electrode's voltage falls as pH rises) and an offset (volts
# at pH 7); the slope is scaled with temperature as the Nernst equation says (the fit
# from buffers is firmware/calibration.py's).
from micropython import const

from firmware.sensors.sampling import AnalogProbe

NAME = "ph"
KEYS = ("ph",)
UNITS = ("pH",)
DECIMALS = (2,)  # the resolution published: places after the point
RULES = (("bus", ("adc", "i2c")), ("pin", "adc1"), ("i2c_addr", (8, 119)), ("gain", (0.1, 20.0)),
         ("slope_mv", (-2000.0, -1.0)), ("offset_v", (0.0, 3.3)))

NERNST_MV = 59.16  # ideal electrode slope at 25 C, mV per pH
K25 = 298.15
RAIL_LOW_UV = const(50000)  # an open input reads at a rail
RAIL_HIGH_UV = const(3050000)  # at 11 dB the ADC saturates near 3.1 V


# Analog: slope_mv per pH at 25 C through the board's gain, offset_v at pH 7.
SETTINGS = (("enabled", True), ("bus", "adc"), ("pin", 36), ("i2c_addr", 0x63), ("gain", 1.0),
            ("slope_mv", -59.16), ("offset_v", 1.5))


def build(spec, hw):
    if spec["bus"] == "i2c":
        from ezo import EzoCircuit
        from firmware.sensors.ezo_probes import EzoPH

        return EzoPH(EzoCircuit(hw.i2c(), spec["i2c_addr"]))
    return AnalogPH(hw.adc(spec["pin"]), spec["slope_mv"], spec["offset_v"])


def kelvin(temp_c):
    return temp_c + 273.15


def ph_from_volts(volts, slope_mv25, offset_v, temp_c=25.0):
    slope_v = slope_mv25 / 1000 * kelvin(temp_c) / K25
    return 7 + (volts - offset_v) / slope_v


class AnalogPH(AnalogProbe):
    name = NAME
    keys = KEYS
    decimals = DECIMALS

    def __init__(self, adc, slope_mv=-NERNST_MV, offset_v=1.5, samples=9):
        super().__init__(adc, samples)
        self.slope_mv = slope_mv
        self.offset_v = offset_v

    def configure(self, spec):
        self.slope_mv = spec["slope_mv"]
        self.offset_v = spec["offset_v"]

    def read_steps(self, values, errors):
        micro = self.read_volts()
        yield
        values["ph"] = None
        if micro < RAIL_LOW_UV or micro >= RAIL_HIGH_UV:
            errors["ph"] = "unplugged"
            return
        ph = ph_from_volts(self.volts, self.slope_mv, self.offset_v, self.temperature())
        if not 0 <= ph <= 14:
            errors["ph"] = "range"
            return
        values["ph"] = round(ph, 2)
