# The running node's care of its heap. A collection when the loop is about to idle and
# the turns since the last one allocated _IDLE_BYTES: the garbage of a message or a
# reading is freed before the next is allocated above it, so long-lived objects stay
# packed low in the heap (fragmentation is what a small heap runs out of first). Never
# in the middle of a message: a collection takes milliseconds, and the answer would
# wait for it. A threshold backs it up within a turn that allocates much (a config change).
import gc

from micropython import const

_IDLE_BYTES = const(2048)
_BACKSTOP_BYTES = const(4096)


class Heap:
    def __init__(self):
        self._after = None  # gc.mem_alloc() after the last collection
        self._free = None
        if hasattr(gc, "threshold"):  # MicroPython (CPython collects on its own terms)
            gc.threshold(_BACKSTOP_BYTES)

    def idle(self):
        """The loop is about to wait: collect if enough was allocated since the last time."""
        if hasattr(gc, "mem_alloc") and (self._after is None or gc.mem_alloc() - self._after >= _IDLE_BYTES):
            self._collect()

    def free(self):
        """Free heap after the last collection (telemetry meta.heap_free: a figure a
        backend can trend, without garbage); None off MicroPython."""
        if self._free is None and hasattr(gc, "mem_free"):
            self._collect()
        return self._free

    def _collect(self):
        gc.collect()
        self._after = gc.mem_alloc()
        self._free = gc.mem_free()
