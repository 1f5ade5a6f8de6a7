# Keeps the station joined to the access point, without ever blocking the main loop:
# poll() starts a join, watches it, and starts again (with a pause) when it fails or
# the link drops.
from micropython import const

from ticks import ticks_add, ticks_diff, ticks_ms

_STAT_IDLE = const(1000)  # network.STAT_IDLE and STAT_CONNECTING on the esp32 port
_STAT_CONNECTING = const(1001)
_JOIN_TIMEOUT_MS = const(20000)  # a join that has not given an IP by then is started again
_RETRY_PAUSE_MS = const(5000)


class WifiLink:
    def __init__(self, wlan, ssid, password, log):
        self._wlan = wlan
        self._ssid = ssid
        self._password = password
        self._log = log
        self._joining_since = None
        self._next_try = ticks_ms()
        self.up = False
        self.joins = 0

    def poll(self):
        """Advance the link; returns True while connected."""
        wlan = self._wlan
        if wlan.isconnected():
            if not self.up:
                self.up = True
                self.joins += 1
                self._joining_since = None
                self._log("wifi: joined %s, ip %s" % (self._ssid, wlan.ifconfig()[0]))
            return True
        now = ticks_ms()
        if self.up:
            self.up = False
            self._log("wifi: link to %s lost (status %s)" % (self._ssid, wlan.status()))
            self._next_try = now
        if self._joining_since is not None:
            if ticks_diff(now, self._joining_since) < _JOIN_TIMEOUT_MS and wlan.status() in (_STAT_CONNECTING, _STAT_IDLE):
                return False  # still joining
            self._log("wifi: join of %s failed (status %s), retrying in %d s"
                      % (self._ssid, wlan.status(), _RETRY_PAUSE_MS // 1000))
            self._joining_since = None
            self._next_try = ticks_add(now, _RETRY_PAUSE_MS)
        if ticks_diff(now, self._next_try) >= 0:
            if not self._ssid:
                self._log("wifi: no ssid configured (secrets.json wifi.ssid)")
                self._next_try = ticks_add(now, 60000)
                return False
            try:
                wlan.active(True)
                wlan.connect(self._ssid, self._password)
                self._joining_since = now
            except OSError as exc:
                self._log("wifi: cannot start a join: %s" % exc)
                self._next_try = ticks_add(now, _RETRY_PAUSE_MS)
        return False

    def disconnect(self):
        """Leave the access point (a new one is joined by the next link's poll)."""
        self._wlan.disconnect()

    def ip(self):
        return self._wlan.ifconfig()[0] if self.up else None

    def rssi(self):
        try:
            return self._wlan.status("rssi") if self.up else None
        except (OSError, ValueError):
            return None
