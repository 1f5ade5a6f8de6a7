"""`farmctl send DEVICE COMMAND [key=value ...]`: one command to one device, and its answer.

The command goes out in the canonical form of PROTOCOL.md, {"command_id", "command",
"parameters"}, QoS 1, on the device's commands topic for --profile. Each key=value
is a parameter: a value that parses as JSON is taken as JSON (duration_s=600,
on=true, x=null, limits={"max": 5}), anything else as a string (state=on,
relay=irrigation); key= is the empty string.

Exit status: 0 the device answered success, 1 it answered failure, 2 no answer
within --wait seconds, the broker cannot be reached, or a usage error.

Profiles without a response topic (plantnanny: the device logs refusals instead):
the command is published, the broker's PUBACK awaited, and the exit status is 0;
nothing can be said of the outcome. --wait 0 does the same with any profile.
Profile harit has no command topic: its devices take no commands. Profile smartfarm
sends to the farm (--farm); the answer is taken from DEVICE.

A device with a signing key takes only signed commands (PROTOCOL.md, Signed commands):
--key-file FILE (the key in hex, or the device's secrets.json) or --key HEX signs it.
--provision DIR (farmctl provision's folder) connects to its backend listener as its
backend account over TLS, and signs with the device's key when it has one. Another
broker's TLS and account: --ca FILE (or --tls), --user NAME, --password or
$FARMCTL_PASSWORD."""
import argparse
import json
import re
import sys
import time
import uuid
from pathlib import Path

from farmctl.link import BrokerError, add_link_options, broker_link, connect, run_loop_until, topic_values
from firmware.profiles import Profile, topic_templates

DEFAULT_WAIT_S = 10.0
ACK_TIMEOUT_S = 5.0  # the broker's SUBACK and PUBACK (a broker, not a device: it answers at once)
PLACEHOLDER = re.compile(r"{(\w+)}")
OPTION_OF = {"farm_id": "--farm", "org_id": "--org", "prefix": "--prefix"}
HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


class Usage(Exception):
    """The command line asks for something that cannot be sent."""


def parse_parameter(text):
    """("key", value) from key=value: JSON when the value parses as JSON, a string otherwise."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"parameters are key=value, got {text!r}")
    try:
        # NaN and Infinity are Python's, not JSON's: the device could not parse them back.
        value = json.loads(raw, parse_constant=_not_json)
    except ValueError:
        value = raw
    return key, value


def _not_json(name):
    raise ValueError(f"{name} is not JSON")


def build_command(command, pairs, command_id):
    """The canonical command; a key given twice is a usage error (one would be lost)."""
    parameters = {}
    for key, value in pairs:
        if key in parameters:
            raise Usage(f"parameter {key!r} given twice")
        parameters[key] = value
    return {"command_id": command_id, "command": command, "parameters": parameters}


def check_command_id(text):
    from firmware.commands import valid_id

    if not valid_id(text):
        raise argparse.ArgumentTypeError("must be 1 to 64 printable ASCII characters")
    return text


def device_topics(args):
    """The device's Profile, after checking that every placeholder of the topics
    we use has a value on the command line."""
    spec = topic_templates(args.profile)
    if "commands" not in spec:
        raise Usage(f"profile {args.profile} has no command topic: its devices take no commands")
    values = dict(topic_values(args), device_id=args.device)
    for key in ("commands", "command_response"):
        for name in PLACEHOLDER.findall(spec.get(key, "")):
            if not values.get(name):
                raise Usage(f"profile {args.profile}'s topic {spec[key]} needs {OPTION_OF.get(name, name)}")
    return Profile(args.profile, values)


def signed(message, key, device_id, kind="command", ts=None):
    """The envelope of PROTOCOL.md's Signed commands: the message's JSON text (ASCII),
    the time, and the signature the device checks, made by the firmware's own code."""
    from firmware.signing import sign

    text = json.dumps(message)  # ensure_ascii: the device checks the very characters signed
    ts = int(time.time()) if ts is None else ts
    return {"signed": text, "ts": ts, "sig": sign(bytes.fromhex(key), device_id, kind, ts, text)}


def read_key(path):
    """A signing key from a file: the hex key alone, or a secrets.json with signing.key."""
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise Usage(f"{path}: {exc.strerror or exc}") from None
    if text.startswith("{"):
        try:
            text = json.loads(text).get("signing", {}).get("key", "")
        except (ValueError, AttributeError):
            raise Usage(f"{path}: neither a hex key nor a secrets.json with signing.key") from None
    if not HEX_KEY.fullmatch(text):
        raise Usage(f"{path}: no signing key in it (64 hex digits)")
    return text


def signing_key(args):
    """The key to sign with, or None: --key, --key-file, or the device's in --provision."""
    if args.key is not None:
        if not HEX_KEY.fullmatch(args.key):
            raise Usage("--key must be 64 hex digits")
        return args.key
    if args.key_file:
        return read_key(args.key_file)
    if args.provision:
        secrets_path = Path(args.provision) / "devices" / args.device / "secrets.json"
        if not secrets_path.exists():
            raise Usage(f"{args.device} is not in {args.provision} (no {secrets_path})")
        try:
            return read_key(secrets_path)
        except Usage:
            return None  # a device without a key takes unsigned commands
    return None


