# The farm node's loop: keeps the link (Wi-Fi, MQTT session) served, runs a sensor
# pass every interval, publishes what it measured, enforces the relays' safety rules
# and hands incoming messages to the commands. No step holds the loop for long: the
# socket is served at least every ~50 ms, but for a step a sensor announces as holding
# the CPU (HOLDS: the DHT's measure(), ~270 ms), which is taken right after the socket
# was served, in a turn no message arrived in (see _may_hold). What the messages say is
# firmware/messages.py; how they travel is firmware/link.py.
import json
import os

from atomicfile import exists
from firmware import VERSION, in_root, messages, reconfigure, release_config, unload
from firmware.alerts import Alerts
from firmware.clock import Clock
from firmware.commands import Dispatcher
from firmware.console import Console
from firmware.heap import Heap
from firmware.link import Link
from firmware.relays import RelayBank
from firmware.sensors import HOLDS
from firmware.sensors.reader import SensorReader
from micropython import const
from outbox import DEFAULT_PATH as OUTBOX_PATH
from outbox import Outbox
from ticks import sleep_ms, ticks_add, ticks_diff, ticks_ms

_LOOP_MS = const(20)  # the longest the loop idles between turns
_NTP_RETRY_MS = const(60000)
_NTP_RESYNC_MS = const(6 * 3600 * 1000)
_HELD_MAX = const(10)  # readings held for the clock (a profile that needs a time)
# The longest a step that holds the CPU waits for a turn with no message: a stream of
# messages delays the pass (and its telemetry) this much at most, then one of them waits.
_HOLD_WAIT_MS = const(1000)
_RESET_CAUSES = const(("?", "power_on", "hard", "watchdog", "deepsleep", "soft"))
_HA_REPLY_MAX_MS = const(5000)  # Home Assistant came online: a fleet answers spread over this
# A technician who stopped the loop with Ctrl-C has this long at the REPL before the
# watchdog (which cannot be stopped once started) puts the device back to work.
TECHNICIAN_WATCHDOG_S = const(1800)


