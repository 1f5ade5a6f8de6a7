# A console: each line stamped with the uptime, printed (the serial REPL's output) and/or
# kept (the last lines, in a buffer allocated once: lib/textring); rare events also go to
# the flash log, which survives a reset.
from firmware import unload


class Console:
    """uptime_s(): seconds since boot; flash_log: the path of the flash log (lib/flashlog,
    loaded for each rare event and let go after), or None; echo: what prints
    a line (print; a simulator's sink; None: not printed);
    keep: bytes of the last lines kept for lines() (0: none). A running node prints
    (nothing else could read them: the loop holds the REPL); maintenance keeps them
    instead (the technician types at the REPL: `device.log.lines()`)."""

    def __init__(self, uptime_s, flash_log=None, echo=print, keep=0):
        self._uptime_s = uptime_s
        self.flash_log = flash_log
        self._echo = echo
        self._ring = None
        if keep:
            from textring import TextRing

            self._ring = TextRing(keep)

    def __call__(self, text):
        line = "[%d] %s" % (self._uptime_s(), text)
        if self._echo is not None:
            self._echo(line)
        if self._ring is not None:
            self._ring.add(line)

    def event(self, text):
        """A line also kept in the flash log (rare events only: flash wears)."""
        self(text)
        self.to_flash(text)

    def to_flash(self, text):
        if self.flash_log is not None:
            from flashlog import FlashLog

            FlashLog(self.flash_log).write(text)
            del FlashLog
            unload("flashlog")

    def lines(self):
        return self._ring.lines() if self._ring is not None else []
