# Commands: every backend dialect is turned into one canonical form
# (command_id, command, parameters), checked, executed once, and answered exactly once.
# A repeated command_id (a QoS 1 redelivery) gets the first answer again, not a second run
# (a command that changes nothing, such as get_config, just runs again).
# Bad input of any kind is answered with success false and an error that says what was
# wrong; it never moves a relay.
import json

from firmware.relays import Refused
from firmware.schema import ConfigError

ALIASES = {"send_now": "read", "calibrate_sensor": "calibrate", "reboot": "restart",
           "ota_update": "ota"}
_RECENT = 32  # answers remembered for redeliveries, as JSON text (a dict costs 4x more)
# Commands that change nothing: a redelivery runs them again (a fresh answer) rather than
# keeping their answers, a whole config among them, in RAM.
_NO_EFFECT = ("get_config", "status", "ping")
_MAX_DURATION_S = 86400


class CommandError(ValueError):
    """The command is wrong; the message says how (it goes back in "error")."""


def normalize(data):
    """(command_id, command, parameters, dialect) from any seed's command format."""
    if type(data) is not dict:
        raise CommandError("a command must be a JSON object")
    if data.get("type") == "ACTUATE":  # seed 000
        return None, "relay", {"relay": data.get("device"), "state": data.get("state")}, "actuate"
    command = data.get("command")
    dialect = "canonical"
    params = data.get("parameters")
    if command is None and "action" in data:  # seed 001: parameters beside the action
        command = data["action"]
        params = {k: data[k] for k in data if k not in ("action", "command_id")}
        dialect = "action"
    elif params is None and "params" in data:  # seed 003
        params = data["params"]
    if type(command) is not str or not command:
        raise CommandError("missing 'command' (a string)")
    if len(command) > 64:  # no command is this long (and MicroPython names stop at 255)
        raise CommandError("unknown command %s" % shown(command))
    if params is None:
        params = {}
    if type(params) is not dict:
        raise CommandError("'parameters' must be an object")
    command_id = data.get("command_id")
    if command_id is not None and not valid_id(command_id):
        raise CommandError("'command_id' must be a string of 1 to 64 printable ASCII characters")
    return command_id, ALIASES.get(command, command), params, dialect


def valid_id(value):
    """A command_id we echo back: 1 to 64 printable ASCII characters."""
    if type(value) is not str or not 0 < len(value) <= 64:
        return False
    for ch in value:
        if not 32 <= ord(ch) < 127:
            return False
    return True


def shown(value):
    """A value echoed in an error or a log: cut short (a hostile 3 kB name is not sent
    back whole) and in ASCII (a name with a lone surrogate would not be valid UTF-8)."""
    if type(value) in (list, dict):  # repr of a deeply nested one would recurse too deep
        return "%s of %d" % ("a list" if type(value) is list else "an object", len(value))
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    out = ""
    for ch in text:
        code = ord(ch)
        out += ch if 32 <= code < 127 else "\\u%04x" % code
    return out


def _describe(exc):
    return "%s %s" % (type(exc).__name__, exc)


def _parse(payload):
    """(data, None) or (None, why it is not JSON)."""
    try:
        return json.loads(payload), None
    except (ValueError, UnicodeError) as exc:
        return None, "not JSON: %s" % exc
    except (RuntimeError, MemoryError) as exc:  # nested too deep for the parser
        return None, "cannot parse: %s" % _describe(exc)


def _is_envelope(data):
    return type(data) is dict and "signed" in data  # firmware.signing stays unloaded until one comes


def _claimed_id(data):
    """The command_id a refused message carries (in its envelope's text or in itself),
    so the backend can tell which of its commands was refused."""
    if _is_envelope(data) and type(data["signed"]) is str:
        data, _ = _parse(data["signed"])
    command_id = data.get("command_id") if type(data) is dict else None
    return command_id if valid_id(command_id) else None


def _config_message(data):
    """A message on the config topic as a config command."""
    if type(data) is not dict:
        raise CommandError("a config must be a JSON object")
    command_id = data.get("command_id")
    if not valid_id(command_id):
        command_id = None
    return command_id, "config", data, "canonical"


def _number(params, key, low, high, required=True):
    value = params.get(key)
    if value is None:
        if required:
            raise CommandError("missing parameter '%s'" % key)
        return None
    if type(value) not in (int, float) or value != value:  # bool is not a number here; NaN fails
        raise CommandError("'%s' must be a number" % key)
    if not low <= value <= high:
        raise CommandError("'%s' must be between %s and %s, got %s" % (key, low, high, value))
    return value