class Node:
    """hw: what the board built: wlan, mac, reset_cause, sensors (drivers), relays,
    ntptime, reset; optional: watchdog, boot_guard (let go once the broker is reached),
    flash_log (the flash log's path: firmware/console.py), console_keep (bytes of
    console lines kept, for tests), and what a simulator running several nodes in one
    process hands in instead of the chip's own (firmware/startup.py, host): heap (a Heap:
    when to collect, the free heap), idle(ms) (how the loop waits: Session.wait on a
    chip), print(line) (where console lines go).
    root: where config.json lives (the device's "/").
    What is under way, which a sleeping node's wake (firmware/sleep.py) waits for:
    reading_pass (a pass's steps), held (readings waiting for the clock),
    restart_requested, ha_due (a Home Assistant description due)."""

    def __init__(self, cfg, hw, problems=(), root=""):
        self.cfg = cfg
        self.root = root
        self._hw = hw
        now = ticks_ms()
        self.uptime_ms = 0
        self._last_tick = now
        self.log = Console(self.uptime_s, hw.get("flash_log"), hw.get("print", print), hw.get("console_keep", 0))
        self.watchdog = hw.get("watchdog")
        self._idle = hw.get("idle")  # a host's wait instead of Session.wait
        self.heap = hw.get("heap") or Heap()
        self._next_reading = now
        self._next_ntp = now
        self.reading_pass = None
        self._hold_asked = None  # when the pass asked for a step that holds the CPU
        self._heard = False  # a message came since the loop last looked (_may_hold)
        self._pass_uptime_s = 0  # when the last pass was taken
        self.held = []  # (reading, uptime_s taken) waiting for the clock (profile.needs_time)
        self.loop_errors = 0
        self.interval_ms = cfg["interval_s"] * 1000
        self.restart_requested = False
        self._offline_since = now
        self._failsafe_tripped = False
        self._values = {}
        self._errors = {}
        self.boot_id = "".join("%02x" % b for b in os.urandom(3))
        self.seq = 0
        cause = hw["reset_cause"]
        self.reset_cause = _RESET_CAUSES[cause] if 0 < cause < len(_RESET_CAUSES) else str(cause)
        self.reader = SensorReader(hw["sensors"])
        # Interlocks accept readings at most two telemetry intervals old (PROTOCOL.md).
        self.relays = RelayBank(hw.get("relays", {}), cfg["interlocks"], cfg["relay_groups"],
                                2 * self.interval_ms)
        self.reader.trims = cfg["trims"]
        self.alerts = Alerts(cfg["alerts"])
        self.dispatcher = Dispatcher(self)
        self.clock = Clock(hw.get("ntptime"), cfg["ntp"]["host"])
        self.automation = None
        self.automate()
        self._link_to_try = None  # (config, restart after) of a link change to start
        self._trial = None  # a LinkTrial while a new broker link is tried
        self.calibration_points = {}  # sensor -> points of a calibration in progress
        self._connects_seen = 0
        self.discovered = None  # the topic of the Home Assistant device config last sent
        self.ha_due = None  # when to describe the node again to a Home Assistant that came online
        spill_bytes = cfg["mqtt"]["spill_bytes"]
        self._outbox = Outbox(in_root(root, OUTBOX_PATH), spill_bytes) if spill_bytes else None
        self.sleeper = None  # a SleepCycle on a node that sleeps between readings
        if cfg["power"]["mode"] == "deepsleep":
            from firmware.sleep import SleepCycle

            self.sleeper = SleepCycle(cfg["power"], hw["rtc"], hw["deepsleep"])
            self.interval_ms = 86400000  # one reading per wake: power.sleep_s is the period
        self.link = self.new_link(cfg)
        if self.sleeper is not None:
            self.sleeper.resume(self, cause)  # the boot it slept in: its queue's drop count too
        self.link.session.report_outbox()
        for key, reason in problems:
            self.log("config: %s: %s" % (key, reason))

    def new_link(self, cfg, queue=None):
        """A link made from cfg (queue: readings still to send, from the link before)."""
        link = Link(cfg, self._hw["wlan"], self._hw["mac"], self.log, self.on_message, self.status_json,
                    self._outbox, queue)
        link.session.outgoing = self.fill_times
        if self.sleeper is not None:
            link.session.clean = False  # what comes while it sleeps waits at the broker
        self._connects_seen = 0  # its first connection is news (_on_connected)
        return link

    def automate(self):
        """Take over the config's automation: its code is loaded only while it has rules
        or schedules (firmware/automation.py)."""
        automation = self.cfg["automation"]
        if self.automation is not None:
            self.automation.configure(self.cfg)  # runs of rules now gone are stopped
        if not (automation["rules"] or automation["schedules"]):
            self.automation = None
            unload("firmware.automation")
        elif self.automation is None:
            from firmware.automation import Automation

            self.automation = Automation(self.cfg, self.relays, self.clock)

    def fill_times(self, text):
        """A queued message as it leaves: times not known when it was made filled in
        (firmware/clock.py, pending)."""
        return self.clock.fill(text, self.boot_id, self.uptime_s())

    # --- time ---

    def uptime_s(self):
        # Accumulated so it survives the ticks counter wrapping (every ~12 days).
        now = ticks_ms()
        self.uptime_ms += ticks_diff(now, self._last_tick)
        self._last_tick = now
        return self.uptime_ms // 1000

    def set_interval_ms(self, interval_ms):
        """A new telemetry interval: the next reading within one new interval, and never
        later than already due (a read command just before must still be answered)."""
        self.interval_ms = interval_ms
        within = ticks_add(ticks_ms(), interval_ms)
        if ticks_diff(within, self._next_reading) < 0:
            self._next_reading = within

    def read_now(self):
        self._next_reading = ticks_ms()

    # --- the loop ---

    def step(self):
        """One turn of the loop."""
        if self.sleeper is not None and self.sleeper.due(self):
            self.sleeper.sleep(self)  # does not return on a chip
            return
        link = self.link
        link_up = link.wifi.poll()
        now = ticks_ms()
        if link_up and ticks_diff(now, self._next_ntp) >= 0:
            # Again now and then: the RTC drifts, and a first sync may have failed.
            synced = self.clock.sync()
            self._next_ntp = ticks_add(now, _NTP_RESYNC_MS if synced else _NTP_RETRY_MS)
            if synced and self.held:
                self._send_held()
        session = link.session
        session.poll(link_up)
        if session.connects != self._connects_seen:
            self._connects_seen = session.connects
            self._on_connected()
        if self.ha_due is not None and ticks_diff(now, self.ha_due) >= 0:
            self.ha_due = None
            self._discover()
            self.read_now()  # its state: telemetry is not retained
        if self._link_to_try is not None:  # the config's answer has gone out on the old link
            self._start_trial()
        elif self._trial is not None and self._trial.check(now):
            self._trial = None
            release_config(self.reader.fitted())  # the trial saved the config, or went back
            if self.link.session.connected:  # the new link, kept (a link gone back to reconnects)
                self._discover()  # not during the trial: its config code was still loaded
        self._safety(ticks_ms())  # now: the turn's connect or NTP may have taken a while
        self.reader.poll()
        if self.dispatcher.job is not None and self.reading_pass is None:  # a job (calibration, OTA) has the buses
            self.dispatcher.step_job()
            self.heap.idle()  # a download's garbage, taken back as it goes
            self._wait(2)
            return
        if self.reading_pass is None and ticks_diff(now, self._next_reading) >= 0:
            self._next_reading = ticks_add(self._next_reading, self.interval_ms)
            if ticks_diff(now, self._next_reading) >= 0:  # fell behind: do not catch up in a burst
                self._next_reading = ticks_add(now, self.interval_ms)
            self.reading_pass = self.reader.pass_steps()
            self._hold_asked = None
            self._pass_uptime_s = self.uptime_s()  # when it was taken, not sent
        if self.reading_pass is None:
            self.heap.idle()
            self._wait(_LOOP_MS)
            return
        if self._hold_asked is not None and not self._may_hold(now):
            self._wait(2)
            return
        try:
            if next(self.reading_pass) == HOLDS:
                self._hold_asked = now
                self._heard = False
            self._wait(2)  # the pass is waiting on a bus: idle briefly, not spin
        except StopIteration as done:
            self.reading_pass = None
            values, errors = done.value
            # Kept for what is published between passes (a relay change); updated in
            # place, not copied: no new tables each pass.
            self._values.update(values)
            self._errors.clear()
            self._errors.update(errors)
            self.relays.observe(self._values)
            if self.automation is not None:
                self.automation.look_now()  # a new reading: what it starts goes out next turn
            stops = self.relays.take_changes()  # an interlock stop: its state is in this very reading
            self.publish_reading(values, errors)
            self._relay_changes(stops)
            for alert in self.alerts.check(values):
                messages.send_alert(self, alert)

    def _may_hold(self, now):
        """Whether the pass may take its step that holds the CPU (HOLDS) in this turn:
        the socket has just been served, and no message arrived since the last turn
        (each is answered first: one still in the socket comes in the next turns). A
        stream of them defers the step _HOLD_WAIT_MS at most: the DHT is not starved."""
        if self._heard and ticks_diff(now, self._hold_asked) < _HOLD_WAIT_MS:
            self._heard = False
            return False
        self._hold_asked = None
        return True

    def _safety(self, now):
        relays = self.relays
        automation = self.automation
        offline_automation = automation is not None and self.cfg["automation"]["offline"]
        if automation is not None:  # first: a run it ends is stopped with its own reason
            automation.poll(self.log, now, self._failsafe_tripped and not offline_automation)
        relays.poll(now)
        if self.link.session.connected:
            self._offline_since = now
            self._failsafe_tripped = False
        elif not self._failsafe_tripped and ticks_diff(now, self._offline_since) >= self.cfg["failsafe_s"] * 1000:
            self._failsafe_tripped = True
            # What the node's own automation runs goes on, unless it is not to offline.
            relays.all_off("failsafe", offline_automation)
            self.log.event("failsafe: no broker for %d s, every relay off%s"
                           % (self.cfg["failsafe_s"], " but the automation's" if offline_automation else ""))
        changes = relays.take_changes()
        if changes:
            self.publish_reading(self._values, self._errors)  # the new state, at once
            self._relay_changes(changes)
        if self.restart_requested:
            self.restart_requested = False
            self.shutdown("restart")
            self._hw["reset"]()

    def _relay_changes(self, changes):
        """Each change logged; an automatic one (an automation's start or stop, an
        interlock, max_on_s, the failsafe) also published as an info alert naming the
        rule and the reason (PROTOCOL.md, Alerts)."""
        for name, on, reason, rule in changes:
            self.log("relay %s %s (%s)" % (name, "on" if on else "off", reason))
            if rule is not None:
                messages.send_alert(self, {"severity": "info", "sensor": None, "value": None, "threshold": None,
                                           "rule": rule, "message": "%s %s: %s" % (name, "started" if on else "stopped",
                                                                                    reason)})

    def _wait(self, ms):
        """Idle up to ms, woken by a message (Session.wait), or as the host says."""
        if self._idle is None:
            self.link.session.wait(ms)
        else:
            self._idle(ms)

    def announce(self):
        """The first line of a running node."""
        self.log("farmnode %s as %s, profile %s, boot %s"
                 % (VERSION, self.link.device_id, self.link.profile.name, self.boot_id))

    def run(self, until=None):
        """Loop forever (or until until() is true, for tests and the simulator). The
        watchdog is fed after each turn that completes: a loop that hangs, or fails on
        every turn, gets the device reset."""
        self.announce()
        watchdog = self.watchdog
        while until is None or not until():
            try:
                self.step()
                if watchdog is not None:
                    watchdog.feed()
            except Exception as exc:  # a bug must not stop the loop (and the safety rules)
                self.loop_errors += 1
                self.log("loop: %s %s" % (type(exc).__name__, exc))
                self.reading_pass = None
                sleep_ms(200)  # not session.wait: what failed may be in the session

    def run_application(self):
        """The device's application (main.py, once the boot's code is let go): the loop
        until Ctrl-C; then every relay off, the node shut down, the watchdog stretched
        for the technician, and maintenance beside the REPL (returned: it keeps the
        device's status). What escapes from here resets the device (main.py)."""
        reason = "restart"
        try:
            self.run()
        except KeyboardInterrupt:
            from firmware import board

            reason = "maintenance"
            board.watchdog(TECHNICIAN_WATCHDOG_S)
        finally:
            self.relays.all_off("stopped")  # nothing enforces max_on_s once the loop is gone
            self.shutdown(reason)
        print("farmnode stopped (Ctrl-C); the watchdog restarts it in %d min unless machine.reset() "
              "comes first" % (TECHNICIAN_WATCHDOG_S // 60))
        from firmware.maintenance import Maintenance

        return Maintenance(self.cfg, self._hw["wlan"], "technician at the REPL").start()

    # --- what it says ---

    def publish_reading(self, values, errors):
        """Telemetry of the last pass, stamped with when it was taken (back-dated from
        the uptime). Before the clock is set its time is filled in as it leaves, if the
        clock is set by then (null if not); a profile whose backend needs a time holds it
        until the clock is set (at most _HELD_MAX, the oldest dropped and counted)."""
        clock = self.clock
        if clock.synced:
            taken = clock.stamp(self.uptime_s() - self._pass_uptime_s)
        else:  # filled in as it leaves, if the clock is set by then
            taken = clock.pending(self.boot_id, self._pass_uptime_s)
        reading = messages.reading(self, values, errors, taken, self._pass_uptime_s)
        self.seq += 1
        if not clock.synced and self.link.profile.needs_time:
            if len(self.held) >= _HELD_MAX:
                self.held.pop(0)
                self.link.session.queue.dropped += 1
            self.held.append((reading, self._pass_uptime_s))
            return
        messages.send_reading(self.link, reading)

    def _send_held(self):
        """The clock is set: the readings that waited for it, back-dated, in order."""
        held = self.held
        self.held = []
        for reading, taken_s in held:
            reading["ts"], reading["unix"] = self.clock.stamp(self.uptime_s() - taken_s)
            messages.send_reading(self.link, reading)

    def status_json(self, state, fields, link=None):
        """The status payload as JSON: the Will, online, offline, sleeping (firmware/messages.py)."""
        return json.dumps(messages.status(self, link or self.link, state, fields))

    # --- what comes in ---

    def on_message(self, topic, msg):
        self._heard = True  # a step that holds the CPU waits for a turn without one
        if self.sleeper is not None:
            self.sleeper.heard()
        try:
            if topic == self.link.ha_status_topic:
                # Home Assistant (re)started: it wants the node again. Not a node that
                # sleeps: it describes itself at each wake, where the retained "online"
                # comes again with every subscription.
                if msg == b"online" and self.sleeper is None:
                    self.ha_due = ticks_add(ticks_ms(), _HA_REPLY_MAX_MS * os.urandom(1)[0] // 255)
                return
            if topic == self.link.config_topic:  # bytes, as the client gives it
                self.dispatcher.handle(msg, "config")
            else:
                self.dispatcher.handle(msg)
        except Exception as exc:  # e.g. no memory for the answer: the PUBACK must still go
            self.log("message on %s dropped: %s %s" % (topic, type(exc).__name__, exc))

    def _on_connected(self):
        """Each time the broker is reached: this boot is healthy (no safe mode on the
        next), and an update on trial has proven itself."""
        self.healthy()
        if self._trial is None:  # a link on trial is described once it is kept (step)
            self._discover()
        if not (exists(in_root(self.root, "ota-files/trial.json"))
                or exists(in_root(self.root, "ota-files/report.json"))):
            return  # no update going on: lib/ota stays out of the heap
        from ota import Swap

        swap = Swap(self.root, log=self.log)
        version = swap.confirm()
        if version is not None:
            self.log("ota: %s reached the broker, kept" % version)
        report = swap.take_report()
        del Swap, swap
        unload("ota", "ota_files")
        if report is not None:
            messages.notice(self, "info" if report["result"] == "updated" else "warning", "ota",
                            "ota: %s %s" % (report["result"], report["version"]))

    def healthy(self):
        """This boot is healthy: no safe mode on the next (lib/bootguard)."""
        guard = self._hw.pop("boot_guard", None)
        if guard is not None:  # once: the count is 0 now, and its code can go
            guard.healthy()
            del guard
            unload("bootguard")

    def _discover(self):
        """Describe the node to Home Assistant; the code that does it leaves the heap at
        once (firmware/ha_discovery.py)."""
        if self.link.discovery_topic is None and self.discovered is None:
            return  # nothing to describe, nor to take back: its code stays out of the heap
        from firmware import ha_discovery

        ha_discovery.describe(self)
        del ha_discovery
        unload("firmware.ha_discovery", "text_payload")

    def apply_config(self, patch):
        """Validate patch over the config as a whole (ConfigError names every bad key),
        then apply it: at once, by trying the new broker link, or by a restart
        (firmware/reconfig.py, loaded for it). firmware/calibration.py saves its points
        so, here and from the technician's REPL (firmware/tech)."""
        return reconfigure(self, "apply", patch)

    def _start_trial(self):
        """Move to the link a config asked for, with a way back (firmware/link_trial.py).
        Tried once: if it cannot even start, the node stays on its link and says so."""
        to_try, self._link_to_try = self._link_to_try, None
        try:
            from firmware.link_trial import LinkTrial

            self._trial = LinkTrial(self, *to_try)
        except Exception as exc:  # e.g. no heap for a second link
            release_config(self.reader.fitted())
            messages.notice(self, "warning", "config",
                            "config: the new link could not be tried (%s %s); back on the old config"
                            % (type(exc).__name__, exc))

    def link_change_pending(self):
        return self._trial is not None or self._link_to_try is not None

    def try_link(self, cfg, restart):
        """Move to the link cfg describes once the answer has gone out (firmware/link_trial.py)."""
        self._link_to_try = (cfg, restart)

    def restart_soon(self):
        self.restart_requested = True  # after the answer has gone out

    def shutdown(self, reason="restart"):
        session = self.link.session
        if session.connected:
            self.log.event("shutdown: %s" % reason)
        session.close(self.status_json("offline", {"reason": reason}))
