# Wall-clock time for timestamps: unknown (None) until NTP has set the clock once.
# A message made before then and still waiting to leave (queued in RAM or on flash)
# carries placeholders instead (pending()); fill() puts the time in as it leaves,
# back-dated from the uptime, so a reading taken offline before NTP still gets its time.
import time

# MicroPython ports whose epoch is 2000 need this added to give Unix seconds.
_UNIX_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0


# A placeholder is a JSON string: "@@t:<boot id>:<uptime s>" for an ISO time,
# "@@u:..." for Unix seconds. Device ids, sensor names and reasons never start so; a
# command_id may (the backend's), so answers leave through literal().
_MARK = '"@@'
_MARK_BYTES = b'"@@'


def literal(text):
    """JSON text (str or bytes) that has its times already (an answer): a string in it
    that looks like a placeholder gets '\\u0040' for its first '@', which a JSON parser
    reads as '@' and fill() leaves alone, should the text wait in a queue or on flash."""
    if type(text) is str:
        return text.replace(_MARK, '"\\u0040@') if _MARK in text else text
    return text.replace(_MARK_BYTES, b'"\\u0040@') if _MARK_BYTES in text else text  # a remembered answer


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

    def pending(self, boot_id, uptime_s):
        """Placeholders (ISO, Unix) for a time not known yet: of uptime_s in boot boot_id."""
        return "@@t:%s:%d" % (boot_id, uptime_s), "@@u:%s:%d" % (boot_id, uptime_s)

    def fill(self, text, boot_id, uptime_s):
        """text (str or bytes) with its placeholders replaced as it leaves: by the time
        back-dated from the uptime now (uptime_s) once the clock is set; by null before,
        and for an earlier boot's (its uptime says nothing of now)."""
        mark = _MARK if type(text) is str else _MARK_BYTES
        at = text.find(mark)
        if at < 0:
            return text  # the usual case: no copy
        given = text
        if type(text) is not str:
            text = text.decode()
        parts = []
        done = 0
        while at >= 0:
            end = text.find('"', at + 3)
            fields = text[at + 3:end].split(":")
            if end < 0 or len(fields) != 3 or fields[0] not in ("t", "u") or not fields[2].isdigit():
                at = text.find(_MARK, at + 3)  # not ours: left as it is
                continue
            value = "null"
            if self.synced and fields[1] == boot_id:
                iso, unix = self.stamp(uptime_s - int(fields[2]))
                value = '"%s"' % iso if fields[0] == "t" else str(unix)
            parts.append(text[done:at])
            parts.append(value)
            done = end + 1
            at = text.find(_MARK, done)
        if not parts:
            return given  # only look-alikes
        parts.append(text[done:])
        return "".join(parts)
