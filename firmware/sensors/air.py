# Air temperature and humidity from a DHT22 or DHT11, through MicroPython's dht module
# (the board hands in dht.DHT22(pin) or dht.DHT11(pin)).
#
# A measure() holds the whole chip ~270 ms: drivers/dht/dht.c keeps the line high 250 ms,
# sends the 18 ms start pulse, then reads the answer, all of it in C; a sensor that does
# not answer fails after the same 268 ms. No Python runs meanwhile: not the socket, not a
# command. So the DHT is read seldom and at a time of the loop's choosing:
#   - at most every interval_s (default 30 s; at least the sensor's own minimum, 2 s for
#     a DHT22, 1 s for a DHT11); between reads every pass carries the last read's values,
#     at most interval_s old, or its error (a failed read is never held as a value);
#   - each try is a step of its own, announced by yielding HOLDS (firmware/sensors): the
#     loop takes it right after serving the socket, never in a turn in which a message
#     arrived (firmware/node.py, which also bounds how long it waits for such a turn);
#   - a failed try is tried again in a later step, up to retries times: one turn of the
#     loop never holds the chip for more than one measure(), where three in a row held
#     it ~810 ms.
import errno

from firmware.sensors import HOLDS, Sensor
from ticks import ticks_diff, ticks_ms

NAME = "dht"
KEYS = ("temp", "humidity")
UNITS = ("C", "%RH")
DECIMALS = (1, 1)  # the resolution published: places after the point
# The pin also drives the start pulse: an output pin.
RULES = (("pin", "gpio_out"), ("type", ("DHT11", "DHT22")), ("interval_s", (1, 3600)))


def least_interval_s(kind):
    """The fewest seconds between two reads the sensor answers; asked sooner, it returns
    stale data or nothing."""
    return 1 if kind == "DHT11" else 2


# interval_s: the least time between two reads (each holds the chip ~270 ms)
SETTINGS = (("enabled", True), ("pin", 4), ("type", "DHT22"), ("interval_s", 30))


def check(spec, problems):
    least = least_interval_s(spec["type"])
    if spec["interval_s"] < least:
        problems.append(("sensors.dht.interval_s", "must be at least %d: a %s answers at most every %d s"
                         % (least, spec["type"], least)))


def build(spec, hw):
    return AirSensor(hw.dht(spec["type"], spec["pin"]), spec["type"], interval_s=spec["interval_s"])


class AirSensor(Sensor):
    name = NAME
    keys = KEYS
    decimals = DECIMALS

    def __init__(self, device, kind="DHT22", retries=2, interval_s=30):
        self._device = device
        self._kind = kind
        self._retries = retries
        self._interval_ms = 0
        self._read_at = None  # when it was last asked (the last try)
        self.temp = None
        self.humidity = None
        self.error = None
        self.configure({"interval_s": interval_s})

    def configure(self, spec):
        self._interval_ms = max(spec["interval_s"], least_interval_s(self._kind)) * 1000

    def measure(self):
        """One try: the sensor asked once (the chip held ~270 ms); True when it answered
        with plausible values, else False with the reason in error."""
        try:
            self._device.measure()
        except OSError as exc:
            # dht_readinto raises ETIMEDOUT when the sensor does not answer
            self.error = "timeout" if exc.args and exc.args[0] == errno.ETIMEDOUT else "bus"
            return False
        except Exception as exc:  # the dht module's "checksum error"
            self.error = "crc" if "checksum" in str(exc) else "bus"
            return False
        temp = self._device.temperature()
        humidity = self._device.humidity()
        if not (-40 <= temp <= 80 and 0 <= humidity <= 100):
            self.error = "range"
            return False
        self.temp = round(temp, 1)  # DHT22 resolution; also hides float noise (59.800000000000004)
        self.humidity = round(humidity, 1)
        self.error = None
        return True

    def due(self):
        """Whether a read is due: never asked yet, or interval_s since the last try."""
        return self._read_at is None or ticks_diff(ticks_ms(), self._read_at) >= self._interval_ms

    def read_steps(self, values, errors):
        if self.due():
            for _ in range(1 + self._retries):
                yield HOLDS  # the next step holds the chip: the loop picks its turn
                self._read_at = ticks_ms()  # the interval runs from the last try
                if self.measure():
                    break
            else:
                self.temp = None  # the error is reported, not the read before it
                self.humidity = None
        values["temp"] = self.temp
        values["humidity"] = self.humidity
        if self.error:
            errors["dht"] = self.error
