# Counts the boots in a row that did not reach a healthy state, so that a device in a
# crash loop can stop starting the code that crashes it. The count lives in RTC user
# memory: it survives resets (machine.reset, watchdog, panic) but not a power cut, so it
# costs no flash writes and unplugging the device starts afresh. The guard owns the first
# SIZE bytes of that memory; what others keep after them is left as it is.
from micropython import const

_MAGIC = const(b"BGv1")  # memory that does not start with this is another's or garbage: count 0
SIZE = const(5)


class BootGuard:
    def __init__(self, rtc, limit=3):
        """rtc: machine.RTC() (its memory() is the store); limit: failed boots in a row
        after which tripped() is true."""
        self._rtc = rtc
        self.limit = limit
        self.failed = 0  # boots before this one that never became healthy

    def count(self):
        """The count as stored now (this boot included once boot() ran), without changing it."""
        return self._stored()

    def _stored(self):
        data = self._rtc.memory()
        if len(data) >= SIZE and data[: len(_MAGIC)] == _MAGIC:
            return data[len(_MAGIC)]
        return 0

    def _store(self, count):
        self._rtc.memory(_MAGIC + bytes((min(count, 255),)) + self._rtc.memory()[SIZE:])

    def boot(self):
        """Call once, first thing at boot: this boot counts as failed until healthy()."""
        self.failed = self._stored()
        self._store(self.failed + 1)
        return self.failed

    def new_code(self):
        """The code changed under this boot (an update on trial, a rollback): the failures
        counted so far were the old code's. This boot still counts until healthy()."""
        self.failed = 0
        self._store(1)

    def tripped(self):
        return self.failed >= self.limit

    def healthy(self):
        """The application reached a good state (the broker): the count starts again."""
        if self._stored():
            self._store(0)
        self.failed = 0

    def give_one_more_try(self):
        """Leave the count one short of the limit: the next boot runs the application,
        and one more failure brings safe mode back."""
        self._store(self.limit - 1)
