"""The fleet's security end to end, under both runtimes: mosquitto configured by
`farmctl provision` (TLS listeners for the devices and the backend, hashed passwords,
per-device ACL) and virtual nodes set up with its files, as a device gets them from
`farmctl deploy`. One broker and one node per runtime serve the whole module."""
import json
import re
import shutil
import time
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest

from backend import Backend
from farmctl.broker import Mosquitto, free_port
from farmctl.cli import main as farmctl_main
from farmsim.nodes import VirtualNode
from farmctl.send import signed
from tls_certs import make_certs

RUNTIMES = ("micropython", "cpython")
NODE_OF = {"micropython": "node-mp", "cpython": "node-cp"}
SPARE = "node-x"  # provisioned, never running: the stolen credentials
WIFI_PASSWORD = "wifi-pass-7c1e9a"
ONLINE_WITHIN_S = 20


def farmctl(capsys, *argv):
    """(exit status, stdout, stderr) of one farmctl command run in this process."""
    status = farmctl_main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


class Fleet:
    """The provision folder, the broker it configures, a node per runtime and a backend."""

    def __init__(self, folder):
        self.folder = folder
        self.pki = folder / "pki"
        self.port = free_port()  # the devices' listener
        self.backend_port = free_port()
        self.broker = self.backend = None
        self.nodes = {}

    def start(self):
        status = farmctl_main(["provision", str(self.pki), "--device", f"{NODE_OF['micropython']},"
                               f"{NODE_OF['cpython']}", "--signing", "--host", "127.0.0.1",
                               "--host", "localhost", "--port", str(self.port), "--backend-port",
                               str(self.backend_port), "--bind", "127.0.0.1"])
        assert status == 0
        farmctl_main(["provision", str(self.pki), "--device", SPARE, "--signing"])
        # log_type debug: mosquitto says "Denied PUBLISH" only at that level.
        self.broker = Mosquitto(self.folder / "broker", port=self.port, listener=False, persistence=False,
                                extra_config=(self.pki / "mosquitto.conf").read_text() + "log_type debug\n")
        self.broker.start()
        account = json.loads((self.pki / "backend.json").read_text())
        self.backend = Backend(SimpleNamespace(host="127.0.0.1", port=self.backend_port), ["farm/#"],
                               client_id="security-backend", tls_ca=account["ca"],
                               auth=(account["user"], account["password"]))
        for runtime in RUNTIMES:
            self.nodes[runtime] = self.make_node(NODE_OF[runtime], runtime).start()
        online = set()

        def all_online(topic, data, retain):
            if topic.endswith("/status") and data and data.get("status") == "online":
                online.add(topic.split("/")[1])
            return online == set(NODE_OF.values())

        self.backend.wait_for(all_online, ONLINE_WITHIN_S)

    def secrets(self, device_id):
        return json.loads((self.pki / "devices" / device_id / "secrets.json").read_text())

    def make_node(self, device_id, runtime, name=None, secrets_patch=None, ca=None):
        """A virtual node with the device's provisioned files (and Wi-Fi); not started."""
        device = self.pki / "devices" / device_id
        config = dict(json.loads((device / "config.json").read_text()), interval_s=1)
        secrets = dict(self.secrets(device_id), wifi={"ssid": "farm", "password": WIFI_PASSWORD})
        for key, value in (secrets_patch or {}).items():
            secrets[key] = dict(secrets.get(key, {}), **value)
        node = VirtualNode(self.folder / (name or f"{device_id}-{runtime}"), config, secrets, runtime=runtime)
        shutil.copyfile(ca or device / "ca.crt", node.root / "ca.crt")
        return node

    def key(self, device_id):
        return self.secrets(device_id)["signing"]["key"]

    def stop(self):
        for node in self.nodes.values():
            node.stop()
        if self.backend is not None:
            self.backend.close()
        if self.broker is not None:
            self.broker.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    running = Fleet(tmp_path_factory.mktemp("security"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


def paho_client(fleet, user, password, client_id, port=None):
    """A connected paho client with those credentials, over TLS, on the devices' listener
    unless port; (client, messages)."""
    messages = []
    connected = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.tls_set(ca_certs=str(fleet.pki / "ca.crt"))
    client.username_pw_set(user, password)
    client.on_message = lambda c, u, m: messages.append((m.topic, m.payload))
    client.on_connect = lambda c, u, f, reason, p: connected.append(reason)
    client.connect("127.0.0.1", port or fleet.port)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert connected and not connected[0].is_failure, connected
    return client, messages


def relay_ons(node):
    return node.console().count("relay irrigation on")


def irrigation(fleet, device_id, state):
    """The device's next reading whose irrigation relay is in state."""
    return fleet.backend.wait_for(lambda t, d, r: t == f"farm/{device_id}/telemetry"
                                  and d["relays"]["irrigation"] == state, 10)


def answer_to(fleet, device_id, command_id, timeout_s=10):
    return fleet.backend.wait_for(lambda t, d, r: t == f"farm/{device_id}/command_response" and d
                                  and d.get("command_id") == command_id, timeout_s)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_and_credentials_carry_telemetry(fleet, runtime):
    device_id = NODE_OF[runtime]
    reading = fleet.backend.wait_for(lambda t, d, r: t == f"farm/{device_id}/telemetry", 10)
    assert reading["device_id"] == device_id and reading["sensors"]["moisture"] is not None
    console = fleet.nodes[runtime].console()
    assert f"mqtt: connected to 127.0.0.1:{fleet.port}" in console
    assert "not authenticated" not in console  # the CA is checked, not skipped


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_device_account_reaches_no_other_devices_topics(fleet, runtime):
    victim = NODE_OF[runtime]
    log_before = len(fleet.broker.log())
    thief, stolen = paho_client(fleet, SPARE, fleet.secrets(SPARE)["mqtt"]["password"], f"thief-{runtime}")
    try:
        for topic in ("telemetry", "commands", "config", "command_response", "status"):
            thief.subscribe(f"farm/{victim}/{topic}", qos=1)
        thief.subscribe("farm/#", qos=1)
        time.sleep(0.3)
        refusals = fleet.nodes[runtime].console().count("refused")
        command = {"command_id": f"thief-{runtime}", "command": "relay",
                   "parameters": {"relay": "irrigation", "state": "on"}}
        for topic, payload in ((f"farm/{victim}/commands", command), ("farm/all/commands", command),
                               (f"farm/{victim}/config", {"interval_s": 5}),
                               (f"farm/{victim}/telemetry", {"device_id": victim, "seq": -1}),
                               (f"farm/{victim}/status", {"status": "offline", "device_id": victim})):
            thief.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
        # What the account may do still works: the link was live while the rest was denied.
        thief.publish(f"farm/{SPARE}/telemetry", json.dumps({"device_id": SPARE, "probe": runtime}),
                      qos=1).wait_for_publish(5)
        fleet.backend.wait_for(lambda t, d, r: t == f"farm/{SPARE}/telemetry" and d.get("probe") == runtime)
        # Two more readings of the victim: whatever was let through would be there by then.
        last = fleet.backend.wait_for(lambda t, d, r: t == f"farm/{victim}/telemetry", 5)
        fleet.backend.wait_for(lambda t, d, r: t == f"farm/{victim}/telemetry" and d["seq"] > last["seq"], 5)
    finally:
        thief.loop_stop()
        thief.disconnect()
    assert stolen == [], stolen[:3]  # not the victim's telemetry, commands, nor anyone's
    seen = [(t, d) for t, d, r in fleet.backend.seen if t.startswith(f"farm/{victim}/")]
    assert not any(d and d.get("seq") == -1 for t, d in seen)  # no forged reading
    assert not any(d and d.get("command_id") == f"thief-{runtime}" for t, d in seen)  # no answer: not delivered
    assert fleet.nodes[runtime].console().count("refused") == refusals  # the node saw nothing
    assert not any(t.endswith("/status") and d and d.get("status") == "offline" for t, d in seen)
    # The devices' listener names the client by its user, whatever client id it asked for.
    denied = [line for line in fleet.broker.log()[log_before:].splitlines() if f"Denied PUBLISH from {SPARE} " in line]
    for topic in ("commands", "config", "telemetry", "status"):
        assert any(f"'farm/{victim}/{topic}'" in line for line in denied), (topic, denied)
    assert any("'farm/all/commands'" in line for line in denied)


def attempt(fleet, port, user, password, client_id):
    """One CONNECT over TLS, never retried (paho's loop thread would reconnect and fight
    back); (client, the broker's answer or None). The connection is left open."""
    answers = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.tls_set(ca_certs=str(fleet.pki / "ca.crt"))
    client.username_pw_set(user, password)
    client.on_connect = lambda c, u, f, reason, p: answers.append(reason)
    client.connect("127.0.0.1", port)
    deadline = time.monotonic() + 5
    while not answers and time.monotonic() < deadline and client.loop(timeout=0.1) == mqtt.MQTT_ERR_SUCCESS:
        pass
    return client, answers[0] if answers else None


def retained_statuses(fleet):
    """{device_id: status} of the retained status messages, as a backend that starts now sees them."""
    account = json.loads((fleet.pki / "backend.json").read_text())
    client, messages = paho_client(fleet, account["user"], account["password"], "status-reader", fleet.backend_port)
    try:
        client.subscribe("farm/+/status", qos=1)
        deadline = time.monotonic() + 5
        while len(messages) < len(RUNTIMES) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    return {topic.split("/")[1]: json.loads(payload)["status"] for topic, payload in messages}


def test_a_devices_credentials_cannot_take_another_devices_client_id(fleet):
    # Client ids are global across listeners and a CONNECT with one in use disconnects its
    # holder: node-x's credentials ask for each node's client id on both listeners.
    password = fleet.secrets(SPARE)["mqtt"]["password"]
    connections = {runtime: fleet.nodes[runtime].console().count("mqtt: connected") for runtime in RUNTIMES}
    log_before = len(fleet.broker.log())
    seen_before = len(fleet.backend.seen)
    last = {victim: fleet.backend.wait_for(lambda t, d, r: t == f"farm/{victim}/telemetry", 5)
            for victim in NODE_OF.values()}
    attempts = []
    try:
        for victim in NODE_OF.values():
            for port in (fleet.port, fleet.backend_port):
                attempts.append((port, victim) + attempt(fleet, port, SPARE, password, victim))
        for port, victim, client, answer in attempts:
            assert answer is not None, (port, victim)
            if port == fleet.port:  # let in, under its own name
                assert not answer.is_failure, (victim, answer)
            else:  # the backend's listener has no device accounts
                assert str(answer) == "Not authorized", (victim, answer)
        # Two more readings of each node, on the connection it had before.
        for victim, reading in last.items():
            newer = fleet.backend.wait_for(lambda t, d, r: t == f"farm/{victim}/telemetry"
                                           and d["seq"] > reading["seq"], 5)
            fleet.backend.wait_for(lambda t, d, r: t == f"farm/{victim}/telemetry" and d["seq"] > newer["seq"], 5)
    finally:
        for port, victim, client, answer in attempts:
            client.disconnect()
            client.loop(timeout=0.1)
    seen = fleet.backend.seen[seen_before:]
    assert not any(t.endswith("/status") and d and d.get("status") == "offline" for t, d, r in seen), seen
    assert retained_statuses(fleet) == {victim: "online" for victim in NODE_OF.values()}
    for runtime in RUNTIMES:
        assert fleet.nodes[runtime].console().count("mqtt: connected") == connections[runtime]
    log = fleet.broker.log()[log_before:]
    assert log.count(f" as {SPARE} (") == len(RUNTIMES), log  # each attempt got the name of its account
    for victim in NODE_OF.values():
        assert f" as {victim} (" not in log, log  # neither the thief nor the node (again) under its id


def test_watch_takes_the_provision_folder(fleet, capsys):
    status, out, err = farmctl(capsys, "watch", "--provision", fleet.pki, "--once", "3")  # 3 readings
    assert status == 0, err
    for device_id in NODE_OF.values():
        row = next((line for line in out.splitlines() if line.startswith(device_id + " ")), "")
        assert " online " in row and re.search(r"moist%=\d", row), out
    # Another account instead of the folder's: a device's, which the backend listener refuses.
    status, out, err = farmctl(capsys, "watch", "--provision", fleet.pki, "--user", SPARE,
                               "--password=" + fleet.secrets(SPARE)["mqtt"]["password"], "--once", "1")
    assert status == 2 and f":{fleet.backend_port} refused the connection: Not authorized" in err, err


def failed_attempts(node):
    return [line for line in node.console().splitlines() if "mqtt: cannot connect" in line]


def test_wrong_password_and_untrusted_certificate_give_clear_errors_and_backoff(fleet):
    stranger = make_certs(fleet.folder / "stranger-pki", name="stranger")
    password = fleet.secrets(SPARE)["mqtt"]["password"]
    cases = {}
    for runtime in RUNTIMES:
        cases[("password", runtime)] = fleet.make_node(SPARE, runtime, f"wrong-password-{runtime}",
                                                       {"mqtt": {"password": "Wr0ng-" + password[6:]}})
        cases[("certificate", runtime)] = fleet.make_node(SPARE, runtime, f"stranger-ca-{runtime}",
                                                          ca=stranger["ca"])
    for node in cases.values():
        node.start()
    try:
        for (case, runtime), node in cases.items():
            deadline = time.monotonic() + 40  # a loaded machine starts processes slowly
            while len(failed_attempts(node)) < 3:
                assert node.running() and time.monotonic() < deadline, (case, runtime, node.console())
                time.sleep(0.2)
            console = node.console()
            attempts = failed_attempts(node)
            # Backoff: 1 s doubling, +-20 % jitter, so each wait is longer than the last.
            waits = [int(line.split("next try in ")[1].split()[0]) for line in attempts[:3]]
            assert waits[0] < waits[1] < waits[2], (case, runtime, attempts)
            assert "mqtt: connected" not in console
            if case == "password":
                assert "not authorised" in attempts[0], (runtime, attempts[0])
            else:  # CPython: "certificate verify failed"; mbedtls: "not correctly signed by the trusted CA"
                assert "TLS handshake failed" in attempts[0] and "certificate" in attempts[0].lower(), \
                    (runtime, attempts[0])
            assert password not in console and password[6:] not in console
    finally:
        for node in cases.values():
            node.stop()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_only_commands_signed_with_the_devices_key_move_a_relay(fleet, runtime, capsys):
    device_id = NODE_OF[runtime]
    node = fleet.nodes[runtime]
    link = ["--provision", fleet.pki]  # its backend listener, CA, account and the device's key
    status, out, err = farmctl(capsys, "send", device_id, "relay", "relay=irrigation", "state=on",
                               "duration_s=1", *link)
    assert status == 0 and out.startswith("ok relay"), (out, err)
    irrigation(fleet, device_id, 1)
    irrigation(fleet, device_id, 0)  # off after its duration_s
    ons = relay_ons(node)
    assert ons >= 1

    account = json.loads((fleet.pki / "backend.json").read_text())
    sender, _ = paho_client(fleet, account["user"], account["password"], f"sender-{runtime}", fleet.backend_port)
    now = int(time.time())
    relay_on = {"command": "relay", "parameters": {"relay": "irrigation", "state": "on", "duration_s": 1}}
    captured = signed(dict(relay_on), fleet.key(device_id), device_id, ts=now)  # no command_id
    cases = [
        ("unsigned", dict(relay_on, command_id=f"u-{runtime}"), "signature: missing"),
        ("another key", signed(dict(relay_on, command_id=f"k-{runtime}"), fleet.key(SPARE), device_id, ts=now),
         "signature: bad"),
        ("old", signed(dict(relay_on, command_id=f"o-{runtime}"), fleet.key(device_id), device_id, ts=now - 600),
         "signature: expired"),
    ]
    try:
        sender.publish(f"farm/{device_id}/commands", json.dumps(captured), qos=1)
        irrigation(fleet, device_id, 1)
        off = irrigation(fleet, device_id, 0)
        assert relay_ons(node) == ons + 1
        for name, message, reason in cases:
            sender.publish(f"farm/{device_id}/commands", json.dumps(message), qos=1)
            answer = answer_to(fleet, device_id, json.loads(message.get("signed", "{}")).get("command_id")
                               or message.get("command_id"))
            assert answer["success"] is False and answer["error"].startswith(reason), (name, answer)
        sender.publish(f"farm/{device_id}/commands", json.dumps(captured), qos=1)  # the replay
        replayed = fleet.backend.wait_for(lambda t, d, r: t == f"farm/{device_id}/command_response"
                                          and d and "replayed" in (d.get("error") or ""))
        assert replayed["success"] is False
        # A reading after the refusals: the relay never moved.
        last = fleet.backend.wait_for(lambda t, d, r: t == f"farm/{device_id}/telemetry", 5)
        fleet.backend.wait_for(lambda t, d, r: t == f"farm/{device_id}/telemetry" and d["seq"] > last["seq"], 5)
    finally:
        sender.loop_stop()
        sender.disconnect()
    assert relay_ons(node) == ons + 1
    assert not any(t == f"farm/{device_id}/telemetry" and d["relays"]["irrigation"] == 1 and d["seq"] > off["seq"]
                   for t, d, r in fleet.backend.seen)
    console = node.console()
    for reason in ("signature: missing", "signature: bad", "signature: expired", "signature: replayed"):
        assert reason in console, reason  # the console says why, too


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_secrets_never_leave_the_device(fleet, runtime, capsys):
    device_id = NODE_OF[runtime]
    device_files = fleet.pki / "devices" / device_id
    link = ["--provision", fleet.pki, "--json"]
    answers = {}
    for command, key in (("get_config", []), ("status", ["--key-file", device_files / "secrets.json"])):
        status, out, err = farmctl(capsys, "send", device_id, command, *link, *key)
        assert status == 0, (out, err)
        answers[command] = json.loads(out)
    shown = answers["get_config"]["response"]
    assert shown["mqtt"]["user"] == device_id and shown["signing"]["window_s"] == 120  # the config, less secrets
    assert "password" not in shown["mqtt"] and "password" not in shown["wifi"] and "key" not in shown["signing"]
    node = fleet.nodes[runtime]
    flash_log = (node.root / "log.txt").read_text()
    assert "boot:" in flash_log  # the flash log is where it should be
    # A reading of its own to search (under xdist this may be the first test on the fleet).
    fleet.backend.wait_for(lambda t, d, r: t == f"farm/{device_id}/telemetry", 5)
    published = json.dumps([(t, d) for t, d, r in fleet.backend.seen if t.startswith(f"farm/{device_id}/")])
    assert f"farm/{device_id}/telemetry" in published and f"farm/{device_id}/status" in published
    secrets = fleet.secrets(device_id)
    for secret in (WIFI_PASSWORD, secrets["mqtt"]["password"], secrets["signing"]["key"]):
        for name, text in (("answers", json.dumps(answers)), ("published", published),
                           ("console", node.console()), ("flash log", flash_log)):
            assert secret not in text, f"a secret in the {name}"
