# A simulated device's lifeline to the simulator that started it: the read end of a
# pipe whose write end only the simulator holds. The simulator closes it to stop the
# device cleanly; the kernel closes it when the simulator dies, however it dies
# (SIGKILL included), so no node outlives its simulator. MicroPython unix port or CPython.
import select

from ticks import ticks_diff, ticks_ms

try:
    import _thread
except ImportError:
    _thread = None

GRACE_MS = 4000  # after the line is cut, a clean stop gets this long before the process ends


class Lifeline:
    """cut: True once the simulator let go; then the harness stops its node(s) cleanly.
    If that takes longer than GRACE_MS (a hung loop), power_off(message) ends it."""

    def __init__(self, fd, power_off):
        self.cut = False
        self._fd = fd
        self._power_off = power_off
        if fd is not None and _thread is not None:
            _thread.start_new_thread(self._watch, ())

    def _watch(self):
        line = select.poll()
        line.register(self._fd, select.POLLIN)
        while True:
            try:
                if line.poll(-1):  # the simulator's end closed: EOF (nothing is ever written)
                    break
            except MemoryError:  # the node's heap was full for an instant; this is a chip's pin
                pass
        self.cut = True
        since = ticks_ms()
        idle = select.poll()
        while ticks_diff(ticks_ms(), since) < GRACE_MS:
            try:
                idle.poll(100)
            except MemoryError:
                pass
        self._power_off("the simulator is gone: powered off")


def from_argv(options, power_off):
    """The Lifeline of --parent-fd (none given: a lifeline that is never cut)."""
    fd = options.get("--parent-fd")
    return Lifeline(int(fd) if fd else None, power_off)
