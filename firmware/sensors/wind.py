# Cup anemometer: a reed switch to GND on a GPIO with pull-up closes once (or twice)
# per turn. Pulses are counted in the pin IRQ; speed = pulse rate x kmh_per_hz
# (2.4 for the common one-pulse-per-turn cups). Reports the mean over the telemetry
# interval and the gust: the highest 3 s mean, tracked in one-second slots.
# A stopped or disconnected anemometer gives no pulses: it reads 0 km/h, as calm does.
from micropython import const

from firmware.sensors import Sensor
from ticks import ticks_add, ticks_diff, ticks_ms

NAME = "wind"
# wind_gust (the highest 3 s mean) is sent only when measured.
KEYS = ("wind_speed", "wind_gust")
UNITS = ("km/h", "km/h")
DECIMALS = (1, 1)  # the resolution published: places after the point
RULES = (("pin", "gpio_pullup"), ("kmh_per_hz", (0.01, 100.0)), ("debounce_ms", (0, 100)))

_SLOT_MS = const(1000)
_GUST_SLOTS = const(3)  # WMO gust: a 3 s mean
_RING = const(4)  # cumulative counts at the last four slot marks


SETTINGS = (("enabled", True), ("pin", 27), ("kmh_per_hz", 2.4), ("debounce_ms", 5))


def build(spec, hw):
    return Anemometer(hw.pulse_input(spec["pin"]), spec["kmh_per_hz"], spec["debounce_ms"])


class Anemometer(Sensor):
    name = NAME
    keys = KEYS
    decimals = DECIMALS

    def __init__(self, pin, kmh_per_hz=2.4, debounce_ms=5):
        self.kmh_per_hz = kmh_per_hz
        self._debounce_ms = debounce_ms
        self._count = 0
        now = ticks_ms()
        self._last_edge = ticks_add(now, -1000)  # the very first edge counts
        self._marks = [0] * _RING
        self._mark = 0
        self._mark_at = now
        self._gust_pulses = 0
        self._read_count = 0
        self._read_at = now
        pin.irq(handler=self._on_edge, trigger=pin.IRQ_FALLING)

    def _on_edge(self, pin):
        # IRQ handler: no allocation (small ints only), no floats.
        now = ticks_ms()
        if ticks_diff(now, self._last_edge) >= self._debounce_ms:
            self._count += 1
            self._last_edge = now

    def poll(self):
        """Close the one-second slots that have ended."""
        now = ticks_ms()
        behind = ticks_diff(now, self._mark_at) // _SLOT_MS
        if behind > _RING:  # the loop stalled: restart the slots rather than replay them
            for i in range(_RING):
                self._marks[i] = self._count
            self._mark_at = now
            return
        for _ in range(behind):
            self._mark_at = ticks_add(self._mark_at, _SLOT_MS)
            self._mark = (self._mark + 1) % _RING
            self._marks[self._mark] = self._count
            window = self._count - self._marks[(self._mark + _RING - _GUST_SLOTS) % _RING]
            if window > self._gust_pulses:
                self._gust_pulses = window

    def read_steps(self, values, errors):
        self.poll()
        now = ticks_ms()
        elapsed_ms = ticks_diff(now, self._read_at)
        count = self._count
        speed = 0.0
        if elapsed_ms > 0:
            speed = (count - self._read_count) * 1000 / elapsed_ms * self.kmh_per_hz
        gust = self._gust_pulses * self.kmh_per_hz / _GUST_SLOTS
        values["wind_speed"] = round(speed, 1)
        values["wind_gust"] = round(max(gust, speed), 1)  # an interval under 3 s has no full window
        self._read_count = count
        self._read_at = now
        self._gust_pulses = 0
        yield  # a step generator like the other drivers; the work is already done
