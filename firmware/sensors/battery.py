# A battery's voltage through a resistor divider on an ADC1 pin (a sleeping node's
# supply): battery_v in volts and battery_pct, linear between empty_v and full_v (a
# Li-ion cell under a light load is close enough to linear from 3.3 V to 4.2 V).
from firmware.sensors import Sensor
from firmware.sensors.sampling import median
from micropython import const

NAME = "battery"
KEYS = ("battery_v", "battery_pct")
UNITS = ("V", "%")
DECIMALS = (2, 0)  # the resolution published: places after the point
RULES = (("pin", "adc1"), ("samples", (1, 64)), ("ratio", (1.0, 20.0)), ("empty_v", (0.5, 60.0)),
         ("full_v", (0.5, 60.0)))

_OPEN_UV = const(50000)  # a battery gone: the divider pulls the pin to ground

# ratio: battery volts per volt at the pin (2.0 for two equal resistors)
SETTINGS = (("enabled", False), ("pin", 39), ("samples", 9), ("ratio", 2.0), ("empty_v", 3.3), ("full_v", 4.2))


def check(spec, problems):
    if spec["empty_v"] >= spec["full_v"]:
        problems.append(("sensors.battery.empty_v", "must be below full_v"))


def build(spec, hw):
    return Battery(hw.adc(spec["pin"]), spec["ratio"], spec["empty_v"], spec["full_v"], spec["samples"])


class Battery(Sensor):
    name = NAME
    keys = KEYS
    decimals = DECIMALS

    def __init__(self, adc, ratio=2.0, empty_v=3.3, full_v=4.2, samples=9):
        self._adc = adc
        self._samples = [0] * samples
        self.configure({"ratio": ratio, "empty_v": empty_v, "full_v": full_v})

    def configure(self, spec):
        self.ratio = spec["ratio"]
        self.empty_v = spec["empty_v"]
        self.full_v = spec["full_v"]

    def read_steps(self, values, errors):
        micro = median(self._adc.read_uv, self._samples)
        yield  # sampling took a few ms: give the main loop its turn
        if micro < _OPEN_UV:
            values["battery_v"] = values["battery_pct"] = None
            errors["battery"] = "unplugged"
            return
        volts = micro * self.ratio / 1000000
        values["battery_v"] = round(volts, 2)
        share = (volts - self.empty_v) / (self.full_v - self.empty_v)
        values["battery_pct"] = round(100 * min(1.0, max(0.0, share)))
