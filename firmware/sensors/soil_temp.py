# Soil temperature (C) from a DS18B20 on a OneWire bus: the waterproof probe sold with
# analog EC kits, buried beside the EC and pH probes, so that they are compensated with
# the temperature of the soil they sit in (firmware/sensors/reader.py), not the air's.
# The board hands in onewire.OneWire(pin) (the ESP32 image's module); this driver speaks
# the DS18B20's protocol through it: one probe on the bus (Skip ROM), powered from VDD.
#
# A 12-bit conversion takes up to 750 ms, and the driver never holds the loop for it:
# each pass reads the conversion the pass before started, then starts the next one. A
# pass asked for before that one is done (a read command soon after a pass) gets the
# last value, as the DHT gives its last within its minimum interval. A pass waits for a
# conversion, yielding, only when it has no value to give: the first pass after boot,
# and the pass after a failed read. A conversion older than _STALE_MS is not used: a
# fresh one is made and waited for. Soil temperature moves slowly (well under 0.1 C a
# minute at probe depth), so a value one telemetry interval old compensates as well as
# a new one.
from firmware.sensors import Sensor
from micropython import const
from ticks import ticks_diff, ticks_ms

NAME = "soil_temp"
KEYS = ("soil_temp",)
UNITS = ("C",)
DECIMALS = (1,)  # the resolution published (the probe resolves 0.0625 C at 12 bits)
# The master pulls the data line low (open drain, 4.7 kOhm pull-up to 3.3 V): an output pin.
RULES = (("pin", "gpio_out"),)

SETTINGS = (("enabled", True), ("pin", 18))

_SKIP_ROM = const(0xCC)  # the only device on the bus: no ROM code needed
_CONVERT_T = const(0x44)
_READ_SCRATCHPAD = const(0xBE)
_CONVERT_MS = const(750)  # t_CONV at 12 bits, the datasheet's maximum
_STALE_MS = const(300000)
_POWER_ON_RAW = const(0x0550)  # 85.0 C: the register's value until a conversion finishes
# Byte 4 of the scratchpad, the configuration register: bit 7 reads 0 and bits 0-4 read
# 1 whatever the resolution. A data line held low reads all zeros, whose CRC is 0 too.
_CONFIG_MASK = const(0x9F)
_CONFIG_FIXED = const(0x1F)
_LOWEST_RAW = const(-55 * 16)  # the probe's range, -55..125 C, in its 1/16 C
_HIGHEST_RAW = const(125 * 16)


def build(spec, hw):
    return SoilTemp(hw.onewire(spec["pin"]))


class SoilTemp(Sensor):
    """A DS18B20 alone on bus (an onewire.OneWire). read_steps sets soil_temp, or None
    with errors["soil_temp"]: "unplugged" (no presence pulse), "crc" (the scratchpad
    failed its CRC), "frame" (a scratchpad no DS18B20 sends: the line held low), "reset"
    (the power-on 85.0 C: the probe lost power since the conversion was asked for),
    "range" (outside the probe's -55..125 C)."""

    name = NAME
    keys = KEYS
    decimals = DECIMALS

    def __init__(self, bus):
        self._bus = bus
        self._pad = bytearray(9)  # the scratchpad
        self._started = None  # ticks_ms when the conversion to read next was asked for
        self.temp = None  # the last conversion read, None when it failed

    def _command(self, command):
        """Reset, Skip ROM, command: ticks_ms then, or None when no probe answers."""
        bus = self._bus
        if not bus.reset():
            return None
        bus.writebyte(_SKIP_ROM)
        bus.writebyte(command)
        return ticks_ms()

    def read_steps(self, values, errors):
        started = self._started
        if self.temp is not None and started is not None and 0 <= ticks_diff(ticks_ms(), started) < _CONVERT_MS:
            values["soil_temp"] = self.temp  # the next one is not done yet: the last stands
            return
        values["soil_temp"] = None
        if started is None or not 0 <= ticks_diff(ticks_ms(), started) <= _STALE_MS:
            started = self._started = self._command(_CONVERT_T)
            if started is None:
                errors[NAME] = "unplugged"
                return
        while ticks_diff(ticks_ms(), started) < _CONVERT_MS:
            yield  # the loop serves the network meanwhile
        self.temp = None
        error = None
        if self._command(_READ_SCRATCHPAD) is None:
            error = "unplugged"
        else:
            bus = self._bus
            pad = self._pad
            bus.readinto(pad)
            raw = pad[0] | pad[1] << 8
            if bus.crc8(pad):  # the CRC over all 9 bytes, its own included, is 0
                error = "crc"
            elif pad[4] & _CONFIG_MASK != _CONFIG_FIXED:
                error = "frame"
            elif raw == _POWER_ON_RAW:
                error = "reset"
            else:
                if raw & 0x8000:  # two's complement
                    raw -= 0x10000
                if _LOWEST_RAW <= raw <= _HIGHEST_RAW:
                    self.temp = raw / 16
                else:
                    error = "range"
        self._started = self._command(_CONVERT_T)  # the next pass's, converting while the loop runs
        if error:
            errors[NAME] = error
            return
        values["soil_temp"] = self.temp
