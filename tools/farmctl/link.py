"""The MQTT link of farmctl's backend-side tools (send, watch, sim): where the broker
is and how to get in (TLS, an account, or a `farmctl provision` folder), the options
that name the devices' topics, and a paho client connected with TCP_NODELAY and a
bounded wait for its CONNACK."""
import argparse
import json
import os
import socket
import time
import uuid
from pathlib import Path

from firmware.profiles import NAMES as PROFILES

DEFAULT_BROKER = "localhost:1883"
CONNECT_TIMEOUT_S = 5.0


class BrokerError(Exception):
    """The broker cannot be reached, refused us or dropped us, or the options that say
    how to reach it are wrong; the message is one line for the user."""


def parse_broker(text):
    """(host, port) from HOST:PORT; an argparse type, so a bad value is a usage error."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def add_link_options(parser):
    """The options that say where the devices are: broker and how to get in, profile and
    topic placeholders."""
    parser.add_argument("--broker", metavar="HOST:PORT", type=parse_broker,
                        help="MQTT broker (default: the backend listener of --provision, else $FARMCTL_BROKER, "
                             f"else {DEFAULT_BROKER})")
    parser.add_argument("--provision", metavar="DIR",
                        help="farmctl provision's folder: its backend listener, CA and account (backend.json)")
    parser.add_argument("--ca", metavar="FILE", help="TLS, the broker's certificate checked against this CA")
    parser.add_argument("--tls", action="store_true", help="TLS, the broker's certificate checked against the "
                                                           "system's CAs")
    parser.add_argument("--user", metavar="NAME", help="the broker account (instead of --provision's)")
    parser.add_argument("--password", metavar="TEXT",
                        help="its password ($FARMCTL_PASSWORD keeps it out of the process list)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="farmnode",
                        help="the backend profile the devices use (default farmnode)")
    parser.add_argument("--prefix", default="farm", help="the topics' {prefix} (default farm)")
    parser.add_argument("--farm", metavar="ID", help="the topics' {farm_id} (profile smartfarm)")
    parser.add_argument("--org", metavar="ID", help="the topics' {org_id} (profile dese)")


def broker_link(args):
    """(address, prepare) from the command line: the broker's (host, port), and
    prepare(client) setting TLS and the account on a paho client, or None for neither.
    --broker, --ca and --user/--password take precedence over --provision's."""
    account = _provision_account(args.provision) if args.provision else {}
    if args.broker:
        address = args.broker
    elif account:
        address = _parse(account.get("broker"), f"{args.provision}/backend.json's broker")
    else:
        address = _parse(os.environ.get("FARMCTL_BROKER") or DEFAULT_BROKER, "$FARMCTL_BROKER")
    ca = args.ca or account.get("ca")
    if ca and not Path(ca).is_file():
        raise BrokerError(f"the CA file {ca} does not exist")
    password = args.password if args.password is not None else os.environ.get("FARMCTL_PASSWORD")
    if args.user:
        user = args.user
    elif args.password is not None:
        raise BrokerError("--password needs --user")
    else:
        user, password = account.get("user"), account.get("password")
    tls = bool(ca) or args.tls
    if not tls and not user:
        return address, None

    def prepare(client):
        if tls:
            client.tls_set(ca_certs=ca)  # None: the system's CAs; the host name is checked either way
        if user:
            client.username_pw_set(user, password)

    return address, prepare


def _provision_account(folder):
    """backend.json of a farmctl provision folder: user, password, ca, broker."""
    path = Path(folder) / "backend.json"
    try:
        account = json.loads(path.read_text())
    except FileNotFoundError:
        raise BrokerError(f"{folder} is not a farmctl provision folder (no {path})") from None
    except (OSError, ValueError) as exc:
        raise BrokerError(f"{path}: {exc}") from None
    if not isinstance(account, dict) or not all(isinstance(account.get(k), str) for k in ("user", "password")):
        raise BrokerError(f"{path}: no backend account in it (user, password)")
    return account


def _parse(text, where):
    if not isinstance(text, str):
        raise BrokerError(f"{where} must be HOST:PORT, got {text!r}")
    try:
        return parse_broker(text)
    except argparse.ArgumentTypeError as exc:
        raise BrokerError(f"{where} {exc}") from None


def topic_values(args):
    """The topic placeholders the command line fixes (the device's is the caller's)."""
    return {"prefix": args.prefix, "farm_id": args.farm, "org_id": args.org}


def _no_delay(client, userdata, sock):
    # paho leaves Nagle on: a publish right after a small packet would wait for the
    # peer's delayed ACK (~40 ms).
    if hasattr(sock, "setsockopt"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def client_id(tool):
    """A client id of its own: two farmctl tools on one broker must not take each other's session."""
    return f"farmctl-{tool}-{uuid.uuid4().hex[:8]}"


def run_loop_until(client, done, deadline):
    """Serve paho's network loop in this thread until done() or the deadline (monotonic);
    returns done()."""
    import paho.mqtt.client as mqtt

    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        rc = client.loop(timeout=min(left, 0.1))
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise BrokerError(f"lost the connection to the broker ({mqtt.error_string(rc)})")
    return True


def connect(address, name, on_connect=None, on_message=None, timeout_s=CONNECT_TIMEOUT_S, prepare=None,
            persistent=False):
    """A paho client connected to the broker at address (host, port), its CONNACK received.
    on_connect(client) runs on every (re)connection, for the subscriptions; prepare(client)
    once before connecting (TLS, credentials); persistent: a session the broker keeps
    across this client's reconnections (its QoS 1 messages wait for it)."""
    import paho.mqtt.client as mqtt

    host, port = address
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id(name), clean_session=not persistent)
    client.on_socket_open = _no_delay
    client.on_message = on_message
    answers = []

    def connected(client, userdata, flags, reason, properties):
        answers.append(reason)
        if on_connect is not None and not reason.is_failure:
            on_connect(client)

    client.on_connect = connected
    client.connect_timeout = timeout_s
    if prepare is not None:
        prepare(client)
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise BrokerError(f"cannot reach the broker at {host}:{port}: {exc.strerror or exc}") from None
    try:
        run_loop_until(client, lambda: answers, time.monotonic() + timeout_s)
    except BrokerError:
        if not answers:  # a refused CONNACK ends the connection too: that is said below
            _close_socket(client)
            raise
    if not answers or answers[0].is_failure:
        _close_socket(client)
        if not answers:
            raise BrokerError(f"the broker at {host}:{port} did not answer within {timeout_s:g} s")
        raise BrokerError(f"the broker at {host}:{port} refused the connection: {answers[0]}")
    return client


def _close_socket(client):
    sock = client.socket()
    if sock is not None:
        sock.close()
