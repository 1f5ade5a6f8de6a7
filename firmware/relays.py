# Relays (irrigation valve, fertigation pump) and the safety rules the device enforces
# whatever a backend asks: every relay has a max_on_s after which it switches off by
# itself (timed with ticks, so a clock change cannot stretch it); interlocks refuse,
# and stop, a relay while a reading is out of bounds, missing or stale; relays in one
# group exclude each other; everything goes off when the broker has been gone too long
# (but what the node's own automation runs, when it is to go on offline). Each relay
# knows who switched it on: "command", or the automation rule or schedule that runs it.
from firmware.errors import Refused  # noqa: F401 (raised by RelayBank.set)
from ticks import ticks_add, ticks_diff, ticks_ms


class Relay:
    def __init__(self, name, pin, active_low=False, max_on_s=600):
        self.name = name
        self._pin = pin  # an output Pin the board already set to "off"
        self._off_level = 1 if active_low else 0
        self.max_on_s = max_on_s
        self.on = False
        self._off_at = None
        self._on_since = None
        self._capped = False  # on for its max_on_s (no duration, or one that asked for more)
        self.owner = None  # while on: "command", or the automation rule or schedule running it
        self.off(None)

    def switch_on(self, duration_s=None):
        """On for duration_s (never more than max_on_s); returns the seconds it will stay on."""
        self._capped = duration_s is None or duration_s >= self.max_on_s
        seconds = self.max_on_s if self._capped else duration_s
        now = ticks_ms()
        if not self.on:
            self._on_since = now
        # Timed before the pin moves: whatever fails after, the timer switches it off.
        self.on = True
        self._off_at = ticks_add(now, int(seconds * 1000))
        self._pin.value(1 - self._off_level)
        return seconds

    def off(self, reason="command"):
        self._pin.value(self._off_level)
        self.on = False
        self.owner = None
        self._off_at = None
        self._on_since = None
        return reason

    def off_in_s(self):
        if not self.on:
            return 0
        return max(0, ticks_diff(self._off_at, ticks_ms())) // 1000

    def due_off(self, now):
        """Why it is due to switch off by itself now ("timer": the duration a command
        asked for; "max_on_s": the safety limit), or None."""
        if self.on and ticks_diff(now, self._off_at) >= 0:
            return "max_on_s" if self._capped else "timer"
        return None


class RelayBank:
    """relays: {name: Relay}; interlocks: {rule: {"relay", "sensor", "min", "max"}};
    groups: {group: [relay names]}; max_age_ms: how old a reading an interlock accepts.
    changes: (relay, on, reason, rule) not yet published; rule names what acted by
    itself (an interlock, max_on_s, the failsafe, an automation), None for a command."""

    def __init__(self, relays, interlocks, groups, max_age_ms):
        self.relays = relays
        self.interlocks = interlocks
        self.groups = groups
        self.max_age_ms = max_age_ms
        self._readings = {}
        self._read_at = None
        self.changes = []
        self.commanded = {}  # relay name -> ticks_ms of the last command for it (automation holds off)

    def states(self):
        return {name: 1 if self.relays[name].on else 0 for name in self.relays}

    def observe(self, values):
        """A new sensor pass: what the interlocks judge by. Stops a relay whose rule fails."""
        self._readings = values
        self._read_at = ticks_ms()
        for name in self.relays:
            if self.relays[name].on:
                broken = self._broken_rule(name)
                if broken:
                    self.stop(name, "interlock " + broken, broken.split(":")[0])

    def fresh(self, sensor):
        """The last reading of sensor, or None when missing or older than max_age_ms."""
        if self._read_at is None or ticks_diff(ticks_ms(), self._read_at) > self.max_age_ms:
            return None
        return self._readings.get(sensor)

    def _broken_rule(self, relay):
        """The name and reason of the first interlock that forbids relay now, or None."""
        for rule in self.interlocks:
            spec = self.interlocks[rule]
            if spec["relay"] != relay:
                continue
            value = self.fresh(spec["sensor"])
            if value is None:
                return "%s: no recent %s reading" % (rule, spec["sensor"])
            if not spec["min"] <= value <= spec["max"]:
                return "%s: %s %s outside %s..%s" % (rule, spec["sensor"], value, spec["min"], spec["max"])
        return None

    def set(self, name, on, duration_s=None):
        """Switch a relay; returns seconds until it switches off (0 when off).
        Raises KeyError for an unknown relay, Refused when a safety rule forbids it."""
        relay = self.relays[name]
        self.commanded[name] = ticks_ms()  # refused or not, the automation leaves it alone a while
        if not on:
            if relay.on:
                self.stop(name, "command")
            return 0
        return self.run(name, duration_s, "command", "command", None)

    def run(self, name, duration_s, owner, reason, rule):
        """Switch a relay on for owner ("command", or the automation's rule or schedule),
        under the same rules as a command; returns the seconds it stays on."""
        broken = self._broken_rule(name)
        if broken:
            raise Refused("interlock " + broken)
        for group in self.groups:
            members = self.groups[group]
            if name in members:
                for other in members:
                    if other != name and other in self.relays and self.relays[other].on:
                        self.stop(other, "group %s" % group)
        relay = self.relays[name]
        seconds = relay.switch_on(duration_s)
        relay.owner = owner
        self.changes.append((name, True, reason, rule))
        return seconds

    def stop(self, name, reason, rule=None):
        """Switch a relay off: reason says why, rule what did it by itself (None: a command)."""
        self.relays[name].off(reason)
        self.changes.append((name, False, reason, rule))

    def poll(self, now=None):
        """Switch off relays whose time is up at ticks_ms now; call every loop turn."""
        if now is None:
            now = ticks_ms()
        for name in self.relays:
            reason = self.relays[name].due_off(now)
            if reason is not None:
                self.stop(name, reason, "max_on_s" if reason == "max_on_s" else None)

    def all_off(self, reason, commands_only=False):
        """Every relay off (commands_only: those a command switched on), reason naming why."""
        for name in self.relays:
            relay = self.relays[name]
            if relay.on and not (commands_only and relay.owner != "command"):
                self.stop(name, reason, reason)

    def take_changes(self):
        changes = self.changes
        self.changes = []
        return changes
