# Commands: every backend dialect is turned into one canonical form
# (command_id, command, parameters), checked, executed once, and answered exactly once.
# A repeated command_id (a QoS 1 redelivery) is not run again: the last answers are kept
# whole and sent again; older ones are answered from what is kept of them (the outcome),
# in storage allocated once (Answered).
# Commands that change nothing (get_config, status, ping) just run again.
# Bad input of any kind is answered with success false and an error that says what was
# wrong; it never moves a relay.
# The commands a node runs all the time live here; the rare ones (config, calibration,
# OTA...) in firmware/rare_commands.py, loaded for each use and unloaded after.
import json
import sys
from hashlib import sha256

from firmware import messages, reconfigure, unload
from firmware.errors import CommandError, ConfigError, Refused
from firmware.params import number, shown, state, valid_id
from micropython import const

ALIASES = (("send_now", "read"), ("calibrate_sensor", "calibrate"), ("reboot", "restart"),
           ("ota_update", "ota"))
# The do_ methods below, and the commands of firmware/rare_commands.py. A name is looked
# up as an attribute only once it is known to be one of these: MicroPython interns every
# name getattr() is given, for good, so a stream of made-up commands would fill the heap.
_COMMON = const(("read", "ping", "status", "set_interval", "restart", "relay"))
_RARE = const(("config", "reset_config", "calibrate", "ota", "get_config", "pump_water", "set_pump"))
_RARE_MODULE = const("firmware.rare_commands")
# Answered commands remembered for redeliveries (seldom older than a few commands): the
# latest _WHOLE with their answer whole (a longer one than _SLOT bytes keeps its outcome
# only), _KEPT with their outcome.
_KEPT = const(32)
_WHOLE = const(4)
_SLOT = const(256)
_REFUSED = const(1)
_SUCCEEDED = const(2)
# Commands that change nothing: a redelivery runs them again (a fresh answer) rather
# than keeping their answers, a whole config among them, in RAM.
_NO_EFFECT = const(("get_config", "status", "ping"))
MAX_DURATION_S = 86400


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
    for alias, name in ALIASES:
        if command == alias:
            command = name
    return command_id, command, params, dialect


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


def _digest(command_id):
    """Two 30-bit numbers from command_id's SHA-256: small ints, kept without allocation.
    A new id passes for one of the _KEPT remembered with a chance of about 2^-55."""
    digest = sha256(command_id.encode()).digest()
    return (int.from_bytes(digest[:4], "big") & 0x3FFFFFFF, int.from_bytes(digest[4:8], "big") & 0x3FFFFFFF)


class Answered:
    """The commands answered lately, in storage allocated once: their answers come and
    go on every command, and long-lived strings made each time would leave holes in
    the heap around the short-lived ones."""

    def __init__(self):
        self._high = [0] * _KEPT  # the two halves of each command_id's digest
        self._low = [0] * _KEPT
        self._commands = [None] * _KEPT  # command names (interned: no allocation)
        self._outcomes = bytearray(_KEPT)  # 0: free, _REFUSED, _SUCCEEDED
        self._answers = bytearray(_WHOLE * _SLOT)
        self._lengths = [0] * _WHOLE  # of the answer in each slot; 0: none
        self._owners = [-1] * _WHOLE  # the entry whose answer a slot holds
        self._next = 0

    def remember(self, command_id, command, success, text):
        """Keep command_id's outcome, and its answer (JSON text) whole if it fits a slot."""
        i = self._next
        self._next = (i + 1) % _KEPT
        self._high[i], self._low[i] = _digest(command_id)
        self._commands[i] = command
        self._outcomes[i] = _SUCCEEDED if success else _REFUSED
        slot = i % _WHOLE
        try:
            data = memoryview(text)  # MicroPython: the str's own UTF-8 bytes, no copy
        except TypeError:
            data = text.encode()  # CPython
        fits = len(data) <= _SLOT
        if fits:
            self._answers[slot * _SLOT:slot * _SLOT + len(data)] = data
        self._lengths[slot] = len(data) if fits else 0
        self._owners[slot] = i

    def find(self, command_id):
        """(command, succeeded, whole answer text or None) of an answered command_id, or None."""
        high, low = _digest(command_id)
        for i in range(_KEPT):
            if self._outcomes[i] and self._high[i] == high and self._low[i] == low:
                slot = i % _WHOLE
                text = None
                if self._owners[slot] == i and self._lengths[slot]:
                    text = bytes(self._answers[slot * _SLOT:slot * _SLOT + self._lengths[slot]])
                return self._commands[i], self._outcomes[i] == _SUCCEEDED, text
        return None


