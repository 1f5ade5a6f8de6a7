# The node's own irrigation, which goes on when the network does not: rules run a relay
# by a reading (on below on_below, off above off_above, at most max_run_s at a time, at
# least min_rest_s apart), schedules at a local time on given weekdays. They switch
# relays through the RelayBank, under the same interlocks, groups and max_on_s as a
# command; a command for a relay holds them off it for manual_hold_s. Loaded only on a
# node whose config has rules or schedules (firmware/node.py: Node.automate).
from firmware.relays import Refused
from micropython import const
from ticks import ticks_add, ticks_diff, ticks_ms

_LOOK_MS = const(500)  # how often starts are looked for (stops: every turn)
_DAY_S = const(86400)
_THURSDAY = const(3)  # 1970-01-01, day 0 of Unix time (Monday is 0)
NO_CLOCK = "no clock: schedules wait for NTP"


def _run_ms(seconds, relay):
    """A run's length: never past the relay's own max_on_s."""
    return 1000 * min(seconds, relay.max_on_s)


class Automation:
    """cfg: the node's config (automation, clock); relays: its RelayBank; clock: its Clock."""

    def __init__(self, cfg, relays, clock):
        self.relays = relays
        self.clock = clock
        self._runs = {}  # relay name -> (rule or schedule, ticks_ms its run ends, why it ends then)
        self._rest_from = {}  # rule -> ticks_ms its last run stopped
        self._fired = {}  # schedule -> the local day number of its last run
        self._blocked = {}  # rule or schedule -> the refusal last logged (said once, not every look)
        self._next_look = ticks_ms()
        self.configure(cfg)

    def configure(self, cfg):
        automation = cfg["automation"]
        self.rules = automation["rules"]
        self.schedules = automation["schedules"]
        for relay in list(self._runs):  # a run does not outlive its rule or schedule
            owner = self._runs[relay][0]
            if owner not in self.rules and owner not in self.schedules:
                self.relays.stop(relay, "%s: no longer in the config" % owner, owner)
                del self._runs[relay]
        self.hold_ms = 1000 * automation["manual_hold_s"]
        self.offline = automation["offline"]
        self.offset_s = 60 * cfg["clock"]["utc_offset_min"]
        self._next_look = ticks_ms()

    def look_now(self):
        self._next_look = ticks_ms()

    def holding(self):
        """{relay: the rule or schedule running it} (telemetry meta.automation)."""
        return {name: self._runs[name][0] for name in self._runs}

    def waiting(self):
        """Why the schedules cannot run now, or None."""
        return NO_CLOCK if self.schedules and not self.clock.synced else None

    def poll(self, log, now, paused=False):
        """One turn at ticks_ms now: runs that are over stopped, then (every _LOOK_MS) what
        is due started. paused: the broker is gone and the automation is not to go on
        offline. The node hands the RelayBank the same now just after, so a run's end is
        never behind its relay's own timer (set a moment later): the rule's reason is the
        one published."""
        self._end_runs(now)
        if paused or ticks_diff(now, self._next_look) < 0:
            return
        self._next_look = ticks_add(now, _LOOK_MS)
        for name in self.rules:
            self._rule(name, self.rules[name], now, log)
        unix = self.clock.unix()
        if unix is not None:
            for name in self.schedules:
                self._schedule(name, self.schedules[name], unix + self.offset_s, now, log)

    def _end_runs(self, now):
        relays = self.relays
        for relay in list(self._runs) if self._runs else ():
            owner, end, why = self._runs[relay]
            switched = relays.relays[relay]
            if not switched.on or switched.owner != owner:  # stopped by a rule, a command, the failsafe
                self._ended(relay, owner, now)
                continue
            reason = None
            if ticks_diff(now, end) >= 0:
                reason = why
            elif owner in self.rules:
                spec = self.rules[owner]
                value = relays.fresh(spec["sensor"])
                if value is None:
                    reason = "no recent %s reading" % spec["sensor"]
                elif value > spec["off_above"]:
                    reason = "%s %s > %s" % (spec["sensor"], value, spec["off_above"])
            if reason is not None:
                relays.stop(relay, "%s: %s" % (owner, reason), owner)
                self._ended(relay, owner, now)

    def _ended(self, relay, owner, now):
        del self._runs[relay]
        if owner in self.rules:
            self._rest_from[owner] = now

    def _free(self, relay, now):
        """Whether the automation may switch relay on now: off, and no command for it
        within manual_hold_s."""
        switched = self.relays.relays[relay]
        commanded = self.relays.commanded.get(relay)
        return not switched.on and (commanded is None or ticks_diff(now, commanded) >= self.hold_ms)

    def _rule(self, name, spec, now, log):
        relay = spec["relay"]
        value = self.relays.fresh(spec["sensor"])
        if value is None or value >= spec["on_below"] or not self._free(relay, now):
            return
        rested = self._rest_from.get(name)
        if rested is not None and ticks_diff(now, rested) < 1000 * spec["min_rest_s"]:
            return
        why = "max_run_s reached" if spec["max_run_s"] <= self.relays.relays[relay].max_on_s else "max_on_s reached"
        self._start(name, relay, spec["max_run_s"], why,
                    "%s %s < %s" % (spec["sensor"], value, spec["on_below"]), now, log)

    def _schedule(self, name, spec, local, now, log):
        at = spec["at"]
        since_midnight = local - 3600 * int(at[:2]) - 60 * int(at[3:])
        day = since_midnight // _DAY_S  # the local day its latest run began on
        into = since_midnight - day * _DAY_S  # seconds into that run
        if into >= spec["run_s"] or self._fired.get(name) == day or (day + _THURSDAY) % 7 not in spec["days"]:
            return
        if not self._free(spec["relay"], now):
            return  # tried again at the next look while its time lasts
        self._fired[name] = day
        self._start(name, spec["relay"], spec["run_s"] - into, "run_s reached",
                    "%s for %d s" % (at, spec["run_s"] - into), now, log)

    def _start(self, name, relay, seconds, why, reason, now, log):
        switched = self.relays.relays[relay]
        run_ms = _run_ms(seconds, switched)
        try:
            self.relays.run(relay, run_ms / 1000, name, "%s: %s" % (name, reason), name)
        except Refused as exc:
            if self._blocked.get(name) != str(exc):
                self._blocked[name] = str(exc)
                log("automation %s: %s refused: %s" % (name, relay, exc))
            return
        self._blocked.pop(name, None)
        self._runs[relay] = (name, ticks_add(now, run_ms), why)