def describe(answer, command):
    """`ok ping: {...}` or `FAILED relay: <error>`."""
    name = answer.get("command") or command
    if answer.get("success") is True:
        return f"ok {name}: {json.dumps(answer.get('response'))}"
    return f"FAILED {name}: {answer.get('error')}"


class Exchange:
    """One command out, its answer back, on a connection served in this thread."""

    def __init__(self, broker, response_topic, prepare=None):
        self.response_topic = response_topic
        self.messages = []  # (payload bytes, parsed dict) on the response topic
        self.subscribed = False
        self.client = connect(broker, "send", on_message=self._on_message, prepare=prepare)
        self.client.on_subscribe = self._on_subscribe

    def _on_message(self, client, userdata, msg):
        try:
            data = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(data, dict):
            self.messages.append((msg.payload, data))

    def _on_subscribe(self, client, userdata, mid, reasons, properties):
        self.subscribed = True

    def listen(self):
        """Subscribe to the responses and wait for the SUBACK: an answer that comes
        before the subscription is in place would be lost."""
        self.client.subscribe(self.response_topic, qos=1)
        if not run_loop_until(self.client, lambda: self.subscribed, time.monotonic() + ACK_TIMEOUT_S):
            raise BrokerError(f"the broker did not confirm the subscription to {self.response_topic}")

    def publish(self, topic, payload):
        info = self.client.publish(topic, json.dumps(payload), qos=1)
        if not run_loop_until(self.client, info.is_published, time.monotonic() + ACK_TIMEOUT_S):
            raise BrokerError(f"the broker did not acknowledge the publish to {topic}")

    def answer(self, device, command_id, deadline):
        """(raw, parsed) of device's response with this command_id, or None at the deadline.
        Other messages there (other answers, telemetry, a retained status) are passed over."""
        def ours(data):
            return data.get("command_id") == command_id and data.get("device_id", device) == device

        def find():
            return next((m for m in self.messages if ours(m[1])), None)

        run_loop_until(self.client, lambda: find() is not None, deadline)
        return find()

    def close(self):
        self.client.disconnect()
        self.client.loop(timeout=0.1)  # let the DISCONNECT leave


def send(args):
    topics = device_topics(args).topics
    message = build_command(args.command, args.parameters, args.id or f"farmctl-{uuid.uuid4().hex[:12]}")
    key = signing_key(args)
    response_topic = topics["command_response"] if args.wait > 0 else None
    address, prepare = broker_link(args)
    exchange = Exchange(address, response_topic, prepare)
    try:
        if response_topic is not None:
            exchange.listen()
        started = time.monotonic()
        # Signed just before it leaves: the device takes it within its time window.
        exchange.publish(topics["commands"], message if key is None else signed(message, key, args.device))
        if response_topic is None:
            return published_only(args, message, topics["commands"])
        answer = exchange.answer(args.device, message["command_id"], started + args.wait)
    finally:
        exchange.close()
    if answer is None:
        print(f"farmctl send: no response from {args.device} to {args.command} (command_id "
              f"{message['command_id']}) on {response_topic} within {args.wait:g} s", file=sys.stderr)
        return 2
    raw, data = answer
    print(raw.decode("utf-8", "replace") if args.json else describe(data, args.command))
    return 0 if data.get("success") is True else 1


def published_only(args, message, topic):
    why = ("--wait 0" if args.wait <= 0 else
           f"profile {args.profile} has no response topic (the device logs refusals)")
    print(f"sent {args.command} (command_id {message['command_id']}) to {topic}; "
          f"no response awaited: {why}")
    return 0


def register(sub):
    parser = sub.add_parser("send", help="send one command to a device and print its answer",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("device", metavar="DEVICE", help="the device_id")
    parser.add_argument("command", metavar="COMMAND", help="ping, read, relay, status, ... (PROTOCOL.md)")
    parser.add_argument("parameters", metavar="key=value", nargs="*", type=parse_parameter,
                        help="the command's parameters")
    parser.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, metavar="S",
                        help=f"seconds to wait for the answer (default {DEFAULT_WAIT_S:g}; 0: do not wait)")
    parser.add_argument("--id", type=check_command_id, metavar="COMMAND_ID",
                        help="the command_id (default: a new one)")
    parser.add_argument("--json", action="store_true", help="print the answer as the device sent it")
    parser.add_argument("--key-file", metavar="FILE",
                        help="sign with the device's key: a file holding it in hex, or its secrets.json")
    parser.add_argument("--key", metavar="HEX", help="sign with this key (64 hex digits; --key-file keeps it "
                                                     "out of the process list)")
    add_link_options(parser)
    parser.set_defaults(run=run)


def run(args):
    try:
        return send(args)
    except (Usage, BrokerError) as exc:
        print(f"farmctl send: {exc}", file=sys.stderr)
        return 2
