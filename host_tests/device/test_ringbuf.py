# lib/ringbuf: bounded FIFO that drops and counts the oldest.
from ringbuf import RingBuffer


def test_fifo_order():
    ring = RingBuffer(3)
    for item in ("a", "b"):
        ring.push(item)
    assert len(ring) == 2 and ring.peek() == "a"
    assert ring.pop() == "a" and ring.pop() == "b" and ring.pop() is None


def test_full_by_count_drops_oldest_and_counts():
    ring = RingBuffer(3)
    for i in range(5):
        ring.push(str(i))
    assert ring.dropped == 2
    assert [ring.pop() for _ in range(3)] == ["2", "3", "4"]


def test_full_by_bytes_drops_oldest():
    ring = RingBuffer(10, max_bytes=10)
    ring.push("aaaa")
    ring.push("bbbb")
    ring.push("cccc")  # 12 bytes: the oldest goes
    assert ring.dropped == 1 and ring.pop() == "bbbb"
    ring.push("x" * 11)  # can never fit
    assert ring.dropped == 2 and len(ring) == 1


def test_wraps_around_many_times():
    ring = RingBuffer(4)
    for i in range(1000):
        ring.push(str(i))
        if i % 3 == 0:
            ring.pop()
    items = [ring.pop() for _ in range(len(ring))]
    assert items == sorted(items, key=int) and items[-1] == "999"


def test_items_with_a_given_size():
    ring = RingBuffer(10, max_bytes=100)
    ring.push(("topic", "x" * 60), size=65)
    ring.push(("topic", "y" * 30), size=35)
    ring.push(("topic", "z"), size=6)  # 106 bytes: the first goes
    assert ring.dropped == 1 and ring.pop()[1] == "y" * 30
