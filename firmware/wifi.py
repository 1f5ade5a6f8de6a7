# Keeps the station joined to an access point, without ever blocking the main loop
# long: poll() starts a join, watches it, and starts again (with a pause) when it fails
# or the link drops. With more than one network configured, each join starts with a
# scan (the chip's own, ~2 s on an ESP32, only while the link is down) and takes the
# strongest known network in range; so when the one it is on disappears, the next join
# moves to another.
from micropython import const

from ticks import ticks_add, ticks_diff, ticks_ms

_STAT_IDLE = const(1000)  # network.STAT_IDLE and STAT_CONNECTING on the esp32 port
_STAT_CONNECTING = const(1001)
_JOIN_TIMEOUT_MS = const(20000)  # a join that has not given an IP by then is started again
_RETRY_PAUSE_MS = const(5000)


def networks(wifi):
    """The (ssid, password) pairs of a config's wifi: its ssid, then its networks."""
    found = [(wifi["ssid"], wifi["password"])] if wifi["ssid"] else []
    for network in wifi["networks"]:
        found.append((network["ssid"], network["password"]))
    return found


class WifiLink:
    """networks: (ssid, password) pairs, in the config's order (firmware.wifi.networks)."""

    def __init__(self, wlan, networks, log):
        self._wlan = wlan
        self._networks = networks
        self._ssid = networks[0][0] if networks else ""  # the one joined or being joined
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
            if not self._networks:
                self._log("wifi: no network configured (secrets.json wifi)")
                self._next_try = ticks_add(now, 60000)
                return False
            try:
                wlan.active(True)
                chosen = self._choose()
                if chosen is None:
                    self._log("wifi: none of %s in range, retrying in %d s"
                              % (", ".join(ssid for ssid, _ in self._networks), _RETRY_PAUSE_MS // 1000))
                    self._next_try = ticks_add(now, _RETRY_PAUSE_MS)
                    return False
                self._ssid = chosen[0]
                wlan.connect(chosen[0], chosen[1])
                self._joining_since = now
            except OSError as exc:
                self._log("wifi: cannot start a join: %s" % exc)
                self._next_try = ticks_add(now, _RETRY_PAUSE_MS)
        return False

    def _choose(self):
        """The network to join: the only one, or the strongest known one a scan finds."""
        if len(self._networks) == 1:
            return self._networks[0]  # joined without a scan: the ESP32 finds it itself
        best = None
        best_rssi = None
        for seen in self._wlan.scan():  # (ssid, bssid, channel, rssi, security, hidden)
            for network in self._networks:
                if seen[0] == network[0].encode() and (best_rssi is None or seen[3] > best_rssi):
                    best, best_rssi = network, seen[3]
        return best

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
