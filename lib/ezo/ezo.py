# Atlas Scientific EZO circuits (pH, EC, ...) in I2C mode: an ASCII command is written,
# the circuit needs its processing time, then the reply is read: one status byte
# (1 success, 2 syntax error, 254 still processing, 255 no data) and ASCII text ended by NUL.
# Commands are step generators (see coop) that yield during the processing time.
import errno

from micropython import const

from coop import run
from ticks import ticks_diff, ticks_ms

SUCCESS = const(1)
SYNTAX_ERROR = const(2)
PENDING = const(254)
NO_DATA = const(255)

_REPLY_LEN = const(41)  # status byte + the longest reply the circuits send (~40 chars)


class EzoError(Exception):
    """reason: 'unplugged' (no ACK), 'bus', 'syntax', 'pending', 'no_data' or 'frame'."""

    def __init__(self, reason, detail):
        super().__init__("%s: %s" % (reason, detail))
        self.reason = reason


class EzoCircuit:
    """One circuit at address on i2c. grace_ms: how long past the processing time a
    'still processing' reply is polled again before giving up."""

    def __init__(self, i2c, address, grace_ms=300):
        self._i2c = i2c
        self.address = address
        self.grace_ms = grace_ms
        self._reply = bytearray(_REPLY_LEN)

    def command(self, text, wait_ms):
        """Send text, wait wait_ms, return the reply text ('' for commands without data)."""
        return run(self.command_steps(text, wait_ms))

    def command_steps(self, text, wait_ms):
        self._bus(self._i2c.writeto, text.encode())
        started = ticks_ms()
        while ticks_diff(ticks_ms(), started) < wait_ms:
            yield
        reply = self._reply
        while True:
            self._bus(self._i2c.readfrom_into, reply)
            if reply[0] != PENDING or ticks_diff(ticks_ms(), started) >= wait_ms + self.grace_ms:
                break
            yield
        status = reply[0]
        if status == SUCCESS:
            end = 1
            while end < _REPLY_LEN and reply[end]:
                end += 1
            try:
                return bytes(reply[1:end]).decode()
            except UnicodeError:
                raise EzoError("frame", "reply is not text")
        if status == SYNTAX_ERROR:
            raise EzoError("syntax", "circuit 0x%02x refused %r" % (self.address, text))
        if status == PENDING:
            raise EzoError("pending", "circuit 0x%02x still processing %r" % (self.address, text))
        if status == NO_DATA:
            raise EzoError("no_data", "circuit 0x%02x has no data" % self.address)
        raise EzoError("frame", "status byte %d" % status)

    def _bus(self, transfer, data):
        try:
            transfer(self.address, data)
        except OSError as exc:
            code = exc.args[0] if exc.args else 0
            if code == errno.ENODEV:
                raise EzoError("unplugged", "no circuit answers at 0x%02x" % self.address)
            raise EzoError("bus", "I2C error %s at 0x%02x" % (code, self.address))

    def read_steps(self, wait_ms):
        """Step generator of an 'R' command; its result is the first value as a float."""
        text = yield from self.command_steps("R", wait_ms)
        try:
            return float(text.split(",")[0])
        except ValueError:
            raise EzoError("frame", "not a number: %r" % text)
