# Hardware that answers at once, so a benchmark measures the firmware's own CPU time
# and not the wire (a real NPK reply takes ~15 ms at 9600 baud; a DHT22 read holds the
# chip ~270 ms, the driver's waits, which bench/command_latency.py measures the cost of).
from modbus_rtu import crc16


class InstantADC:
    def __init__(self, counts):
        self.counts = counts

    def read_u16(self):
        return self.counts << 4

    def read_uv(self):
        return self.counts * 3100000 // 4095


class InstantDHT:
    def measure(self):
        pass

    def temperature(self):
        return 24.5

    def humidity(self):
        return 51.2


class InstantModbusSlave:
    """A UART whose slave has its reply ready the moment the request is written."""

    def __init__(self, values):
        frame = bytearray([1, 3, 2 * len(values)])
        for v in values:
            frame.append(v >> 8)
            frame.append(v & 0xFF)
        crc = crc16(frame)
        frame.append(crc & 0xFF)
        frame.append(crc >> 8)
        self._reply = bytes(frame)
        self._pos = len(frame)

    def write(self, data):
        self._pos = 0
        return len(data)

    def flush(self):
        pass

    def any(self):
        return len(self._reply) - self._pos

    def read(self, n=None):
        n = self.any() if n is None else min(n, self.any())
        out = self._reply[self._pos:self._pos + n]
        self._pos += n
        return out

    def readinto(self, buf):
        n = min(len(buf), self.any())
        buf[:n] = self._reply[self._pos:self._pos + n]
        self._pos += n
        return n


class InstantPin:
    IRQ_FALLING = 2

    def value(self, level=None):
        return 1

    def irq(self, handler=None, trigger=None):
        self.handler = handler