def _state(value):
    if value in (True, 1, "on", "ON", "On", "1", "true"):
        return True
    if value in (False, 0, "off", "OFF", "Off", "0", "false"):
        return False
    raise CommandError("'state' must be on/off, 1/0 or true/false, got %s" % shown(value))


class Dispatcher:
    """node: what commands act on (see Node); publish(payload_dict) sends a response."""

    def __init__(self, node):
        self.node = node
        self._answers = {}
        self._order = []
        self._counter = 0
        self.job = None  # a command that takes time: (steps, command_id, command, dialect)
        self.verifier = None  # firmware.signing's, made when the first signed message comes

    def handle(self, payload, topic_kind="commands"):
        """Answer one incoming message (a command, or a config when topic_kind is
        "config"); returns the response dict (None if it is a repeat or still running)."""
        data, error = _parse(payload)
        repeat = False
        if error is None and (self.node.cfg["signing"]["key"] or _is_envelope(data)):
            from firmware.signing import SignatureError, Verifier  # only where signing is used

            if self.verifier is None:
                self.verifier = Verifier()
            try:
                text, repeat = self.verifier.open(data, "config" if topic_kind == "config" else "command",
                                                  self.node)
            except SignatureError as exc:
                # Not remembered under its command_id: an unsigned message must not decide
                # what a signed one with the same id gets.
                return self._answer(_claimed_id(data), None, "canonical", False, None,
                                    "signature: %s" % exc, False)
            data, error = _parse(text)
        if error is not None:
            return self._answer(None, None, "canonical", False, None, error)
        try:
            if topic_kind == "config":
                command_id, command, params, dialect = _config_message(data)
            else:
                command_id, command, params, dialect = normalize(data)
        except CommandError as exc:
            cid = data.get("command_id") if type(data) is dict and valid_id(data.get("command_id")) else None
            return self._answer(cid, None, "canonical", False, None, str(exc))
        if command_id is not None and command_id in self._answers:
            # The first answer, again (its ts included: it says when it ran).
            self.node.send_response(json.loads(self._answers[command_id]), dialect)
            return None
        if self.job is not None and command_id is not None and command_id == self.job[1]:
            return None  # a redelivery of the command still running: its answer will come
        if repeat:  # signed and accepted before, and not remembered as answered: a replay
            return self._answer(command_id, None, dialect, False, None,
                                "signature: replayed: this signed message was taken before", False)
        if command_id is None:
            self._counter += 1
            command_id = "%s-%d" % (self.node.boot_id, self._counter)
        handler = getattr(self, "do_" + command, None)
        if handler is None:  # the unknown name is not echoed in "command": it may not be valid text
            return self._answer(command_id, None, dialect, False, None, "unknown command %s" % shown(command))
        try:
            result = handler(params)
        except (CommandError, Refused) as exc:
            return self._answer(command_id, command, dialect, False, None, str(exc))
        except ConfigError as exc:
            return self._answer(command_id, command, dialect, False, None, "config refused: %s" % exc)
        except Exception as exc:  # a bug or no memory: answered, so the backend is not left waiting
            self.node.log("command %s failed: %s" % (command, _describe(exc)))
            return self._answer(command_id, command, dialect, False, None, "internal error: %s" % _describe(exc))
        if hasattr(result, "send"):  # steps to run over the loop; the answer comes at the end
            if self.job is not None:
                return self._answer(command_id, command, dialect, False, None,
                                    "busy: %s is still running" % self.job[2])
            self.job = (result, command_id, command, dialect)
            return None
        return self._answer(command_id, command, dialect, True, result, None)

    def step_job(self):
        """Advance the running job by one step; answer it when it is done."""
        steps, command_id, command, dialect = self.job
        try:
            next(steps)
            return
        except StopIteration as done:
            self.job = None
            self._answer(command_id, command, dialect, True, done.value, None)
        except (CommandError, Refused, ValueError, OSError) as exc:
            self.job = None
            self._answer(command_id, command, dialect, False, None, str(exc) or _describe(exc))
        except Exception as exc:  # a bug: answered, so the backend is not left waiting
            self.job = None
            self._answer(command_id, command, dialect, False, None, "internal error: %s" % _describe(exc))

    def _answer(self, command_id, command, dialect, success, response, error, remember=True):
        answer = {"command_id": command_id, "device_id": self.node.device_id, "command": command,
                  "success": success, "response": response, "error": error, "ts": self.node.clock.iso()}
        if command_id is not None and remember and command not in _NO_EFFECT:
            self._answers[command_id] = json.dumps(answer)
            self._order.append(command_id)
            if len(self._order) > _RECENT:
                self._answers.pop(self._order.pop(0), None)
        self.node.send_response(answer, dialect)
        if not success:
            self.node.log("command %s refused: %s" % (shown(command), error))
        return answer

    # --- the commands (PROTOCOL.md, Commands) ---

    def do_read(self, params):
        self.node.read_now()
        return {"queued": True}

    def do_ping(self, params):
        return {"pong": True, "uptime_s": self.node.uptime_s()}

    def do_status(self, params):
        return self.node.status_info()

    def do_get_config(self, params):
        return self.node.public_config()

    def do_set_interval(self, params):
        if "intervalMs" in params and "interval_s" not in params:
            seconds = _number(params, "intervalMs", 1000, 86400000) / 1000
        else:
            seconds = _number(params, "interval_s", 1, 86400)
        return {"interval_s": self.node.set_interval(int(seconds))}

    def do_restart(self, params):
        self.node.restart_soon()
        return {"restarting": True}

    def _relay(self, name, on, duration_s):
        relays = self.node.relays
        if type(name) is not str or name not in relays.relays:
            raise CommandError("unknown relay %s (have: %s)" % (shown(name), ", ".join(sorted(relays.relays))))
        off_in = relays.set(name, on, duration_s)
        return {"relay": name, "state": 1 if on else 0, "off_in_s": off_in}

    def do_relay(self, params):
        on = _state(params.get("state"))
        duration = _number(params, "duration_s", 0.1, _MAX_DURATION_S, required=False)
        return self._relay(params.get("relay"), on, duration)

    def do_set_pump(self, params):  # seed 004: pump_id, state, duration (s)
        pump_id = _number(params, "pump_id", 1, 99)
        names = [n for n in self.node.relays.relays if self.node.cfg["relays"][n]["pump_id"] == pump_id]
        if not names:
            raise CommandError("no relay has pump_id %s" % pump_id)
        duration = _number(params, "duration", 1, _MAX_DURATION_S, required=False)
        return self._relay(names[0], _state(params.get("state")), duration)

    def do_pump_water(self, params):  # seed 001: the irrigation pump, for durationMs or amountMl
        duration_ms = _number(params, "durationMs", 100, _MAX_DURATION_S * 1000, required=False)
        if duration_ms is not None:
            return self._relay("irrigation", True, duration_ms / 1000)
        amount = _number(params, "amountMl", 1, 10000000, required=False)
        if amount is None:
            raise CommandError("missing parameter 'durationMs' or 'amountMl'")
        flow = self.node.cfg["relays"].get("irrigation", {}).get("flow_ml_s", 0)
        if not flow:
            raise CommandError("amountMl needs relays.irrigation.flow_ml_s in the config; send durationMs")
        return self._relay("irrigation", True, amount / flow)

    def do_config(self, params):
        from firmware import reconfig

        try:
            patch = reconfig.patch_of(params)
        except reconfig.PatchError as exc:
            raise CommandError(str(exc))
        return self.node.apply_config(patch)

    def do_reset_config(self, params):
        self.node.reset_config()
        return {"reset": True, "restarting": True}

    def do_calibrate(self, params):
        from firmware.calibration import calibrate  # loaded when a technician calibrates

        node = self.node
        sensor = params.get("sensor", params.get("sensor_type"))  # seed 004: sensor_type
        try:
            return calibrate(node, sensor, params.get("point"), params.get("value"), params.get("temp_c"))
        except ValueError as exc:
            raise CommandError(str(exc))

    def do_ota(self, params):
        from ota_fetch import check_request, stage_steps  # loaded only for an update

        url = params.get("url")
        sha256 = params.get("sha256")
        try:
            check_request(url, sha256)
        except ValueError as exc:
            raise CommandError(str(exc))
        return self._ota_steps(stage_steps(self.node.root, url, sha256, self.node.log))

    def _ota_steps(self, staging):
        manifest = yield from staging
        self.node.restart_soon()  # into the new files; they are kept once they reach the broker
        return {"version": manifest["version"], "files": len(manifest["files"]), "restarting": True}
