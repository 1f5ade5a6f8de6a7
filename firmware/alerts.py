# Threshold alerts with hysteresis (PROTOCOL.md, Alerts): a reading that leaves a rule's
# min..max raises one alert; it is cleared (one "info") only once the reading is back
# inside by the rule's hysteresis, so a value wobbling on a threshold does not flood
# the backend. A missing reading changes nothing: an unplugged probe is not a recovery.
from micropython import const

_INSIDE = const(0)
_LOW = const(1)
_HIGH = const(2)


class Alerts:
    def __init__(self, rules):
        self.rules = rules
        self._state = {}  # rule -> _LOW or _HIGH while raised

    def check(self, values):
        """The alerts one reading gives, as dicts without a time; usually none."""
        out = []
        for name in self.rules:
            rule = self.rules[name]
            value = values.get(rule["sensor"])
            if value is None:
                continue
            state = self._state.get(name, _INSIDE)
            low, high, margin = rule["min"], rule["max"], rule["hysteresis"]
            if state == _LOW and value >= low + margin:
                out.append(_alert(name, rule, "info", value, low, "back above"))
                state = _INSIDE
            elif state == _HIGH and value <= high - margin:
                out.append(_alert(name, rule, "info", value, high, "back below"))
                state = _INSIDE
            if state == _INSIDE:
                if low is not None and value < low:
                    out.append(_alert(name, rule, rule["severity"], value, low, "below"))
                    state = _LOW
                elif high is not None and value > high:
                    out.append(_alert(name, rule, rule["severity"], value, high, "above"))
                    state = _HIGH
            self._state[name] = state
        return out

    def update(self, rules):
        """New rules; a standing alert of a rule that is still there stays raised."""
        self.rules = rules
        for name in list(self._state):
            if name not in rules:
                del self._state[name]

    def raised(self):
        """The rules whose alert is standing, for the status."""
        return sorted(name for name in self._state if self._state[name] != _INSIDE)


def _alert(name, rule, severity, value, threshold, how):
    return {"severity": severity, "sensor": rule["sensor"], "value": value, "threshold": threshold,
            "rule": name, "message": "%s %s %s %s" % (rule["sensor"], value, how, threshold)}
