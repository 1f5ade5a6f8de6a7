# Maintenance: safe mode, or a technician's session after Ctrl-C. The application does
# not run: no relay is driven (all are off from boot or from the node's shutdown), no
# sensor is read. The device keeps Wi-Fi and one MQTT connection whose retained status
# says "maintenance" (its Last Will still says offline), served by a timer in the
# background so that the serial REPL stays free for the technician.
import json

from firmware import VERSION, board, device_id, unload
from firmware.console import Console
from firmware.profiles import Profile
from firmware.session import Session
from firmware.wifi import WifiLink, networks
from micropython import const
from ticks import ticks_add, ticks_diff, ticks_ms

_SERVE_MS = const(500)


class Maintenance:
    def __init__(self, cfg, wlan, reason, guard=None, flash_log=None, retry_s=0, host=None):
        """reason: why (shown in the status); guard: the BootGuard, given when a crash
        loop brought the device here, so that after retry_s it may try the application
        again; flash_log: where the rare events go; host: a simulator's hooks
        (firmware/startup.py: periodic, print)."""
        self.cfg = cfg
        self.reason = reason
        # Kept, not printed: the technician is typing at the REPL (main.py's `device` is this
        # object: device.log.lines()).
        self.log = Console(lambda: ticks_ms() // 1000, echo=None, keep=512)
        self._guard = guard
        self._flash_log = flash_log
        self._retry_at = ticks_add(ticks_ms(), retry_s * 1000) if guard is not None and retry_s else None
        self.device_id = device_id(cfg, board.unique_id())
        self.profile = Profile(cfg["profile"], {"prefix": cfg["mqtt"]["prefix"], "device_id": self.device_id,
                                                "farm_id": cfg["farm_id"], "org_id": cfg["org_id"]})
        self.wifi = WifiLink(wlan, networks(cfg["wifi"]), self.log)
        from firmware import mqtt_setup

        client = mqtt_setup.make_client(cfg, self.device_id, self.log)
        unload("firmware.mqtt_setup")
        status_topic = self.profile.topics["status"]
        self.session = Session(client, status_topic, self._status("offline", "lwt"), (),
                               self._ignore, self.log, 1, 1024)
        self.session.online_payload = lambda: self._status("maintenance", self.reason)
        self._timer = None
        self._host = host or {}

    def _status(self, status, reason):
        info = {"status": status, "device_id": self.device_id, "reason": reason}
        extra = {"firmware_version": VERSION, "message": "%s %s (%s)" % (self.device_id, status, reason)}
        return json.dumps(self.profile.status(info, extra))

    def _ignore(self, topic, msg):
        pass  # nothing is subscribed; a broker's stray message is dropped

    def start(self):
        """Start serving in the background and return (to the REPL)."""
        say = self._host.get("print", print)
        say("maintenance: %s. The application is not running; relays are off." % self.reason)
        say("  from firmware import tech; tech.help()   (tech.leave_safe_mode() restarts it)")
        self.serve()
        self._timer = self._host.get("periodic", board.periodic)(_SERVE_MS, self.serve)
        return self

    def serve(self, _timer=None):
        """One turn: the Wi-Fi link, the MQTT connection, the retry deadline. Never raises:
        it runs from a timer, where an error would stop it for good."""
        try:
            self.session.poll(self.wifi.poll())
            if self._retry_at is not None and ticks_diff(ticks_ms(), self._retry_at) >= 0:
                self._retry_application()
        except Exception as exc:  # noqa: BLE001 (kept alive whatever happens)
            self.log("maintenance: %s %s" % (type(exc).__name__, exc))

    def _retry_application(self):
        self._retry_at = None
        if self._flash_log is not None:
            self._flash_log.write("safe mode: trying the application again")
        self._guard.give_one_more_try()
        self.stop("retry")
        board.reset()

    def stop(self, reason="restart"):
        """Say offline (retained) and disconnect; the timer stops."""
        if self._timer is not None:
            self._timer.deinit()
            self._timer = None
        self.session.close(self._status("offline", reason))
