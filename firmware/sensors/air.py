# Air temperature and humidity from a DHT22 or DHT11, through MicroPython's dht module
# (the board hands in dht.DHT22(pin) or dht.DHT11(pin)).
import errno

from firmware.sensors import Sensor
from ticks import ticks_diff, ticks_ms

NAME = "dht"
KEYS = ("temp", "humidity")
UNITS = ("C", "%RH")
DECIMALS = (1, 1)  # the resolution published: places after the point
# The pin also drives the start pulse: an output pin.
RULES = (("pin", "gpio_out"), ("type", ("DHT11", "DHT22")))

# The sensors answer at most this often; asked sooner they return stale data or nothing.
_MIN_INTERVAL_MS = {"DHT22": 2000, "DHT11": 1000}


SETTINGS = (("enabled", True), ("pin", 4), ("type", "DHT22"))


def build(spec, hw):
    return AirSensor(hw.dht(spec["type"], spec["pin"]), spec["type"])


class AirSensor(Sensor):
    name = NAME
    keys = KEYS
    decimals = DECIMALS

    def __init__(self, device, kind="DHT22", retries=2):
        self._device = device
        self._min_interval_ms = _MIN_INTERVAL_MS[kind]
        self._retries = retries
        self._measured_at = None
        self.temp = None
        self.humidity = None
        self.error = None

    def measure(self):
        """Ask the sensor, retrying a failed measure() a bounded number of times."""
        for _ in range(1 + self._retries):
            try:
                self._device.measure()
            except OSError as exc:
                # dht_readinto raises ETIMEDOUT when the sensor does not answer
                self.error = "timeout" if exc.args and exc.args[0] == errno.ETIMEDOUT else "bus"
                continue
            except Exception as exc:  # the dht module's "checksum error"
                self.error = "crc" if "checksum" in str(exc) else "bus"
                continue
            temp = self._device.temperature()
            humidity = self._device.humidity()
            if not (-40 <= temp <= 80 and 0 <= humidity <= 100):
                self.error = "range"
                continue
            self.temp = round(temp, 1)  # DHT22 resolution; also hides float noise (59.800000000000004)
            self.humidity = round(humidity, 1)
            self.error = None
            return True
        self.temp = None
        self.humidity = None
        return False

    def read_steps(self, values, errors):
        now = ticks_ms()
        if self._measured_at is None or ticks_diff(now, self._measured_at) >= self._min_interval_ms:
            self._measured_at = now
            self.measure()
            yield  # a measure() holds the CPU ~25 ms per try
        values["temp"] = self.temp
        values["humidity"] = self.humidity
        if self.error:
            errors["dht"] = self.error
