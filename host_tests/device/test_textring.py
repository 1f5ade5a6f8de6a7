# lib/textring and the node's console: the last lines of a log in one buffer.
from firmware.console import Console
from testkit import read_text, tmpdir
from textring import TextRing


def test_lines_come_back_oldest_first_until_the_ring_wraps():
    ring = TextRing(64)
    ring.add("one")
    ring.add("two")
    assert ring.lines() == ["one", "two"]
    for i in range(20):
        ring.add("line %d" % i)
    lines = ring.lines()
    assert lines[-1] == "line 19" and len("\n".join(lines)) < 64
    assert lines == ["line %d" % i for i in range(20 - len(lines), 20)]  # whole lines only, in order


def test_a_line_longer_than_the_ring_keeps_its_end_and_clear_empties_it():
    ring = TextRing(16)
    ring.add("x" * 40 + "tail")
    assert ring.lines() == [] or ring.lines()[-1].endswith("tail")
    ring.clear()
    assert ring.lines() == []
    ring.add("\u00e9t\u00e9")
    assert ring.lines() == ["\u00e9t\u00e9"]


def test_the_console_stamps_keeps_and_sends_events_to_flash():
    path = tmpdir() + "/log.txt"
    console = Console(lambda: 42, path, echo=None, keep=256)
    console("hello")
    console.event("failsafe")
    assert console.lines() == ["[42] hello", "[42] failsafe"]
    assert read_text(path).endswith(" failsafe\n")  # after its date (lib/flashlog)
    assert Console(lambda: 0, echo=None).lines() == []  # nothing kept unless asked
