# The technician's tools at the serial REPL of a device whose application is not
# running (stopped with Ctrl-C, or safe mode):
#     >>> from firmware import tech
#     >>> tech.help()
# Each call reads the config from flash, builds what it needs (sensors, relays), uses
# it and lets it go: between calls the heap holds only this module. A pH or EC calibration
# in progress between calibrate() steps waits in a small file on flash. Every
# function prints its answer and returns None; wrong arguments print how to call it.
# Tests make their own Tech(root, out=..., sleep_ms=..., ask=...).
import gc

from ticks import sleep_ms as _sleep_ms
from ticks import ticks_add, ticks_diff, ticks_ms

# (name, how to call it, what it does, an example)
_CALLS = (
    ("status", "status()", "firmware, ids, boot guard, Wi-Fi, broker, memory, flash, clock, relays", ""),
    ("read", "read()", "read every sensor now: calibrated and raw values, errors", ""),
    ("relay", "relay(name, seconds)", "a relay on for seconds, then off (Ctrl-C: off at once)",
     "tech.relay('irrigation', 30)"),
    ("calibrate", "calibrate(sensor, point=None, value=None)",
     "ph, ec or moisture: guided step by step; with a point, that one step",
     "tech.calibrate('ph')  or  tech.calibrate('ph', 'mid', 7.0)"),
    ("wifi", "wifi(ssid, password)", "set the Wi-Fi network (used from the next reset)",
     "tech.wifi('barn', 'secret-pass')"),
    ("broker", "broker(host, port=1883, user=None, password=None, tls=None)",
     "set the MQTT broker (used from the next reset)", "tech.broker('192.168.1.10', 1883, 'node7', 'pass')"),
    ("config", "config(key=None, value=None)", "the config; one key; or set a key (validated, saved)",
     "tech.config('interval_s', 30)"),
    ("log", "log(lines=20)", "the end of the flash log", "tech.log(50)"),
    ("leave_safe_mode", "leave_safe_mode()", "clear the failed-boot count and restart into the application", ""),
    ("restart", "restart()", "restart the device", ""),
    ("help", "help()", "this list", ""),
)
_POINTS_FILE = "calibration-points.json"  # a pH or EC calibration between calibrate() calls
_RESET_CAUSES = ("?", "power_on", "hard", "watchdog", "deepsleep", "soft")
_WIFI_STATUS = ((1000, "idle"), (1001, "connecting"), (1010, "got an IP"), (200, "beacon timeout"),
                (201, "no access point found"), (202, "wrong password"), (203, "association failed"),
                (204, "handshake timeout"))
_UNITS = (("moisture", " %"), ("temp", " C"), ("humidity", " %RH"), ("n", " mg/kg"), ("p", " mg/kg"),
          ("k", " mg/kg"), ("ec", " mS/cm"), ("wind_speed", " km/h"), ("wind_gust", " km/h"))
_CAL_KEYS = ("dry", "wet", "slope_mv", "offset_v", "k", "offset")  # what calibration stores
_NOTHING = ("no value",)  # config(key): no value given (None is one: it removes an entry)


class Usage(ValueError):
    """Wrong arguments: the text says what is wrong, the usage line follows."""


def _listing():
    lines = ["tech: the technician's tools (the application is not running)"]
    for name, call, what, example in _CALLS:
        lines.append("  tech.%-30s %s" % (call, what))
    return "\n".join(lines)


def _usage_of(name):
    for entry in _CALLS:
        if entry[0] == name:
            return "usage: tech.%s%s" % (entry[1], "   e.g. " + entry[3] if entry[3] else "")
    return ""


def _number(value):
    """A real, finite number (not a bool)."""
    return type(value) in (int, float) and value - value == 0


def _shown(value):
    """A number as a person reads it: 8.7, not MicroPython's 8.699999999999999."""
    return "%g" % value if type(value) is float else str(value)


def _unit(key):
    for name, unit in _UNITS:
        if name == key:
            return unit
    return ""


