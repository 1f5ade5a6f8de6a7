# Stand-in for MicroPython's dht module (drivers/dht/dht.py): the sensor's 5 raw bytes
# come from the field model through the chip, and are decoded and checked the way
# the real driver does, so a CRC fault fails the real check. A measure() holds the
# interpreter as the real one does (see _readinto), whether the sensor answers or not.
import errno

import simchip
from ticks import sleep_ms


class DHTBase:
    def __init__(self, pin):
        self.pin = pin
        self.buf = bytearray(5)

    def measure(self):
        buf = self.buf
        _readinto(self.pin, buf, self)
        if (buf[0] + buf[1] + buf[2] + buf[3]) & 0xFF != buf[4]:
            raise Exception("checksum error")


class DHT11(DHTBase):
    def humidity(self):
        return self.buf[0]

    def temperature(self):
        return self.buf[2]

    def _encode(self, temp, humidity, buf):
        buf[0] = int(round(humidity)) & 0xFF
        buf[1] = 0
        buf[2] = int(round(temp)) & 0xFF
        buf[3] = 0


class DHT22(DHTBase):
    def humidity(self):
        return (self.buf[0] << 8 | self.buf[1]) * 0.1

    def temperature(self):
        t = ((self.buf[2] & 0x7F) << 8 | self.buf[3]) * 0.1
        if self.buf[2] & 0x80:
            t = -t
        return t

    def _encode(self, temp, humidity, buf):
        h = int(round(humidity * 10))
        t = int(round(abs(temp) * 10))
        buf[0] = h >> 8
        buf[1] = h & 0xFF
        buf[2] = (t >> 8) | (0x80 if temp < 0 else 0)
        buf[3] = t & 0xFF


# What drivers/dht/dht.c costs, all of it in C, the interpreter blocked (no Python
# code runs; the ESP32's mp_hal_delay_ms only runs scheduled callbacks): the line held
# high 250 ms, then the 18 ms start pulse, then at most 100 us for an answer. A sensor
# that does not answer fails then, after the same 268 ms; one that answers adds its
# frame: 80 + 80 us, then 40 bits of 50 us low and 26 or 70 us high.
START_MS = 268
FRAME_MS = 4


def _readinto(pin, buf, sensor):
    # The real dht_readinto raises OSError(ETIMEDOUT) when no sensor answers the start pulse.
    chip = simchip.chip()
    chip.hold(START_MS)
    if getattr(pin, "id", pin) != chip.wiring["dht"]["pin"]:
        raise OSError(errno.ETIMEDOUT)
    field = chip.field
    fault = field.fault_of("dht")
    if fault in ("timeout", "unplugged"):
        raise OSError(errno.ETIMEDOUT)
    chip.hold(FRAME_MS)
    while fault == "hang" and not chip.closed:
        sleep_ms(100)
    noise = 0.0 if fault == "stuck" else 1.0  # a stuck sensor repeats itself exactly
    temp = field.noisy("temp", 0.05 * noise)
    humidity = min(100.0, max(0.0, field.noisy("humidity", 0.2 * noise)))
    sensor._encode(temp, humidity, buf)
    buf[4] = (buf[0] + buf[1] + buf[2] + buf[3]) & 0xFF
    if fault == "crc":
        buf[4] ^= 0x01
