# A small log on flash that survives resets, for what must still be readable after a
# crash: boots, uncaught errors, safety events. Bounded: when the file passes max_bytes
# it becomes the ".1" file (the previous ".1" is dropped), so at most ~2x max_bytes.
# Written rarely (a line per event, not per reading): flash wears with every write.
import os
import time
from micropython import const

DEFAULT_PATH = "log.txt"
_OLD = const(".1")


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def _stamp():
    """UTC date and time, or "" while the clock was never set (it counts from 2000 or 1970)."""
    t = time.gmtime()
    if t[0] < 2024:
        return ""
    return "%04d-%02d-%02d %02d:%02d:%02d " % t[:6]


class FlashLog:
    def __init__(self, path=DEFAULT_PATH, max_bytes=4096):
        self.path = path
        self.max_bytes = max_bytes

    def _rotate_if_full(self):
        if _size(self.path) >= self.max_bytes:
            try:
                os.remove(self.path + _OLD)
            except OSError:
                pass
            os.rename(self.path, self.path + _OLD)

    def write(self, text):
        """Append text (one or more lines). A full or failing flash loses the line, never
        raises: logging must not be what stops the device."""
        try:
            self._rotate_if_full()
            with open(self.path, "a") as f:
                f.write(_stamp() + (text if text.endswith("\n") else text + "\n"))
        except OSError:
            pass

    def exception(self, header, exc):
        """Append header and exc's traceback."""
        import io
        import sys

        buf = io.StringIO()
        if hasattr(sys, "print_exception"):
            sys.print_exception(exc, buf)
        else:  # CPython
            import traceback

            traceback.print_exception(exc, file=buf)
        self.write(header + "\n" + buf.getvalue())

    def tail(self, lines=20):
        """The last lines of the log (older file first), oldest first."""
        kept = []
        for path in (self.path + _OLD, self.path):
            try:
                with open(path) as f:
                    for line in f:
                        kept.append(line.rstrip("\n"))
                        if len(kept) > lines:
                            kept.pop(0)
            except OSError:
                pass
        return kept