def _raw(driver, values):
    """What the driver measured before calibration, as text ("" when it has no such thing)."""
    if getattr(driver, "raw", None) is not None:
        return "%d counts (dry %d, wet %d)" % (driver.raw, driver.dry, driver.wet)
    if getattr(driver, "volts", None) is not None:
        return "%.4f V at %.1f C" % (driver.volts, driver.temperature())
    if hasattr(driver, "kmh_per_hz") and values.get("wind_speed") is not None:
        return "%.2f Hz" % (values["wind_speed"] / driver.kmh_per_hz)
    if hasattr(driver, "cal_points"):
        return "EZO circuit"
    return ""


def _leaves(value, path, lines):
    """'dotted.key = value' lines of a config tree."""
    if type(value) is dict and value:
        for key in sorted(value):
            _leaves(value[key], path + "." + key if path else key, lines)
    else:
        lines.append("%s = %r" % (path, value))


def _stored_text(result):
    """One line of what a calibration step stored (the answer of firmware.calibration)."""
    sensor = result["sensor"]
    name = "soil" if sensor == "moisture" else sensor
    stored = ["sensors.%s.%s = %s" % (name, key, _shown(result[key])) for key in _CAL_KEYS if key in result]
    measured = ["%s %s" % (key, _shown(result[key])) for key in sorted(result)
                if key not in _CAL_KEYS and key not in ("sensor", "point", "circuit")]
    if "circuit" in result:
        text = "the EZO circuit took it (it keeps its calibration itself)"
    else:
        text = "saved " + (", ".join(stored) if stored else "nothing")
    return "%s %s: %s%s" % (sensor, result["point"], text, " (%s)" % ", ".join(measured) if measured else "")


def _unload(kept):
    """Forget the firmware modules a call imported (board, sensors, calibration...): in
    safe mode nothing else uses them, and they would hold the heap for good."""
    import sys

    for name in list(sys.modules):
        if name.startswith("firmware.") and name not in kept:
            del sys.modules[name]
            parent, _, child = name.rpartition(".")
            package = sys.modules.get(parent)
            if package is not None and hasattr(package, child):
                delattr(package, child)


def _guided_steps(sensor, ezo):
    """(point, default value, required, what to do) of a guided calibration."""
    if sensor == "moisture":
        return (("dry", None, True, "hold the probe in the air, clean and dry"),
                ("wet", None, True, "push the probe into saturated soil (or water up to its line)"))
    if sensor == "ph":
        return (("mid", 7.0, True, "rinse the probe, put it in the pH 7.00 buffer"),
                ("low", 4.0, False, "rinse the probe, put it in the pH 4.00 buffer"),
                ("high", 10.0, False, "rinse the probe, put it in the pH 10.00 buffer"))
    if ezo:
        return (("dry", None, True, "dry the probe and hold it in the air"),
                ("low", 12.88, True, "put the probe in the 12.88 mS/cm solution"),
                ("high", 80.0, False, "rinse the probe, put it in the 80 mS/cm solution"))
    return (("low", 1.413, True, "rinse the probe, put it in the 1.413 mS/cm solution"),
            ("high", 12.88, False, "rinse the probe, put it in the 12.88 mS/cm solution"))


class _Calibrating:
    """What firmware.calibration asks of a node: the config, the reader, the points of a
    calibration in progress, and apply_config (validated, saved, taken by the drivers)."""

    def __init__(self, root, cfg, reader, points):
        self.root = root
        self.cfg = cfg
        self.reader = reader
        self.calibration_points = points

    def apply_config(self, patch):
        from firmware import config

        new = config.apply(self.cfg, patch)  # the keys calibration sets are live ones
        config.save(new, self.root)
        self.cfg = new
        for driver in self.reader.drivers:
            if hasattr(driver, "configure"):
                driver.configure(new["sensors"][driver.name])


