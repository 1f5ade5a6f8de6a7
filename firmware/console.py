# The node's console: each line stamped with the uptime, printed (the serial REPL's
# output) and kept for the REPL (the last ~10 lines, in a buffer allocated once); rare
# events also go to the flash log, which survives a reset.
from textring import TextRing


class Console:
    """uptime_s(): seconds since boot; flash_log: a FlashLog or None; echo: print lines
    (off in maintenance, where the technician types at the REPL)."""

    def __init__(self, uptime_s, flash_log=None, echo=True, size=768):
        self._uptime_s = uptime_s
        self.flash_log = flash_log
        self._echo = echo
        self._ring = TextRing(size)

    def __call__(self, text):
        line = "[%d] %s" % (self._uptime_s(), text)
        if self._echo:
            print(line)
        self._ring.add(line)

    def event(self, text):
        """A line also kept in the flash log (rare events only: flash wears)."""
        self(text)
        self.to_flash(text)

    def to_flash(self, text):
        if self.flash_log is not None:
            self.flash_log.write(text)

    def lines(self):
        return self._ring.lines()
