# The technician's tools at the serial REPL of a device whose application is not
# running (stopped with Ctrl-C, or safe mode):
#     >>> from firmware import tech
#     >>> tech.help()
# Only this module stays loaded: the listing, the checks every call shares and one
# wrapper. A call's work is in a part of this package, imported for the call and
# forgotten after it with all else the call loaded (config code, board, sensors): an
# ESP32 holds its .mpy code in the heap. A pH or EC calibration in progress between
# calibrate() steps waits in a small file on flash. Every function prints its answer
# and returns None; wrong arguments print how to call it. Tests make their own
# Tech(root, out=..., sleep_ms=..., ask=...).
import gc

from firmware import unload
from ticks import sleep_ms as _sleep_ms

# One line a call: name|the part that does it|how to call it|what it does|an example.
# One string, not a tuple of tuples: the heap holds its bytes, not an object a field
# (2.5 KiB less). A part is not named after its call: importing firmware.tech.status
# would replace status().
_CALLS = (
    "status|overview|status()|firmware, ids, boot guard, Wi-Fi, broker, memory, flash, clock, relays|\n"
    "read|readings|read()|read every sensor now: calibrated and raw values, errors|\n"
    "relay|switching|relay(name, seconds)|a relay on for seconds, then off (Ctrl-C: off at once)"
    "|tech.relay('irrigation', 30)\n"
    "calibrate|calibrating|calibrate(sensor, point=None, value=None)"
    "|ph, ec or moisture: guided step by step; with a point, that one step"
    "|tech.calibrate('ph')  or  tech.calibrate('ph', 'mid', 7.0)\n"
    "wifi|settings|wifi(ssid, password, add=False, remove=False)"
    "|set the Wi-Fi network; add=True: one more (the strongest in range is joined); remove=True: drop one"
    " (used from the next reset)|tech.wifi('barn', 'secret-pass')  or  tech.wifi('shed', 'pass-2', add=True)\n"
    "broker|settings|broker(host, port=1883, user=None, password=None, tls=None)"
    "|set the MQTT broker (used from the next reset)|tech.broker('192.168.1.10', 1883, 'node7', 'pass')\n"
    "config|settings|config(key=None, value=None)|the config; one key; or set a key (validated, saved)"
    "|tech.config('interval_s', 30)\n"
    "log|system|log(lines=20)|the end of the flash log|tech.log(50)\n"
    "leave_safe_mode|system|leave_safe_mode()|clear the failed-boot count and restart into the application|\n"
    "restart|system|restart()|restart the device|\n"
    "help||help()|this list|"
)
_NOTHING = ("no value",)  # config(key): no value given (None is one: it removes an entry)


class Usage(ValueError):
    """Wrong arguments: the text says what is wrong, the usage line follows. The parts
    raise it; it lives here, where a part loaded again finds the class _run catches."""


def _listing():
    lines = ["tech: the technician's tools (the application is not running)"]
    for line in _CALLS.split("\n"):
        fields = line.split("|")
        lines.append("  tech.%-30s %s" % (fields[2], fields[3]))
    return "\n".join(lines)


def _entry(name):
    """The fields of name's line in _CALLS."""
    for line in _CALLS.split("\n"):
        fields = line.split("|")
        if fields[0] == name:
            return fields
    raise ValueError(name)


def _usage_of(name):
    fields = _entry(name)
    return "usage: tech.%s%s" % (fields[2], "   e.g. " + fields[4] if fields[4] else "")


class Tech:
    """root: the device's folder ("" on the device); out: prints one text; sleep_ms: waits
    (a test's may raise KeyboardInterrupt); ask: input(); wind_s: how long the
    anemometer's pulses are counted before a reading."""

    def __init__(self, root="", out=None, sleep_ms=None, ask=None, wind_s=3):
        self.root = root
        # The parts print, wait and ask through these; a test replaces them.
        self._out = out or print
        self._sleep = sleep_ms or _sleep_ms
        self._ask = ask or input
        self.wind_ms = int(wind_s * 1000)

    def __repr__(self):
        return _listing()

    # --- what the technician calls (the parts check the values given) ---

    def help(self, *extra, **unknown):
        self._out(_listing())

    def status(self, *extra, **unknown):
        self._run("status", (), extra, unknown)

    def read(self, *extra, **unknown):
        self._run("read", (), extra, unknown)

    def relay(self, name=None, seconds=None, *extra, **unknown):
        self._run("relay", (name, seconds), extra, unknown)

    def calibrate(self, sensor=None, point=None, value=None, temp_c=None, *extra, **unknown):
        self._run("calibrate", (sensor, point, value, temp_c), extra, unknown)

    def wifi(self, ssid=None, password=None, *extra, add=False, remove=False, **unknown):
        self._run("wifi", (ssid, password, add, remove), extra, unknown)

    def broker(self, host=None, port=1883, user=None, password=None, tls=None, *extra, **unknown):
        self._run("broker", (host, port, user, password, tls), extra, unknown)

    def config(self, key=None, value=_NOTHING, *extra, **unknown):
        self._run("config", (key, value), extra, unknown)

    def log(self, lines=20, *extra, **unknown):
        self._run("log", (lines,), extra, unknown)

    def leave_safe_mode(self, *extra, **unknown):
        self._run("leave_safe_mode", (), extra, unknown)

    def restart(self, *extra, **unknown):
        self._run("restart", (), extra, unknown)

    def _run(self, name, args, extra, unknown):
        """Call the function name of its part with (self, *args), turning wrong arguments
        into a usage line, Ctrl-C into "stopped" and a failure into one line. A reset
        (SystemExit) goes through. The modules the call imported (its part, config
        code, sensors, the libraries they use) are forgotten after it: in safe mode
        nothing else uses them, and they would hold the heap for good."""
        import sys

        loaded = set(sys.modules)
        try:
            if extra or unknown:
                raise Usage("unexpected argument%s: %s" % (
                    "s" if len(extra) + len(unknown) > 1 else "",
                    ", ".join([repr(a) for a in extra] + [k + "=" for k in unknown])))
            part = __import__("firmware.tech." + _entry(name)[1], None, None, (name,), 0)
            getattr(part, name)(self, *args)
        except Usage as exc:
            self._out("%s\n%s" % (exc, _usage_of(name)))
        except KeyboardInterrupt:
            self._out("stopped")
        except Exception as exc:  # noqa: BLE001 (a line at the REPL, not a traceback)
            self._out("%s failed: %s: %s" % (name, type(exc).__name__, exc))
        finally:
            unload(*[module for module in sys.modules if module not in loaded])
        gc.collect()


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
