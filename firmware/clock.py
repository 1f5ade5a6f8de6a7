# Wall-clock time for timestamps: unknown (None) until NTP has set the clock once.
import time

# MicroPython ports whose epoch is 2000 need this added to give Unix seconds.
_UNIX_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0


# ntptime waits this long for the server's answer (its default is 1 s): a sync holds the
# loop at most this long (plus the DNS lookup, which lwIP bounds itself).
NTP_TIMEOUT_S = 2


class Clock:
    def __init__(self, ntptime=None, host=None):
        self._ntptime = ntptime
        if ntptime is not None:
            ntptime.timeout = NTP_TIMEOUT_S
        self.set_host(host)
        self.synced = False

    def set_host(self, host):
        if self._ntptime is not None and host:
            self._ntptime.host = host

    def sync(self):
        """Set the clock from NTP; False (and nothing changed) when that fails."""
        if self._ntptime is None:
            return False
        try:
            self._ntptime.settime()
        except (OSError, OverflowError, IndexError):
            return False
        self.synced = True
        return True

    def unix(self):
        return int(time.time()) + _UNIX_OFFSET if self.synced else None

    def iso(self):
        """Now as ISO 8601 UTC ('2026-01-24T22:30:00Z'), or None before the clock is set."""
        return self.stamp(0)[0]

    def stamp(self, ago_s):
        """(ISO 8601 UTC, Unix seconds) of ago_s seconds before now; (None, None) before
        the clock is set."""
        if not self.synced:
            return None, None
        then = int(time.time()) - ago_s
        t = time.gmtime(then)
        return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (t[0], t[1], t[2], t[3], t[4], t[5]), then + _UNIX_OFFSET