class Dispatcher:
    """node: what commands act on (see Node); it sends the answers (send_response)."""

    def __init__(self, node):
        self.node = node
        self.answered = Answered()
        self._counter = 0
        self.job = None  # a command that takes time: (steps, command_id, command, dialect)
        self.verifier = None  # firmware.signing's, made when the first signed message comes

    def handle(self, payload, topic_kind="commands"):
        """Answer one incoming message (a command, or a config when topic_kind is
        "config"); returns the answer dict (None if it is a repeat or still running)."""
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
        if command_id is not None and self._answer_again(command_id, dialect):
            return None
        if self.job is not None and command_id is not None and command_id == self.job[1]:
            return None  # a redelivery of the command still running: its answer will come
        if repeat:  # signed and accepted before, and not remembered as answered: a replay
            return self._answer(command_id, None, dialect, False, None,
                                "signature: replayed: this signed message was taken before", False)
        if command_id is None:
            self._counter += 1
            command_id = "%s-%d" % (self.node.boot_id, self._counter)
        return self._run(command_id, command, params, dialect)

    def _run(self, command_id, command, params, dialect):
        rare = command in _RARE
        if not rare and command not in _COMMON:  # the unknown name is not echoed in "command": it may not be valid text
            return self._answer(command_id, None, dialect, False, None, "unknown command %s" % shown(command))
        try:
            if rare:
                handler = getattr(__import__(_RARE_MODULE, None, None, ("config",), 0), command)
                result = handler(self.node, params)
            else:
                result = getattr(self, "do_" + command)(params)
        except (CommandError, Refused) as exc:
            return self._answer(command_id, command, dialect, False, None, str(exc))
        except ConfigError as exc:
            return self._answer(command_id, command, dialect, False, None, "config refused: %s" % exc)
        except Exception as exc:  # a bug or no memory: answered, so the backend is not left waiting
            self.node.log("command %s failed: %s" % (command, _describe(exc)))
            return self._answer(command_id, command, dialect, False, None, "internal error: %s" % _describe(exc))
        finally:
            if rare and self.job is None:
                self._unload_rare()
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
            self._end_job()
            self._answer(command_id, command, dialect, True, done.value, None)
        except (CommandError, Refused, ValueError, OSError) as exc:
            self._end_job()
            self._answer(command_id, command, dialect, False, None, str(exc) or _describe(exc))
        except Exception as exc:  # a bug: answered, so the backend is not left waiting
            self._end_job()
            self._answer(command_id, command, dialect, False, None, "internal error: %s" % _describe(exc))

    def _end_job(self):
        self.job = None
        self._unload_rare()

    def _unload_rare(self):
        rare = sys.modules.get(_RARE_MODULE)
        if rare is not None:
            unload(_RARE_MODULE, *rare.LOADS)

    # --- answers, and what is kept of them ---

    def _answer(self, command_id, command, dialect, success, response, error, remember=True):
        answer = {"command_id": command_id, "device_id": self.node.link.device_id, "command": command,
                  "success": success, "response": response, "error": error, "ts": self.node.clock.iso()}
        text = None
        if command_id is not None and remember and command not in _NO_EFFECT:
            text = json.dumps(answer)  # kept, and sent as it is where the backend takes it so
            self.answered.remember(command_id, command, success, text)
        messages.send_response(self.node, answer, dialect, text)
        if not success:
            self.node.log("command %s refused: %s" % (shown(command), error))
        return answer

    def _answer_again(self, command_id, dialect):
        """Answer a redelivery of an answered command as it was answered (its first
        answer again, or from its outcome); False if command_id is not remembered."""
        kept = self.answered.find(command_id)
        if kept is None:
            return False
        command, succeeded, text = kept
        if text is not None:
            messages.send_response(self.node, json.loads(text), dialect, text)  # its ts too: when it ran
            return True
        messages.send_response(self.node, {"command_id": command_id, "device_id": self.node.link.device_id,
                                           "command": command, "success": succeeded, "response": {"repeat": True},
                                           "error": None if succeeded else "refused the first time it came",
                                           "ts": self.node.clock.iso()}, dialect)
        return True

    # --- the commands a node runs all the time (PROTOCOL.md, Commands) ---

    def do_read(self, params):
        self.node.read_now()
        return {"queued": True}

    def do_ping(self, params):
        return {"pong": True, "uptime_s": self.node.uptime_s()}

    def do_status(self, params):
        return messages.status(self.node, self.node.link, "online", {})

    def do_set_interval(self, params):
        if "intervalMs" in params and "interval_s" not in params:
            seconds = number(params, "intervalMs", 1000, 86400000) / 1000
        else:
            seconds = number(params, "interval_s", 1, 86400)
        reconfigure(self.node, "set_interval", int(seconds))
        return {"interval_s": int(seconds)}

    def do_restart(self, params):
        self.node.restart_soon()
        return {"restarting": True}

    def do_relay(self, params):
        on = state(params.get("state"))
        duration = number(params, "duration_s", 0.1, MAX_DURATION_S, required=False)
        return self.relay(params.get("relay"), on, duration)

    def relay(self, name, on, duration_s):
        relays = self.node.relays
        if type(name) is not str or name not in relays.relays:
            raise CommandError("unknown relay %s (have: %s)" % (shown(name), ", ".join(sorted(relays.relays))))
        off_in = relays.set(name, on, duration_s)
        return {"relay": name, "state": 1 if on else 0, "off_in_s": off_in}
