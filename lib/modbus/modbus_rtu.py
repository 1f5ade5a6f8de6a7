# Modbus RTU master over a half-duplex RS485 UART (MAX485-style transceiver whose
# DE/RE pins are tied to one GPIO). Reads holding (3) and input (4) registers.
# A transaction is a step generator (see coop) that yields while it waits for the
# reply, so a main loop can keep serving the network; read_holding()/read_input()
# run one alone. Either way it ends within timeout_ms plus the request's wire time.
from micropython import const

from coop import run
from ticks import sleep_ms, ticks_diff, ticks_ms

READ_HOLDING = const(3)
READ_INPUT = const(4)
_MAX_REGISTERS = const(125)  # the protocol's limit for one read
_ERROR_FLAG = const(0x80)

# Exception codes a slave can answer (Modbus Application Protocol v1.1b3, section 7),
# 1..6 (a constant tuple: in flash when frozen, where a dict would be built in the heap).
_EXCEPTIONS = const(("illegal function", "illegal data address", "illegal data value", "slave device failure",
                     "acknowledge", "slave device busy"))


class ModbusError(Exception):
    """reason: 'timeout', 'crc', 'frame' or 'exception' (then code holds the exception code)."""

    def __init__(self, reason, detail, code=0):
        super().__init__("%s: %s" % (reason, detail))
        self.reason = reason
        self.code = code


def crc16(data, length=None):
    """CRC-16/Modbus (poly 0xA001 reflected, init 0xFFFF) of data[:length]."""
    crc = 0xFFFF
    for i in range(len(data) if length is None else length):
        crc ^= data[i]
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xA001
            else:
                crc >>= 1
    return crc


class ModbusRTU:
    """A master on one bus. uart: a configured machine.UART; de: the DE/RE Pin (or None
    for transceivers that switch by themselves)."""

    def __init__(self, uart, de=None, baudrate=9600, timeout_ms=500):
        self._uart = uart
        self._de = de
        self.timeout_ms = timeout_ms
        # One character is 10 bits (8N1); the spec's inter-frame gap is 3.5 characters.
        self._char_us = 10000000 // baudrate
        self._request = bytearray(8)
        self._reply = bytearray(5 + 2 * _MAX_REGISTERS)
        self._reply_view = memoryview(self._reply)
        if de is not None:
            de.value(0)  # listen

    def read_holding(self, slave, start, count, into=None):
        """Registers start..start+count-1 of slave as a list of 16-bit ints."""
        return run(self.read_steps(slave, READ_HOLDING, start, count, into))

    def read_input(self, slave, start, count, into=None):
        return run(self.read_steps(slave, READ_INPUT, start, count, into))

    def read_steps(self, slave, function, start, count, into=None):
        """Step generator of one read (function 3 or 4); its result is the values."""
        if not 1 <= count <= _MAX_REGISTERS:
            raise ValueError("count must be 1..125")
        req = self._request
        req[0] = slave
        req[1] = function
        req[2] = start >> 8
        req[3] = start & 0xFF
        req[4] = count >> 8
        req[5] = count & 0xFF
        crc = crc16(req, 6)
        req[6] = crc & 0xFF  # CRC goes low byte first
        req[7] = crc >> 8
        self._drain()
        self._send(req)
        yield from self._receive(slave, function, 5 + 2 * count)
        reply = self._reply
        if reply[2] != 2 * count:
            raise ModbusError("frame", "byte count %d, expected %d" % (reply[2], 2 * count))
        values = into if into is not None else [0] * count
        for i in range(count):
            values[i] = (reply[3 + 2 * i] << 8) | reply[4 + 2 * i]
        return values

    def _drain(self):
        # Bytes left from a late or noisy earlier reply would be read as this one's.
        uart = self._uart
        while uart.any():
            uart.read()

    def _send(self, frame):
        de = self._de
        if de is not None:
            de.value(1)
        try:
            self._uart.write(frame)
            self._wait_sent(len(frame))
        finally:
            if de is not None:
                de.value(0)  # release the bus at once: the slave may answer within a character

    def _wait_sent(self, nbytes):
        uart = self._uart
        if hasattr(uart, "flush"):
            uart.flush()  # returns when the last stop bit has left (esp32 port)
        else:
            sleep_ms(nbytes * self._char_us // 1000 + 1)

    def _receive(self, slave, function, expected):
        """Read one reply into self._reply within timeout_ms and check it."""
        uart = self._uart
        reply = self._reply
        view = self._reply_view
        got = 0
        need = expected
        started = ticks_ms()
        while got < need:
            if uart.any():
                n = uart.readinto(view[got:need])
                got += n or 0
                if got >= 2 and reply[1] == function | _ERROR_FLAG:
                    need = 5  # exception reply: address, function|0x80, code, CRC
                elif got >= 3 and need == expected:
                    # The frame's own byte count says where it ends; a wrong count is then
                    # reported as such once the CRC shows the frame arrived intact.
                    need = min(5 + reply[2], len(reply))
                continue
            if ticks_diff(ticks_ms(), started) >= self.timeout_ms:
                if got:
                    raise ModbusError("timeout", "reply cut short: %d of %d bytes" % (got, need))
                raise ModbusError("timeout", "no reply from slave %d in %d ms" % (slave, self.timeout_ms))
            yield
        crc = crc16(reply, need - 2)
        if reply[need - 2] != crc & 0xFF or reply[need - 1] != crc >> 8:
            raise ModbusError("crc", "bad CRC in reply from slave %d" % slave)
        if reply[0] != slave:
            raise ModbusError("frame", "reply from slave %d, expected %d" % (reply[0], slave))
        if reply[1] == function | _ERROR_FLAG:
            code = reply[2]
            text = _EXCEPTIONS[code - 1] if 1 <= code <= 6 else (
                "gateway target failed to respond" if code == 11 else "code %d" % code)
            raise ModbusError("exception", text, code)
        if reply[1] != function:
            raise ModbusError("frame", "function %d in reply, expected %d" % (reply[1], function))
