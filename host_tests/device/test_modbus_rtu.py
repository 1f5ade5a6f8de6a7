# lib/modbus: the Modbus RTU master against a scripted UART (no farm, no field model).
from modbus_rtu import ModbusError, ModbusRTU, crc16
from testkit import drive, raises
from ticks import ticks_diff, ticks_ms


def with_crc(frame):
    crc = crc16(frame)
    return bytes(frame) + bytes((crc & 0xFF, crc >> 8))


class ScriptedUART:
    """Answers each written request with the next scripted reply, delivered in chunks."""

    def __init__(self, replies, chunk=64):
        self.replies = list(replies)
        self.chunk = chunk
        self.requests = []
        self.pending = b""

    def write(self, data):
        self.requests.append(bytes(data))
        if self.replies:
            self.pending += self.replies.pop(0)
        return len(data)

    def flush(self):
        pass

    def any(self):
        return len(self.pending)

    def read(self, n=None):
        n = len(self.pending) if n is None else n
        out, self.pending = self.pending[:n], self.pending[n:]
        return out or None

    def readinto(self, buf):
        data = self.read(min(len(buf), self.chunk))
        if not data:
            return None
        buf[:len(data)] = data
        return len(data)


class RecordingPin:
    def __init__(self):
        self.levels = []

    def value(self, level=None):
        if level is not None:
            self.levels.append(level)


def test_crc16_modbus_known_vectors():
    # The standard check value of CRC-16/MODBUS, and a textbook request frame.
    assert crc16(b"123456789") == 0x4B37
    assert with_crc(b"\x01\x03\x00\x1e\x00\x03")[-2:] == b"\x65\xcd"


def test_request_bytes_on_the_wire_and_16_bit_values():
    uart = ScriptedUART([with_crc(b"\x01\x03\x06\x00\x26\x01\x2c\x03\xe8")])
    bus = ModbusRTU(uart)
    assert bus.read_holding(1, 0x1E, 3) == [38, 300, 1000]  # values above 255 stay whole
    assert uart.requests == [with_crc(b"\x01\x03\x00\x1e\x00\x03")]


def test_reply_split_across_reads():
    uart = ScriptedUART([with_crc(b"\x07\x04\x04\x12\x34\xab\xcd")], chunk=1)
    assert ModbusRTU(uart).read_input(7, 0x100, 2) == [0x1234, 0xABCD]
    assert uart.requests[0][:2] == b"\x07\x04"


def test_direction_pin_drives_only_around_the_write():
    de = RecordingPin()
    uart = ScriptedUART([with_crc(b"\x01\x03\x02\x00\x05")])
    ModbusRTU(uart, de=de).read_holding(1, 0, 1)
    assert de.levels == [0, 1, 0]


def test_direction_pin_released_when_the_write_fails():
    class BrokenUART(ScriptedUART):
        def write(self, data):
            raise OSError(5, "EIO")

    de = RecordingPin()
    raises(OSError, ModbusRTU(BrokenUART([]), de=de).read_holding, 1, 0, 1)
    assert de.levels[-1] == 0


def test_no_reply_is_a_timeout_within_the_bound():
    bus = ModbusRTU(ScriptedUART([]), timeout_ms=80)
    started = ticks_ms()
    err = raises(ModbusError, bus.read_holding, 1, 0, 3)
    elapsed = ticks_diff(ticks_ms(), started)
    assert err.reason == "timeout" and "no reply" in str(err)
    assert 80 <= elapsed < 400


def test_truncated_reply_is_a_timeout():
    uart = ScriptedUART([with_crc(b"\x01\x03\x06\x00\x26\x01\x2c\x03\xe8")[:6]])
    err = raises(ModbusError, ModbusRTU(uart, timeout_ms=50).read_holding, 1, 0x1E, 3)
    assert err.reason == "timeout" and "6 of 11" in str(err)


def test_bad_crc():
    frame = bytearray(with_crc(b"\x01\x03\x02\x00\x05"))
    frame[-1] ^= 0xFF
    err = raises(ModbusError, ModbusRTU(ScriptedUART([bytes(frame)])).read_holding, 1, 0, 1)
    assert err.reason == "crc"


def test_reply_from_another_slave_or_function():
    bus = ModbusRTU(ScriptedUART([with_crc(b"\x02\x03\x02\x00\x05"),
                                  with_crc(b"\x01\x04\x02\x00\x05")]))
    err = raises(ModbusError, bus.read_holding, 1, 0, 1)
    assert err.reason == "frame" and "slave 2" in str(err)
    err = raises(ModbusError, bus.read_holding, 1, 0, 1)
    assert err.reason == "frame" and "function 4" in str(err)


def test_wrong_byte_count():
    bus = ModbusRTU(ScriptedUART([with_crc(b"\x01\x03\x04\x00\x05\x00\x06")]))
    err = raises(ModbusError, bus.read_holding, 1, 0, 1)
    assert err.reason == "frame" and "byte count 4, expected 2" in str(err)


def test_exception_reply_names_the_code():
    bus = ModbusRTU(ScriptedUART([with_crc(b"\x01\x83\x02")]))
    err = raises(ModbusError, bus.read_holding, 1, 0x99, 1)
    assert err.reason == "exception" and err.code == 2
    assert "illegal data address" in str(err)


def test_stale_bytes_are_dropped_before_a_request():
    uart = ScriptedUART([with_crc(b"\x01\x03\x02\x00\x2a")])
    uart.pending = b"\xff\x00garbage"
    assert ModbusRTU(uart).read_holding(1, 0, 1) == [42]


def test_garbage_reply_never_raises_anything_but_modbus_error():
    for junk in (b"\x00", b"\xff" * 20, b"\x01\x03\xff", b"\x01\x03\x02\x00"):
        err = raises(ModbusError, ModbusRTU(ScriptedUART([junk]), timeout_ms=20).read_holding, 1, 0, 1)
        assert err.reason in ("frame", "crc", "timeout")


def test_results_fill_a_preallocated_list():
    values = [0, 0]
    uart = ScriptedUART([with_crc(b"\x01\x03\x04\x00\x01\x00\x02")])
    assert ModbusRTU(uart).read_holding(1, 0, 2, into=values) is values
    assert values == [1, 2]


def test_count_out_of_protocol_range():
    bus = ModbusRTU(ScriptedUART([]))
    raises(ValueError, bus.read_holding, 1, 0, 0)
    raises(ValueError, bus.read_holding, 1, 0, 126)


class LateUART(ScriptedUART):
    """The reply becomes readable only after `late` polls of any()."""

    def __init__(self, replies, late):
        super().__init__(replies)
        self.late = late

    def any(self):
        if self.late:
            self.late -= 1
            return 0
        return len(self.pending)


def test_transaction_yields_to_the_caller_while_waiting():
    from modbus_rtu import READ_HOLDING

    uart = LateUART([with_crc(b"\x01\x03\x02\x01\x00")], late=5)
    yields, values = drive(ModbusRTU(uart).read_steps(1, READ_HOLDING, 0, 1))
    assert values == [256]
    assert yields >= 4  # the caller got control back while the slave was silent
