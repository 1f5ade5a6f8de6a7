# The farm node: one cooperative loop that keeps Wi-Fi and the MQTT session alive,
# runs a sensor pass every interval and publishes telemetry in the profile's format.
# No step holds the loop for long: the socket is served at least every ~50 ms.
import gc
import json
import os

from atomicfile import exists
from firmware import VERSION, config
from firmware.alerts import Alerts
from firmware.clock import Clock
from firmware.commands import Dispatcher
from firmware.profiles import Profile, render
from firmware.relays import RelayBank
from firmware.sensors.reader import SENSOR_KEYS, SensorReader
from firmware.session import Session, make_client
from firmware.wifi import WifiLink
from outbox import Outbox
from ticks import sleep_ms, ticks_add, ticks_diff, ticks_ms

_LOOP_MS = 20  # the longest the loop idles between turns
_NTP_RETRY_MS = 60000
_NTP_RESYNC_MS = 6 * 3600 * 1000
_RESET_CAUSES = {1: "power_on", 2: "hard", 3: "watchdog", 4: "deepsleep", 5: "soft"}
_LOG_LINES = 30


def _total(values, keys):
    total = 0
    for key in keys:
        if values.get(key) is None:
            return None
        total += values[key]
    return total


class Node:
    """hw: what the board built: wlan, mac, reset_cause, sensors (drivers), relays,
    ntptime, reset. root: where config.json lives (the device's "/")."""

    def __init__(self, cfg, hw, problems=(), root=""):
        self.cfg = cfg
        self.root = root
        self._hw = hw
        self.wlan = hw["wlan"]
        self.log_lines = []
        now = ticks_ms()
        self._uptime_ms = 0
        self._last_tick = now
        self._next_reading = now
        self._next_ntp = now
        self._pass = None
        self._pass_time = (None, None)
        self.loop_errors = 0
        self.interval_ms = cfg["interval_s"] * 1000
        self._restart_requested = False
        self._offline_since = now
        self._failsafe_tripped = False
        self._values = {}
        self._errors = {}
        self.boot_id = "".join("%02x" % b for b in os.urandom(3))
        self.seq = 0
        self.reset_cause = _RESET_CAUSES.get(hw["reset_cause"], str(hw["reset_cause"]))
        self.reader = SensorReader(hw["sensors"])
        # Interlocks accept readings at most two telemetry intervals old (PROTOCOL.md).
        self.relays = RelayBank(hw.get("relays", {}), cfg["interlocks"], cfg["relay_groups"],
                                2 * self.interval_ms)
        self.reader.trims = cfg["trims"]
        self.alerts = Alerts(cfg["alerts"])
        self.dispatcher = Dispatcher(self)
        self.clock = Clock(hw.get("ntptime"), cfg["ntp"]["host"])
        self._link_to_try = None  # (config, restart after) of a link change to start
        self._trial = None  # a LinkTrial while a new broker link is tried
        self.calibration_points = {}  # sensor -> points of a calibration in progress
        self._connects_seen = 0
        spill_bytes = cfg["mqtt"]["spill_bytes"]
        self._outbox = Outbox(config.in_root(root, config.OUTBOX_FILE), spill_bytes) if spill_bytes else None
        self.connect_with(cfg, None)
        self.session.report_outbox()
        for key, reason in problems:
            self.log("config: %s: %s" % (key, reason))

    def connect_with(self, cfg, queue):
        """Wi-Fi, profile and MQTT session from cfg; queue: readings still to send."""
        self.device_id = config.device_id(cfg, self._hw["mac"])
        self.profile = Profile(cfg["profile"], {"prefix": cfg["mqtt"]["prefix"], "device_id": self.device_id,
                                                "farm_id": cfg["farm_id"], "org_id": cfg["org_id"]})
        self.wifi = WifiLink(self.wlan, cfg["wifi"]["ssid"], cfg["wifi"]["password"], self.log)
        client, errors = make_client(cfg, self.device_id, self.log)
        topics = self.profile.topics
        self.session = Session(client, errors, topics["status"], self.status_json("offline", reason="lwt"),
                               self.profile.subscriptions(), self.on_message, self.log,
                               cfg["mqtt"]["queue_max"], cfg["mqtt"]["queue_bytes"], self._outbox)
        self.session.online_payload = lambda: self.status_json("online")
        self.config_topic = topics["config"].encode() if topics["config"] else None
        if queue is not None:
            self.session.queue = queue

    # --- logging, for the serial console and the REPL (node.log_lines) ---

    def log(self, text):
        line = "[%d] %s" % (self.uptime_s(), text)
        print(line)
        self.log_lines.append(line)
        if len(self.log_lines) > _LOG_LINES:
            self.log_lines.pop(0)

    def log_event(self, text):
        """A line also kept in the flash log (rare events only: flash wears)."""
        self.log(text)
        self.to_flash(text)

    def to_flash(self, text):
        flash_log = self._hw.get("flash_log")
        if flash_log is not None:
            flash_log.write(text)

    # --- time ---

    def uptime_s(self):
        # Accumulated so it survives the ticks counter wrapping (every ~12 days).
        now = ticks_ms()
        self._uptime_ms += ticks_diff(now, self._last_tick)
        self._last_tick = now
        return self._uptime_ms // 1000

    # --- the loop ---

    def step(self):
        """One turn of the loop."""
        link_up = self.wifi.poll()
        now = ticks_ms()
        if link_up and ticks_diff(now, self._next_ntp) >= 0:
            # Again now and then: the RTC drifts, and a first sync may have failed.
            self._next_ntp = ticks_add(now, _NTP_RESYNC_MS if self.clock.sync() else _NTP_RETRY_MS)
        self.session.poll(link_up)
        if self.session.connects != self._connects_seen:
            self._connects_seen = self.session.connects
            self._on_connected()
        if self._link_to_try is not None:  # the config's answer has gone out on the old link
            from firmware.link_trial import LinkTrial

            self._trial = LinkTrial(self, *self._link_to_try)
            self._link_to_try = None
        elif self._trial is not None and self._trial.check(now):
            self._trial = None
        self._safety(now)
        self.reader.poll()
        job = self.dispatcher.job
        if job is not None and self._pass is None:  # a job (calibration, OTA) has the buses
            self.dispatcher.step_job()
            self.session.wait(2)
            return
        if self._pass is None and ticks_diff(now, self._next_reading) >= 0:
            self._next_reading = ticks_add(self._next_reading, self.interval_ms)
            if ticks_diff(now, self._next_reading) >= 0:  # fell behind: do not catch up in a burst
                self._next_reading = ticks_add(now, self.interval_ms)
            self._pass = self.reader.pass_steps()
            self._pass_time = (self.clock.iso(), self.clock.unix())  # when it was taken, not sent
        if self._pass is not None:
            try:
                next(self._pass)
                self.session.wait(2)  # the pass is waiting on a bus: idle briefly, not spin
            except StopIteration as done:
                self._pass = None
                values, errors = done.value
                self._values = dict(values)
                self._errors = dict(errors)
                self.relays.observe(self._values)
                self.relays.take_changes()  # an interlock stop is in this very reading
                self.publish_reading(values, errors)
                for alert in self.alerts.check(values):
                    self.publish_alert(alert)
        else:
            self.session.wait(_LOOP_MS)

    def _safety(self, now):
        relays = self.relays
        relays.poll()
        if self.session.connected:
            self._offline_since = now
            self._failsafe_tripped = False
        elif not self._failsafe_tripped and ticks_diff(now, self._offline_since) >= self.cfg["failsafe_s"] * 1000:
            self._failsafe_tripped = True
            relays.all_off("failsafe")
            self.log_event("failsafe: no broker for %d s, every relay off" % self.cfg["failsafe_s"])
        changes = relays.take_changes()
        if changes:
            for name, on, reason in changes:
                self.log("relay %s %s (%s)" % (name, "on" if on else "off", reason))
            self.publish_reading(self._values, self._errors)  # the new state, at once
        if self._restart_requested:
            self._restart_requested = False
            self.shutdown("restart")
            self._hw["reset"]()

    def run(self, until=None):
        """Loop forever (or until until() is true, for tests and the simulator). The
        watchdog is fed after each turn that completes: a loop that hangs, or fails on
        every turn, gets the device reset."""
        self.log("farmnode %s as %s, profile %s, boot %s" % (VERSION, self.device_id, self.profile.name, self.boot_id))
        watchdog = self._hw.get("watchdog")
        while until is None or not until():
            try:
                self.step()
                if watchdog is not None:
                    watchdog.feed()
            except Exception as exc:  # a bug must not stop the loop (and the safety rules)
                self.loop_errors += 1
                self.log("loop: %s %s" % (type(exc).__name__, exc))
                self._pass = None
                sleep_ms(200)  # not session.wait: what failed may be in the session

    # --- messages ---

    def reading(self, values, errors):
        """The canonical telemetry (PROTOCOL.md, Telemetry) of one pass."""
        gc.collect()  # meta.heap_free without garbage: a figure a backend can trend (a leak shows)
        sensors = {}
        for key in SENSOR_KEYS:
            sensors[key] = values.get(key)
        if values.get("wind_gust") is not None:
            sensors["wind_gust"] = values["wind_gust"]
        uptime_s = self.uptime_s()
        reading = {
            "device_id": self.device_id, "farm_id": self.cfg["farm_id"] or None,
            "org_id": self.cfg["org_id"] or None, "boot_id": self.boot_id, "seq": self.seq,
            "ts": self._pass_time[0], "unix": self._pass_time[1], "uptime_s": uptime_s,
            "uptime_ms": self._uptime_ms, "npk_total": _total(values, ("n", "p", "k")),
            "sensors": sensors, "relays": self.relays.states(), "errors": dict(errors),
            "meta": {"rssi": self.wifi.rssi(), "heap_free": gc.mem_free() if hasattr(gc, "mem_free") else None,
                     "firmware_version": VERSION, "dropped": self.session.queue.dropped,
                     # incoming messages too big for the buffer or the free heap, dropped
                     "rx_dropped": getattr(getattr(self.session, "client", None), "dropped_oversize", None)},
        }
        self.seq += 1
        return reading

    def publish_reading(self, values, errors):
        reading = self.reading(values, errors)
        self.session.enqueue(self.profile.topics["telemetry"], json.dumps(self.profile.telemetry(reading)))

    def status_json(self, status, **fields):
        info = {"status": status, "device_id": self.device_id}
        if status == "online":
            info.update({"firmware_version": VERSION, "boot_id": self.boot_id,
                         "reset_cause": self.reset_cause, "ip": self.wifi.ip(),
                         "rssi": self.wifi.rssi(), "ts": self.clock.iso()})
        info.update(fields)
        # What only some profiles' status carries (PROTOCOL's own status has exactly info).
        extra = {"firmware_version": VERSION, "ts": self.clock.iso(), "unix": self.clock.unix(),
                 "uptime_s": self.uptime_s(), "rssi": self.wifi.rssi(),
                 "message": "%s %s%s" % (self.device_id, status,
                                         " (%s)" % fields["reason"] if "reason" in fields else "")}
        return json.dumps(self.profile.status(info, extra))

    def publish_alert(self, alert):
        self.log("alert %s: %s" % (alert["severity"], alert["message"]))
        topic = self.profile.topics["alert"]
        if topic is None:
            return  # this backend takes no alerts: the log has them
        alert["device_id"] = self.device_id
        alert["ts"] = self.clock.iso()
        template = self.profile.spec.get("alert")
        self.session.enqueue(topic, json.dumps(render(template, alert) if template else alert))

    def notice(self, severity, rule, message):
        """An alert about the node itself (an update, a config), not about a reading."""
        self.to_flash("%s %s: %s" % (severity, rule, message))  # publish_alert logs it too
        self.publish_alert({"severity": severity, "sensor": None, "value": None, "threshold": None,
                            "rule": rule, "message": message})

    def on_message(self, topic, msg):
        try:
            if topic == self.config_topic:  # bytes, as the client gives it
                self.dispatcher.handle(msg, "config")
            else:
                self.dispatcher.handle(msg)
        except Exception as exc:  # e.g. no memory for the answer: the PUBACK must still go
            self.log("message on %s dropped: %s %s" % (topic, type(exc).__name__, exc))

    def _on_connected(self):
        """Each time the broker is reached: this boot is healthy (no safe mode on the
        next), and an update on trial has proven itself."""
        guard = self._hw.get("boot_guard")
        if guard is not None:
            guard.healthy()
        if not (exists(config.in_root(self.root, "ota-files/trial.json"))
                or exists(config.in_root(self.root, "ota-files/report.json"))):
            return  # no update going on: lib/ota stays out of the heap
        from ota import Swap

        swap = Swap(self.root, log=self.log)
        version = swap.confirm()
        if version is not None:
            self.log("ota: %s reached the broker, kept" % version)
        report = swap.take_report()
        if report is not None:
            self.notice("info" if report["result"] == "updated" else "warning", "ota",
                        "ota: %s %s" % (report["result"], report["version"]))

    # --- what commands act on ---

    def send_response(self, answer, dialect):
        topic = self.profile.topics["command_response"]
        if topic is None:
            return  # this backend takes no answers (the log has refusals)
        if self.profile.spec.get("ack") == "status" and dialect == "actuate":
            response = answer["response"] or {}
            relay = response.get("relay") or "relay"
            payload = {"type": "STATUS", "farm_id": self.cfg["farm_id"], "timestamp": answer["ts"]}
            if answer["success"]:
                payload[relay] = "ON" if response.get("state") else "OFF"
            else:
                payload["error"] = answer["error"]
        elif self.profile.spec.get("response") is not None:
            payload = render(self.profile.spec["response"], answer)
        else:
            payload = answer
        self.session.publish(topic, json.dumps(payload), False, 1)

    def read_now(self):
        self._next_reading = ticks_ms()

    def status_info(self):
        return json.loads(self.status_json("online"))

    def public_config(self):
        return config.public(self.cfg)

    def set_interval(self, seconds):
        self.apply_config({"interval_s": seconds})
        return seconds

    def apply_config(self, patch):
        """Validate patch over the config as a whole (ConfigError names every bad key),
        then apply it: at once, by trying the new broker link, or by a restart."""
        from firmware import reconfig  # loaded on the first change

        new = config.apply(self.cfg, patch)
        keys = reconfig.changed(self.cfg, new)
        if not keys:
            return {"changed": []}
        if self._trial is not None or self._link_to_try is not None:
            raise config.ConfigError([("config", "a broker change is still being tried")])
        reconnect, restart = reconfig.needs(keys)
        if reconnect:
            self._link_to_try = (new, restart)
            return {"changed": keys, "reconnect": True, "fallback_s": self.cfg["mqtt"]["fallback_s"]}
        config.save(new, self.root)
        if restart:
            self.cfg = new
            self.restart_soon()
            return {"changed": keys, "restart": True}
        self.apply_live(new)
        return {"changed": keys}

    def reset_config(self):
        cfg = config.reset(self.cfg)
        config.save(cfg, self.root)
        self.cfg = cfg
        self.restart_soon()  # the defaults may wire things differently

    def apply_live(self, cfg):
        """Take over the settings a running node can change without a restart."""
        old = self.cfg
        self.cfg = cfg
        if cfg["interval_s"] != old["interval_s"]:
            self.interval_ms = cfg["interval_s"] * 1000
            # Within one new interval, and never later than already due (a read command
            # just before must still be answered by its reading).
            within = ticks_add(ticks_ms(), self.interval_ms)
            if ticks_diff(within, self._next_reading) < 0:
                self._next_reading = within
        relays = self.relays
        relays.interlocks = cfg["interlocks"]
        relays.groups = cfg["relay_groups"]
        relays.max_age_ms = 2 * self.interval_ms
        for name in relays.relays:
            relays.relays[name].max_on_s = cfg["relays"][name]["max_on_s"]
        for driver in self.reader.drivers:
            if hasattr(driver, "configure"):
                driver.configure(cfg["sensors"][driver.name])
        self.reader.trims = cfg["trims"]
        self.alerts.update(cfg["alerts"])
        self.clock.set_host(cfg["ntp"]["host"])

    def restart_soon(self):
        self._restart_requested = True  # after the answer has gone out

    def shutdown(self, reason="restart"):
        if self.session.connected:
            self.log_event("shutdown: %s" % reason)
        self.session.close(self.status_json("offline", reason=reason))
