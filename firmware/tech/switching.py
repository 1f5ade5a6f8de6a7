# tech.relay(name, seconds): a relay on by hand, under the node's own rules (max_on_s,
# the interlocks, checked again at every interval), and off when the call returns,
# however it returns.
from firmware.tech import Usage
from firmware.tech.sensing import reader_for, release, sensor_pass
from ticks import ticks_add, ticks_diff, ticks_ms


def relay(tech, name, seconds):
    from firmware import config

    if type(name) is not str or not name:
        raise Usage("name: the relay's name, a string")
    if type(seconds) not in (int, float) or seconds - seconds != 0 or seconds <= 0:  # not a bool, NaN or inf
        raise Usage("seconds: how long it stays on, a number above 0")
    cfg, _ = config.load(tech.root)
    specs = cfg["relays"]
    if name not in specs:
        raise Usage("no relay named %r; the relays are: %s" % (name, ", ".join(sorted(specs)) or "none"))
    if seconds > specs[name]["max_on_s"]:
        tech._out("refused: %s may stay on at most %d s (relays.%s.max_on_s)" % (
            name, specs[name]["max_on_s"], name))
        return
    from firmware.board import build_relays
    from firmware.relays import Refused, RelayBank

    relays = build_relays(cfg)  # every relay driven off first
    reader = None
    try:
        bank = RelayBank(relays, cfg["interlocks"], cfg["relay_groups"], 2000 * cfg["interval_s"])
        rules = sorted(rule for rule in cfg["interlocks"] if cfg["interlocks"][rule]["relay"] == name)
        if rules:
            tech._out("interlocks %s: reading the sensors first" % ", ".join(rules))
            reader, _ = reader_for(cfg)
            bank.observe(sensor_pass(tech, reader)[0])
        try:
            bank.set(name, True, seconds)
        except Refused as exc:
            tech._out("refused: %s" % exc)
            return
        _hold(tech, bank, name, seconds, reader, 1000 * cfg["interval_s"])
    finally:
        for each in relays.values():  # whatever happened: off
            each.off(None)
        if reader is not None:
            release(cfg, reader)


def _hold(tech, bank, name, seconds, reader, interval_ms):
    """Wait while the relay is on: a countdown; the bank's timer switches it off; the
    interlocks are checked every interval with a new pass, as the node does."""
    out = tech._out
    switched = bank.relays[name]
    started = ticks_ms()
    end = ticks_add(started, int(seconds * 1000))
    out("%s on for %g s (Ctrl-C switches it off)" % (name, seconds))
    shown = -(-int(seconds * 1000) // 1000)  # whole seconds, rounded up: not shown again
    next_pass = ticks_add(started, interval_ms)
    steps = None
    try:
        while True:
            bank.poll()
            if not switched.on:
                break
            now = ticks_ms()
            left = ticks_diff(end, now)
            whole = (left + 999) // 1000
            if 0 < whole < shown:
                shown = whole
                if whole <= 5 or whole % 10 == 0:
                    out("  %d s left" % whole)
            if reader is not None:
                if steps is None and ticks_diff(now, next_pass) >= 0:
                    steps = reader.pass_steps()
                    next_pass = ticks_add(now, interval_ms)
                if steps is not None:
                    try:
                        next(steps)
                    except StopIteration as done:
                        steps = None
                        bank.observe(done.value[0])
            tech._sleep(max(1, min(left, 50)))
    except KeyboardInterrupt:
        switched.off(None)
        out("stopped: %s off after %.1f s" % (name, ticks_diff(ticks_ms(), started) / 1000))
        return
    reason = "timer"
    for changed, on, why, _ in bank.take_changes():
        if changed == name and not on:
            reason = why
    out("%s off after %.1f s%s" % (name, ticks_diff(ticks_ms(), started) / 1000,
                                   "" if reason == "timer" else ": " + reason))