class Tech:
    """root: the device's folder ("" on the device); out: prints one text; sleep_ms: waits
    (a test's may raise KeyboardInterrupt); ask: input(); wind_s: how long the
    anemometer's pulses are counted before a reading."""

    def __init__(self, root="", out=None, sleep_ms=None, ask=None, wind_s=3):
        self.root = root
        self._out = out or print
        self._sleep = sleep_ms or _sleep_ms
        self._ask = ask or input
        self.wind_ms = int(wind_s * 1000)

    def __repr__(self):
        return _listing()

    # --- what the technician calls ---

    def help(self, *extra, **unknown):
        self._out(_listing())

    def status(self, *extra, **unknown):
        self._run("status", self._status, (), extra, unknown)

    def read(self, *extra, **unknown):
        self._run("read", self._read, (), extra, unknown)

    def relay(self, name=None, seconds=None, *extra, **unknown):
        self._run("relay", self._relay, (name, seconds), extra, unknown)

    def calibrate(self, sensor=None, point=None, value=None, temp_c=None, *extra, **unknown):
        self._run("calibrate", self._calibrate, (sensor, point, value, temp_c), extra, unknown)

    def wifi(self, ssid=None, password=None, *extra, **unknown):
        self._run("wifi", self._wifi, (ssid, password), extra, unknown)

    def broker(self, host=None, port=1883, user=None, password=None, tls=None, *extra, **unknown):
        self._run("broker", self._broker, (host, port, user, password, tls), extra, unknown)

    def config(self, key=None, value=_NOTHING, *extra, **unknown):
        self._run("config", self._config, (key, value), extra, unknown)

    def log(self, lines=20, *extra, **unknown):
        self._run("log", self._log, (lines,), extra, unknown)

    def leave_safe_mode(self, *extra, **unknown):
        self._run("leave_safe_mode", self._leave_safe_mode, (), extra, unknown)

    def restart(self, *extra, **unknown):
        self._run("restart", self._restart, (), extra, unknown)

    def _run(self, name, work, args, extra, unknown):
        """Call work(*args), turning wrong arguments into a usage line, Ctrl-C into
        "stopped" and a failure into one line. A reset (SystemExit) goes through."""
        import sys

        loaded = set(sys.modules)
        try:
            if extra or unknown:
                raise Usage("unexpected argument%s: %s" % (
                    "s" if len(extra) + len(unknown) > 1 else "",
                    ", ".join([repr(a) for a in extra] + [k + "=" for k in unknown])))
            work(*args)
        except Usage as exc:
            self._out("%s\n%s" % (exc, _usage_of(name)))
        except KeyboardInterrupt:
            self._out("stopped")
        except Exception as exc:  # noqa: BLE001 (a line at the REPL, not a traceback)
            self._out("%s failed: %s: %s" % (name, type(exc).__name__, exc))
        finally:
            _unload(loaded)
        gc.collect()

    # --- helpers ---

    def _load(self):
        from firmware import config

        return config.load(self.root)

    def _sensors(self, cfg, only=None):
        """A SensorReader on every enabled sensor (or only those named), and the setup problems."""
        from firmware import board, config
        from firmware.sensors.reader import SensorReader

        if only is not None:
            cfg = config.merge(cfg, {"sensors": {name: {"enabled": False} for name in cfg["sensors"]
                                                 if name not in only}})
        drivers, problems = board.build_sensors(cfg)
        reader = SensorReader(drivers)
        reader.trims = cfg["trims"]
        return reader, problems

    def _release(self, cfg, reader):
        """Let the hardware go: the anemometer's IRQ is the one thing that would keep running."""
        wind = reader.driver("wind")
        if wind is not None and not hasattr(wind, "reason"):
            from firmware import board

            board.stop_pulses(cfg["sensors"]["wind"]["pin"])

    def _drive(self, steps):
        """Run a step generator to its end, sleeping briefly at each step; its result."""
        try:
            while True:
                next(steps)
                self._sleep(2)
        except StopIteration as done:
            return done.value

    def _pass(self, reader, count_wind=True):
        """One sensor pass: (values, errors). The anemometer counts pulses from when it was
        built: with count_wind, wind_ms of them first (a speed needs a span of time)."""
        if count_wind and reader.driver("wind") is not None and self.wind_ms > 0:
            self._out("counting the anemometer's pulses for %g s..." % (self.wind_ms / 1000))
            end = ticks_add(ticks_ms(), self.wind_ms)
            left = self.wind_ms
            while left > 0:
                reader.poll()
                self._sleep(min(left, 50))
                left = ticks_diff(end, ticks_ms())
        return self._drive(reader.pass_steps())

    def _line(self, driver, values, errors, problems=()):
        """A sensor's reading: calibrated values, raw measure, error."""
        shown = ["%s %s%s" % (key, _shown(values[key]), _unit(key)) for key in driver.keys
                 if values.get(key) is not None]
        text = "%-5s %s" % (driver.name, ", ".join(shown) if shown else "no reading")
        raw = _raw(driver, values)
        if raw:
            text += "   raw " + raw
        error = errors.get(driver.name)
        if error:
            text += "   error: " + error
            for key, reason in problems:
                if key == "sensors." + driver.name:
                    text += " (%s)" % reason
        return text

    # --- status ---

    def _status(self):
        import os

        from firmware import VERSION, board, device_id, in_root
        from firmware.startup import FAILED_BOOTS_LIMIT, flash_log
        from outbox import DEFAULT_PATH as OUTBOX_PATH

        out = self._out
        cfg, problems = self._load()
        cause = board.reset_cause()
        out("farmnode %s, device %s, reset cause %s" % (
            VERSION, device_id(cfg, board.unique_id()),
            _RESET_CAUSES[cause] if 0 < cause < len(_RESET_CAUSES) else cause))
        # The count as lib/bootguard keeps it: boots since the broker was last reached,
        # this one included (read, not counted: boot() would add one).
        counted = board.boot_guard(FAILED_BOOTS_LIMIT).count()
        if not counted:
            out("boot guard: clear (this boot reached the broker)")
        elif counted - 1 >= FAILED_BOOTS_LIMIT:
            out("boot guard: %d failed boots before this one: safe mode (tech.leave_safe_mode() clears it)"
                % (counted - 1))
        else:
            out("boot guard: %d failed boot(s) before this one (safe mode at %d); this one has not reached "
                "the broker" % (counted - 1, FAILED_BOOTS_LIMIT))
        last = None
        for line in flash_log(self.root).tail(40):
            at = line.find("boot: reset cause ")
            if at >= 0:
                last = line[at:]
        if last is not None:
            out("last boot (flash log): %s" % last[last.find(",") + 2:])
        self._wifi_status(cfg)
        mqtt = cfg["mqtt"]
        out("broker: %s:%d, %s, %s%s, profile %s" % (
            mqtt["host"] or "(not set)", mqtt["port"], "user %r" % mqtt["user"] if mqtt["user"] else "no user",
            "TLS" if mqtt["tls"] else "no TLS", " (ca %s)" % mqtt["ca"] if mqtt["ca"] else "", cfg["profile"]))
        gc.collect()
        if hasattr(gc, "mem_free"):
            out("heap: %d bytes free, %d used" % (gc.mem_free(), gc.mem_alloc()))
        try:
            fs = os.statvfs(self.root or "/")
            out("flash: %d KiB free of %d KiB" % (fs[0] * fs[3] // 1024, fs[0] * fs[2] // 1024))
        except (OSError, AttributeError) as exc:
            out("flash: unknown (%s)" % exc)
        try:
            waiting = os.stat(in_root(self.root, OUTBOX_PATH))[6]
            out("outbox: %d bytes of readings taken offline, sent once the broker is reached" % waiting)
        except OSError:
            out("outbox: empty (nothing waits for the broker)")
        now = board.rtc_datetime()
        if now[0] < 2024:
            out("clock: not set (NTP sets it once the node is online)")
        else:
            out("clock: %04d-%02d-%02d %02d:%02d:%02d UTC" % (now[0], now[1], now[2], now[4], now[5], now[6]))
        states = []
        for name in sorted(cfg["relays"]):
            spec = cfg["relays"][name]
            on = board.pin_level(spec["pin"]) != (1 if spec["active_low"] else 0)  # read, not driven
            states.append("%s %s" % (name, "ON (expected off!)" if on else "off"))
        out("relays: " + (", ".join(states) if states else "none"))
        if problems:
            out("config: %d problem(s) at load, tech.config() lists them" % len(problems))

    def _wifi_status(self, cfg):
        import network

        wlan = network.WLAN(network.STA_IF)
        if wlan.isconnected():
            try:
                ssid = wlan.config("essid")
            except (OSError, ValueError):
                ssid = "?"
            try:
                rssi = "%d dBm" % wlan.status("rssi")
            except (OSError, ValueError):
                rssi = "?"
            self._out("Wi-Fi: connected to %r, ip %s, rssi %s" % (ssid, wlan.ifconfig()[0], rssi))
            return
        code = wlan.status()
        for number, meaning in _WIFI_STATUS:
            if number == code:
                code = meaning
        self._out("Wi-Fi: not connected (%s%s), configured ssid %r" % (
            "" if wlan.active() else "off, ", code, cfg["wifi"]["ssid"]))

    # --- sensors ---

    def _read(self):
        cfg, _ = self._load()
        reader, problems = self._sensors(cfg)
        try:
            if not reader.drivers:
                self._out("no sensor is enabled (config sensors.*.enabled)")
                return
            values, errors = self._pass(reader)
            for driver in reader.drivers:
                self._out(self._line(driver, values, errors, problems))
            if reader.last_exception is not None:
                self._out("a driver failed: %s: %s" % (type(reader.last_exception).__name__, reader.last_exception))
            trims = cfg["trims"]
            for key in trims:
                self._out("%s is trimmed: x %s + %s (config trims)" % (key, trims[key]["scale"], trims[key]["offset"]))
        finally:
            self._release(cfg, reader)

    # --- relays ---

    def _relay(self, name, seconds):
        if type(name) is not str or not name:
            raise Usage("name: the relay's name, a string")
        if not _number(seconds) or seconds <= 0:
            raise Usage("seconds: how long it stays on, a number above 0")
        cfg, _ = self._load()
        specs = cfg["relays"]
        if name not in specs:
            raise Usage("no relay named %r; the relays are: %s" % (name, ", ".join(sorted(specs)) or "none"))
        if seconds > specs[name]["max_on_s"]:
            self._out("refused: %s may stay on at most %d s (relays.%s.max_on_s)" % (
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
                self._out("interlocks %s: reading the sensors first" % ", ".join(rules))
                reader, _ = self._sensors(cfg)
                bank.observe(self._pass(reader)[0])
            try:
                bank.set(name, True, seconds)
            except Refused as exc:
                self._out("refused: %s" % exc)
                return
            self._hold(bank, name, seconds, reader, 1000 * cfg["interval_s"])
        finally:
            for relay in relays.values():  # whatever happened: off
                relay.off(None)
            if reader is not None:
                self._release(cfg, reader)

    def _hold(self, bank, name, seconds, reader, interval_ms):
        """Wait while the relay is on: a countdown; the bank's timer switches it off; the
        interlocks are checked every interval with a new pass, as the node does."""
        relay = bank.relays[name]
        started = ticks_ms()
        end = ticks_add(started, int(seconds * 1000))
        self._out("%s on for %g s (Ctrl-C switches it off)" % (name, seconds))
        shown = -(-int(seconds * 1000) // 1000)  # whole seconds, rounded up: not shown again
        next_pass = ticks_add(started, interval_ms)
        steps = None
        try:
            while True:
                bank.poll()
                if not relay.on:
                    break
                now = ticks_ms()
                left = ticks_diff(end, now)
                whole = (left + 999) // 1000
                if 0 < whole < shown:
                    shown = whole
                    if whole <= 5 or whole % 10 == 0:
                        self._out("  %d s left" % whole)
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
                self._sleep(max(1, min(left, 50)))
        except KeyboardInterrupt:
            relay.off(None)
            self._out("stopped: %s off after %.1f s" % (name, ticks_diff(ticks_ms(), started) / 1000))
            return
        reason = "timer"
        for changed, on, why in bank.take_changes():
            if changed == name and not on:
                reason = why
        self._out("%s off after %.1f s%s" % (name, ticks_diff(ticks_ms(), started) / 1000,
                                            "" if reason == "timer" else ": " + reason))

    # --- calibration ---

    def _calibrate(self, sensor, point, value, temp_c):
        if sensor not in ("ph", "ec", "moisture"):
            raise Usage("sensor: 'ph', 'ec' or 'moisture'")
        if point is not None and type(point) is not str:
            raise Usage("point: a string, e.g. 'mid', 'low', 'high', 'one', 'dry', 'wet' or 'clear'")
        if point is None and value is not None:
            raise Usage("a value goes with a point")
        name = "soil" if sensor == "moisture" else sensor
        cfg, _ = self._load()
        if not cfg["sensors"][name]["enabled"]:
            self._out("the %s sensor is not enabled (sensors.%s.enabled)" % (sensor, name))
            return
        reader, problems = self._sensors(cfg, (name, "dht"))  # the DHT: the temperature
        points = self._points()
        try:
            node = _Calibrating(self.root, cfg, reader, points)
            driver = reader.driver(name)
            if hasattr(driver, "reason"):
                self._out("the %s sensor cannot be used: %s" % (sensor, "; ".join(p[1] for p in problems)))
            elif point is None:
                self._guided(node, sensor, driver)
            else:
                values, errors = self._pass(reader, False)
                self._out("now: " + self._line(driver, values, errors))
                self._step(node, sensor, point, value, temp_c)
        finally:
            self._keep_points(points)
            self._release(cfg, reader)

    def _points(self):
        """sensor -> points of a calibration in progress (kept on flash between calls)."""
        import json

        from firmware import in_root

        try:
            with open(in_root(self.root, _POINTS_FILE)) as f:
                points = json.load(f)
        except (OSError, ValueError):
            return {}
        return points if type(points) is dict else {}

    def _keep_points(self, points):
        import json
        import os

        from atomicfile import write_atomic
        from firmware import in_root

        path = in_root(self.root, _POINTS_FILE)
        try:
            if points:
                write_atomic(path, json.dumps(points))
            else:
                os.remove(path)
        except OSError:
            pass

    def _step(self, node, sensor, point, value, temp_c=None):
        """One calibration step, as the calibrate command does it; True when stored."""
        from firmware.calibration import calibrate

        try:
            result = calibrate(node, sensor, point, value, temp_c)
            if hasattr(result, "send"):  # an EZO circuit: a step generator
                result = self._drive(result)
        except ValueError as exc:
            self._out("refused: %s" % exc)
            return False
        self._out(_stored_text(result))
        return True

    def _guided(self, node, sensor, driver):
        steps = _guided_steps(sensor, hasattr(driver, "calibrate_steps"))
        node.calibration_points.pop(sensor, None)  # a fresh calibration
        what = {"moisture": "the raw counts", "ph": "your buffer's pH", "ec": "your solution's mS/cm"}[sensor]
        self._out("calibrating %s in %d steps; each point is saved as it is recorded" % (sensor, len(steps)))
        number = 0
        for point, default, required, todo in steps:
            number += 1
            self._out("step %d/%d (%s): %s, press Enter when the reading is stable" % (
                number, len(steps), point, todo))
            prompt = "  Enter: record, r: read again, %sq: quit, or type %s > " % (
                "" if required else "s: skip, ", what)
            while True:
                values, errors = self._pass(node.reader, False)
                self._out("  " + self._line(driver, values, errors))
                answer = self._ask(prompt).strip().lower()
                if answer == "q":
                    self._out("stopped; the steps recorded before are saved")
                    return
                if answer == "s" and not required:
                    self._out("  skipped")
                    break
                if answer in ("r", "s"):
                    continue
                value = default
                if answer:
                    try:
                        value = int(answer) if sensor == "moisture" else float(answer)
                    except ValueError:
                        self._out("  not understood: %r" % answer)
                        continue
                if self._step(node, sensor, point, value):
                    break
                self._out("  the same step again (q to quit)")
        values, errors = self._pass(node.reader, False)
        self._out("done; it now reads: " + self._line(driver, values, errors))

    # --- settings ---

    def _save(self, patch, what=None):
        """Validate patch over the config and save it: the keys that changed, or None
        (refused, every reason printed; or nothing to change)."""
        from firmware import config, reconfig

        cfg, problems = self._load()
        try:
            new = config.apply(cfg, patch)
        except config.ConfigError as exc:
            self._out("refused, nothing changed:\n" + "\n".join("  %s: %s" % p for p in exc.problems))
            return None
        keys = reconfig.changed(cfg, new)
        if not keys:
            self._out("no change")
            return None
        config.save(new, self.root)
        self._out("saved %s" % (what or ", ".join(keys)))
        if problems:
            self._out("note: the config files had problems at load (tech.config() lists them); "
                      "they were written again without them")
        return keys

    def _wifi(self, ssid, password):
        if type(ssid) is not str or not 0 < len(ssid) <= 32:
            raise Usage("ssid: the network's name, 1 to 32 characters")
        if type(password) is not str or (password and not 8 <= len(password) <= 64):
            raise Usage("password: 8 to 63 characters, or '' for an open network")
        if self._save({"wifi": {"ssid": ssid, "password": password}},
                      "Wi-Fi %r, %s" % (ssid, "with a password" if password else "open")):
            self._out("used from the next reset: tech.restart()")

    def _broker(self, host, port, user, password, tls):
        if type(host) is not str or not host:
            raise Usage("host: the broker's name or IP address, a string")
        if type(port) is not int:
            raise Usage("port: a whole number, 1883 (8883 with TLS)")
        mqtt = {"host": host, "port": port}
        for key, given in (("user", user), ("password", password)):
            if given is not None:
                if type(given) is not str:
                    raise Usage("%s: a string ('' for none); None leaves it as it is" % key)
                mqtt[key] = given
        if tls is not None:
            if type(tls) is not bool:
                raise Usage("tls: True or False; None leaves it as it is")
            mqtt["tls"] = tls
        if self._save({"mqtt": mqtt}, "broker %s:%d" % (host, port)):
            self._out("used from the next reset: tech.restart()")

    def _config(self, key, value):
        from firmware import config
        from firmware.defaults import HIDDEN_KEYS

        if key is not None and (type(key) is not str or not key):
            raise Usage("key: a dotted name such as 'interval_s' or 'relays.irrigation.max_on_s'")
        if key is None and value is not _NOTHING:
            raise Usage("a value needs a key")
        if value is not _NOTHING:
            patch = value
            for part in reversed(key.split(".")):
                patch = {part: patch}
            keys = self._save(patch)
            if keys:
                from firmware import reconfig

                reconnect, restart = reconfig.needs(keys)
                if restart or reconnect:
                    self._out("restart needed: yes (%s): tech.restart()" % (
                        "the link to the broker" if reconnect else "the wiring or a boot setting"))
                else:
                    self._out("restart needed: no (a running node takes it at once; "
                              "the application uses it when it starts)")
            return
        cfg, problems = self._load()
        lines = []
        shown = config.public(cfg)
        if key is not None:
            try:
                shown = config.get(shown, key)
            except (KeyError, TypeError):
                if key not in HIDDEN_KEYS:
                    self._out("no key %r in the config; its keys: %s" % (key, ", ".join(sorted(cfg))))
                    return
                shown = None
        if key is None or key not in HIDDEN_KEYS:
            _leaves(shown, key or "", lines)
        for hidden in HIDDEN_KEYS:  # never shown: said whether set
            if key is None or hidden == key or hidden.startswith(key + "."):
                lines.append("%s = (%s)" % (hidden, "set, hidden" if config.get(cfg, hidden) else "empty"))
        lines.sort()
        for line in lines:
            self._out(line)
        if key is None:
            for bad, reason in problems:
                self._out("ignored at load: %s: %s" % (bad, reason))

    # --- the flash log, the boot guard, resets ---

    def _log(self, lines):
        if type(lines) is not int or lines < 1:
            raise Usage("lines: how many, a whole number above 0")
        from firmware.startup import flash_log

        log = flash_log(self.root)
        tail = log.tail(lines)
        if not tail:
            self._out("the flash log (%s) is empty" % log.path)
        for line in tail:
            self._out(line)

    def _leave_safe_mode(self):
        from firmware import board
        from firmware.startup import FAILED_BOOTS_LIMIT

        guard = board.boot_guard(FAILED_BOOTS_LIMIT)
        counted = guard.count()
        guard.healthy()
        self._out("boot guard cleared (it counted %d boot(s) without the broker); restarting" % counted)
        cfg, _ = self._load()
        if board.button_held(cfg["safe_mode"]["pin"]):
            self._out("the BOOT button is held: release it, or this is safe mode again")
        board.reset()

    def _restart(self):
        from firmware import board

        self._out("restarting")
        board.reset()



def _tech():
    """A Tech on the device's own folder, for one call: nothing is kept between calls."""
    return Tech()


def _call(name):
    """A module function for the REPL: tech.read() is Tech().read()."""
    def call(*args, **kwargs):
        getattr(_tech(), name)(*args, **kwargs)

    return call


help = _call("help")  # noqa: A001 (tech.help() at the REPL)
status = _call("status")
read = _call("read")
relay = _call("relay")
calibrate = _call("calibrate")
wifi = _call("wifi")
broker = _call("broker")
config = _call("config")
log = _call("log")
leave_safe_mode = _call("leave_safe_mode")
restart = _call("restart")
