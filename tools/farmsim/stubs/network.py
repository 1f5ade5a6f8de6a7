# Stand-in for the ESP32 port's network module: the station interface (STA_IF) joins
# the simulated access point of the chip (simchip.Chip.ap). Sockets themselves are the
# host's real ones: this models association, status codes, RSSI and outages only.
import simchip
from ticks import ticks_add, ticks_diff, ticks_ms

STA_IF = 0
AP_IF = 1

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204

_ASSOCIATE_MS = 300  # how long joining the access point takes here


class WLAN:
    IF_STA = STA_IF  # the names newer ports use
    IF_AP = AP_IF

    def __init__(self, interface_id=STA_IF):
        if interface_id not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        self._if = interface_id
        self._chip = simchip.chip()
        self._active = False
        self._status = STAT_IDLE
        self._ssid = None
        self._key = None
        self._ready_at = None
        self._hostname = "espressif"

    def active(self, is_active=None):
        if is_active is None:
            return self._active
        self._active = bool(is_active)
        self._chip.wifi_active = self._active
        if not self._active:
            self._status = STAT_IDLE
        return None

    def connect(self, ssid=None, key=None, *, bssid=None):
        if not self._active:
            raise OSError("Wifi Not Started")
        self._ssid = ssid
        self._key = key
        self._status = STAT_CONNECTING
        self._ready_at = ticks_add(ticks_ms(), _ASSOCIATE_MS)

    def disconnect(self):
        self._status = STAT_IDLE
        self._ssid = None

    def _update(self):
        heard = self._heard()
        if self._status == STAT_CONNECTING and ticks_diff(ticks_ms(), self._ready_at) >= 0:
            if heard is None:
                self._status = STAT_NO_AP_FOUND
            elif self._key != heard[0]["password"]:
                self._status = STAT_WRONG_PASSWORD
            else:
                self._status = STAT_GOT_IP
        elif self._status == STAT_GOT_IP and heard is None:
            self._status = STAT_BEACON_TIMEOUT  # the AP went away: the link is lost

    def _heard(self):
        """(access point, rssi) of the network joined, while it is in reach; else None.
        Switched off by a test (chip.ap, chip.more_aps) or the field's steering file."""
        for ap, rssi in self._chip.on_air():
            if ap["ssid"] == self._ssid:
                return ap, rssi
        return None

    def isconnected(self):
        self._update()
        return self._active and self._status == STAT_GOT_IP

    def status(self, param=None):
        self._update()
        if param is None:
            return self._status
        if param == "rssi":
            heard = self._heard() if self._status == STAT_GOT_IP else None
            if heard is None:
                raise OSError("Wifi Not Connected")
            return heard[1]
        raise ValueError("unknown status param")

    def ifconfig(self, config=None):
        if config is not None:
            return None
        if self.isconnected():
            return ("192.168.4.23", "255.255.255.0", "192.168.4.1", "192.168.4.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def config(self, *args, **kwargs):
        if kwargs:
            if "hostname" in kwargs:
                self._hostname = kwargs["hostname"]
            return None
        param = args[0]
        if param == "mac":
            return self._chip.mac
        if param in ("ssid", "essid"):
            return self._ssid or ""
        if param in ("hostname", "dhcp_hostname"):
            return self._hostname
        raise ValueError("unknown config param")

    def scan(self):
        if not self._active:
            raise OSError("Wifi Not Started")
        return [(ap["ssid"].encode(), b"\x24\x0a\xc4\x00\x00\x01", 6, rssi, 3, False)
                for ap, rssi in self._chip.on_air()]


def hostname(name=None):
    return "espressif" if name is None else None
