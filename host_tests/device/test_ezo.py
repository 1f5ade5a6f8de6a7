# lib/ezo: the EZO I2C command protocol against a scripted bus.
import errno

from ezo import EzoCircuit, EzoError
from testkit import drive, raises
from ticks import ticks_diff, ticks_ms


class ScriptedI2C:
    """Each read returns the next scripted reply (status byte + text); writes are recorded."""

    def __init__(self, replies, present=(0x63,)):
        self.replies = list(replies)
        self.present = present
        self.writes = []

    def writeto(self, addr, data):
        if addr not in self.present:
            raise OSError(errno.ENODEV)
        self.writes.append((addr, bytes(data) if not isinstance(data, str) else data.encode()))
        return 1

    def readfrom_into(self, addr, buf):
        if addr not in self.present:
            raise OSError(errno.ENODEV)
        reply = self.replies.pop(0) if self.replies else bytes((255,))
        for i in range(len(buf)):
            buf[i] = reply[i] if i < len(reply) else 0


def test_read_waits_the_processing_time_and_parses_the_reply():
    bus = ScriptedI2C([b"\x019.560\x00"])
    started = ticks_ms()
    assert EzoCircuit(bus, 0x63).command("R", 60) == "9.560"
    assert ticks_diff(ticks_ms(), started) >= 60
    assert bus.writes == [(0x63, b"R")]


def test_first_field_of_a_multi_parameter_reply():
    from coop import run

    bus = ScriptedI2C([b"\x011413,707,0.70,1.000\x00"], present=(0x64,))
    assert run(EzoCircuit(bus, 0x64).read_steps(10)) == 1413.0


def test_still_processing_is_polled_again_within_grace():
    bus = ScriptedI2C([b"\xfe", b"\xfe", b"\x017.00\x00"])
    assert EzoCircuit(bus, 0x63, grace_ms=500).command("R", 5) == "7.00"


def test_still_processing_past_grace_is_an_error():
    bus = ScriptedI2C([b"\xfe"] * 1000)
    err = raises(EzoError, EzoCircuit(bus, 0x63, grace_ms=20).command, "R", 5)
    assert err.reason == "pending"


def test_status_codes():
    for reply, reason in ((b"\x02", "syntax"), (b"\xff", "no_data"), (b"\x07", "frame"),
                          (b"\x01\xff\xfe\x00", "frame")):
        err = raises(EzoError, EzoCircuit(ScriptedI2C([reply]), 0x63).command, "Cal,mid,7.00", 1)
        assert err.reason == reason, (reply, err.reason)


def test_missing_circuit_is_unplugged():
    err = raises(EzoError, EzoCircuit(ScriptedI2C([], present=()), 0x64).command, "R", 1)
    assert err.reason == "unplugged" and "0x64" in str(err)


def test_other_bus_error():
    class Stuck(ScriptedI2C):
        def writeto(self, addr, data):
            raise OSError(errno.ETIMEDOUT)

    assert raises(EzoError, EzoCircuit(Stuck([]), 0x63).command, "R", 1).reason == "bus"


def test_non_numeric_reading():
    from coop import run

    err = raises(EzoError, run, EzoCircuit(ScriptedI2C([b"\x01*OV\x00"]), 0x63).read_steps(1))
    assert err.reason == "frame"


def test_command_yields_during_processing_time():
    yields, reply = drive(EzoCircuit(ScriptedI2C([b"\x014.00\x00"]), 0x63).command_steps("R", 30))
    assert reply == "4.00" and yields >= 1
