# The running node's heap care (firmware/heap.py): a collection when the loop idles
# after enough was allocated, and the free heap telemetry reports.
import gc

from firmware.heap import Heap

ON_MICROPYTHON = hasattr(gc, "mem_free")


def test_free_is_measured_once_then_only_when_the_loop_idles_after_enough_allocation():
    heap = Heap()
    first = heap.free()
    if not ON_MICROPYTHON:
        heap.idle()
        assert first is None and heap.free() is None  # CPython has no figure to trend
        return
    kept = [bytearray(64) for _ in range(64)]  # > 4 KiB that stays
    assert heap.free() == first  # not measured again outside idle()
    heap.idle()
    assert heap.free() <= first - 4096, (first, heap.free())
    assert len(kept) == 64


def test_an_idle_loop_that_allocated_little_does_not_collect():
    heap = Heap()
    heap.idle()
    before = heap.free()
    if not ON_MICROPYTHON:
        return
    kept = bytearray(512)  # below the 2 KiB a collection waits for
    heap.idle()
    assert heap.free() == before and len(kept) == 512
