"""`farmctl send` and `farmctl watch` against mosquitto and a virtual node running the
real firmware, called in-process through farmctl.cli.main."""
import argparse
import hashlib
import hmac
import json
import re
import time
from datetime import datetime, timezone

import pytest

from backend import Backend
from farmctl.broker import Mosquitto, free_port
from farmctl.cli import main
from farmctl.send import build_command, parse_parameter, signed
from farmctl.watch import Fleet

ONLINE_WITHIN_S = 20


def started_node(broker, nodes, runtime="cpython"):
    """node-t1, once its retained status says online."""
    node = nodes(broker, runtime)
    backend = Backend(broker, ["farm/node-t1/status"], client_id="test-waiter")
    try:
        backend.wait_for(lambda t, d, r: d and d.get("status") == "online", ONLINE_WITHIN_S)
    finally:
        backend.close()
    return node


def wait_until_listening(backend, topic, timeout_s=5):
    """Until backend's subscriptions are in place: it hears its own probe on topic."""
    deadline = time.monotonic() + timeout_s
    while True:
        backend.client.publish(topic, "{}", qos=1)
        try:
            return backend.wait_for(lambda t, d, r: t == topic, timeout_s=0.5)
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def farmctl(capsys, *argv):
    """(exit status, stdout, stderr) of one farmctl command run in this process."""
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


# --- key=value ---

@pytest.mark.parametrize("text, expected", [
    ("state=on", ("state", "on")),
    ("relay=irrigation", ("relay", "irrigation")),
    ("duration_s=600", ("duration_s", 600)),
    ("ratio=1.5", ("ratio", 1.5)),
    ("on=true", ("on", True)),
    ("x=null", ("x", None)),
    ('limits={"max": 5}', ("limits", {"max": 5})),
    ('name="007"', ("name", "007")),
    ("name=", ("name", "")),
    ("url=http://h/m.json?a=b", ("url", "http://h/m.json?a=b")),  # the first = splits
    ("n=NaN", ("n", "NaN")),  # not JSON: the device could not parse it back
])
def test_parameters_are_json_when_they_parse_and_strings_otherwise(text, expected):
    assert parse_parameter(text) == expected


@pytest.mark.parametrize("text", ["state", "=on", ""])
def test_a_parameter_without_key_or_equals_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_parameter(text)


def test_the_command_is_canonical():
    pairs = [parse_parameter(p) for p in ("relay=irrigation", "state=on", "duration_s=2")]
    assert build_command("relay", pairs, "c-1") == {
        "command_id": "c-1", "command": "relay",
        "parameters": {"relay": "irrigation", "state": "on", "duration_s": 2}}


def test_the_signature_is_the_wire_forms_hmac_sha256():
    """farmctl send signs with the firmware's own code; checked here against the
    README's wire form, computed with Python's hmac (another implementation)."""
    key = "5a" * 32
    envelope = signed({"command_id": "s-1", "command": "ping"}, key, "node-07", ts=1765000000)
    text = envelope["signed"]
    assert json.loads(text) == {"command_id": "s-1", "command": "ping"} and envelope["ts"] == 1765000000
    covered = f"farmnode-sig-1\nnode-07\ncommand\n1765000000\n{text}".encode()
    assert envelope["sig"] == hmac.new(bytes.fromhex(key), covered, hashlib.sha256).hexdigest()


def test_a_malformed_parameter_is_a_usage_error(capsys):
    status, _, err = farmctl(capsys, "send", "node-t1", "relay", "state", "--broker", "127.0.0.1:1")
    assert status == 2 and "key=value" in err


def test_a_profile_without_the_placeholder_it_needs_is_refused(capsys):
    status, _, err = farmctl(capsys, "send", "node-t1", "ping", "--profile", "dese", "--broker", "127.0.0.1:1")
    assert status == 2 and "needs --org" in err


# --- send ---

def test_send_ping_relay_and_a_refusal_to_a_live_node(broker, nodes, capsys):
    started_node(broker, nodes)
    address = ["--broker", broker.address, "--wait", "10"]

    status, out, _ = farmctl(capsys, "send", "node-t1", "ping", *address)
    assert status == 0 and out.startswith("ok ping: ") and '"pong": true' in out, out

    status, out, _ = farmctl(capsys, "send", "node-t1", "relay", "relay=nosuch", "state=on", *address)
    assert status == 1 and out.startswith("FAILED relay: ") and "nosuch" in out, out

    status, out, _ = farmctl(capsys, "send", "node-t1", "relay", "relay=irrigation", "state=on",
                             "duration_s=2", *address)
    assert status == 0 and out.startswith("ok relay: ") and '"off_in_s": 2' in out, out

    status, out, _ = farmctl(capsys, "send", "node-t1", "ping", "--json", "--id", "test-raw", *address)
    assert status == 0 and out.startswith('{"command_id": "test-raw"'), out


def test_send_to_a_device_that_does_not_exist_gives_up_after_wait(broker, capsys, monkeypatch):
    monkeypatch.setenv("FARMCTL_BROKER", broker.address)  # the default broker
    started = time.monotonic()
    status, out, err = farmctl(capsys, "send", "node-nosuch", "ping", "--wait", "1")
    assert status == 2 and out == ""
    assert time.monotonic() - started < 4
    assert "no response from node-nosuch to ping" in err and "farm/node-nosuch/command_response" in err, err


def test_send_to_an_unreachable_broker_says_so_in_one_line(capsys):
    status, out, err = farmctl(capsys, "send", "node-t1", "ping", "--broker", f"127.0.0.1:{free_port()}")
    assert status == 2 and out == ""
    assert err.startswith("farmctl send: cannot reach the broker at 127.0.0.1:")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_send_to_a_broker_that_refuses_the_client_says_why(tmp_path, capsys):
    with Mosquitto(tmp_path / "closed", anonymous=False) as closed:
        status, _, err = farmctl(capsys, "send", "node-t1", "ping", "--broker", closed.address)
    assert status == 2 and "refused the connection: Not authorized" in err, err


def test_send_with_a_profile_without_responses_only_publishes(broker, capsys):
    collector = Backend(broker, ["devices/+/command"], client_id="test-device-side")
    wait_until_listening(collector, "devices/probe/command")
    status, out, _ = farmctl(capsys, "send", "node-t1", "read", "--profile", "plantnanny",
                             "--broker", broker.address)
    assert status == 0 and "no response awaited" in out, out
    sent = collector.wait_for(lambda t, d, r: t == "devices/node-t1/command", timeout_s=5)
    collector.close()
    assert sent["command"] == "read" and sent["parameters"] == {}


# --- watch ---

def table_row(out, device):
    return next(line for line in out.splitlines() if line.startswith(device + " "))


def test_watch_shows_the_node_online_with_telemetry_then_offline_after_its_will(broker, nodes, capsys):
    node = started_node(broker, nodes)
    status, out, _ = farmctl(capsys, "watch", "--once", "3", "--broker", broker.address)
    assert status == 0
    assert out.splitlines()[0].split() == ["device", "status", "seq", "age", "relays", "readings"]
    row = table_row(out, "node-t1")
    assert " online " in row and re.search(r"moist%=\d", row), out
    assert "irrigation=0" in row

    will = Backend(broker, ["farm/node-t1/status"], client_id="test-will")
    node.kill()  # a power cut: the broker publishes the node's Last Will
    will.wait_for(lambda t, d, r: d and d.get("status") == "offline", timeout_s=10)
    will.close()
    status, out, _ = farmctl(capsys, "watch", "--once", "1", "--broker", broker.address)
    assert status == 0 and " offline " in table_row(out, "node-t1"), out


def test_watch_without_a_tty_prints_messages_as_lines(broker, nodes, capsys):
    started_node(broker, nodes)
    status, out, _ = farmctl(capsys, "watch", "--duration", "2.5", "--broker", broker.address)
    assert status == 0
    assert "node-t1 status online" in out and "node-t1 telemetry moist%=" in out, out
    assert "device " in out  # the table at the end


def test_watch_to_an_unreachable_broker_says_so(capsys):
    status, _, err = farmctl(capsys, "watch", "--once", "1", "--broker", f"127.0.0.1:{free_port()}")
    assert status == 2 and err.startswith("farmctl watch: cannot reach the broker")


def test_fleet_names_devices_of_profiles_that_share_topics():
    # smartfarm: telemetry on one topic for every farm, named by farm_id; the status
    # topic names the farm and its payload the device.
    fleet = Fleet("smartfarm", {"prefix": "farm"})
    assert fleet.subscriptions() == ["farm/+/status", "farm/telemetry"]
    assert fleet.take("farm/farm_007/status", {"status": "online", "device_id": "node-7"}) == ("node-7", "status")
    assert fleet.take("farm/telemetry", {"farm_id": "farm_007", "moisture": 41.5}) == ("node-7", "telemetry")
    assert fleet.take("farm/telemetry", {"type": "STATUS", "farm_id": "farm_007", "irrigation": "ON"}) is None
    # iotnode answers commands on the status topic: not a status.
    fleet = Fleet("iotnode", {"prefix": "farm"})
    assert fleet.take("iot/node/n1/status", {"command_id": "c", "success": True}) is None
    assert fleet.take("iot/node/n1/telemetry", {"node_id": "n1", "sensors": {"temperature": 21.5}}) == (
        "n1", "telemetry")
    assert "temp=21.5" in fleet.table()


def test_a_sleeping_node_shows_when_it_wakes_and_is_not_taken_for_a_silent_one():
    fleet = Fleet("farmnode", {"prefix": "farm"}, speed=2)  # a sim at twice the speed
    started = time.monotonic()
    for device in ("node-01", "node-02", "node-03"):
        fleet.take(f"farm/{device}/status", {"status": "online", "device_id": device})
        fleet.take(f"farm/{device}/telemetry", {"device_id": device, "seq": 1,
                                                 "sensors": {"moisture": 40, "battery_v": 3.91}})
    fleet.take("farm/node-01/status", {"status": "sleeping", "device_id": "node-01", "next_wake_s": 600})
    fleet.take("farm/node-03/status", {"status": "offline", "device_id": "node-03", "reason": "lwt"})
    later = started + 60  # its telemetry a minute old, 240 s of its 300 left
    row = table_row(fleet.table(later), "node-01")
    assert "sleeping (next wake in 240 s)" in row and "batt=3.91" in row, row
    assert fleet.counts(later).startswith("3 devices: 1 offline, 1 online, 1 sleeping;"), fleet.counts(later)
    # The device to look at is the one offline, then the silent one; not the sleeper.
    shown = [line.split()[0] for line in fleet.summary(2, later).splitlines()[2:4]]
    assert shown == ["node-03", "node-02"], fleet.summary(2, later)
    assert "sleeping (waking)" in table_row(fleet.table(started + 300 + 10), "node-01")
    assert fleet.summary(1, started + 300 + 10).splitlines()[2].startswith("node-03 ")
    # Its wake long past and still no word: it needs a look.
    late = started + 300 + 45
    assert "sleeping (wake 45 s late)" in table_row(fleet.table(late), "node-01")
    assert "1 late to wake" in fleet.counts(late)
    assert fleet.summary(1, late).splitlines()[2].startswith("node-01 "), fleet.summary(1, late)
    # Awake again: online, its wake forgotten.
    fleet.take("farm/node-01/status", {"status": "online", "device_id": "node-01"})
    assert table_row(fleet.table(late), "node-01").split()[1] == "online"
    assert fleet.line("node-01", "status") == "node-01 status online"


def test_a_sleeping_nodes_wake_is_timed_from_its_status_ts_when_it_has_one():
    fleet = Fleet("farmnode", {"prefix": "farm"})
    started = time.monotonic()
    sent = datetime.fromtimestamp(time.time() - 100, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    fleet.take("farm/node-01/status", {"status": "sleeping", "device_id": "node-01", "next_wake_s": 600,
                                       "ts": sent})  # retained, sent 100 s before we came
    left = int(table_row(fleet.table(started), "node-01").split("next wake in ")[1].split()[0])
    assert 497 <= left <= 500, left
    ahead = datetime.fromtimestamp(time.time() + 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for ts in (ahead, "not a time", 12):  # a clock ahead of ours, or no time: from when it came
        fleet.take("farm/node-01/status", {"status": "sleeping", "device_id": "node-01", "next_wake_s": 600,
                                           "ts": ts})
        left = int(table_row(fleet.table(time.monotonic()), "node-01").split("next wake in ")[1].split()[0])
        assert 598 <= left <= 600, (ts, left)


def test_a_sleeping_status_without_a_wake_time_is_shown_as_it_came():
    fleet = Fleet("farmnode", {"prefix": "farm"})
    fleet.take("farm/node-01/status", {"status": "sleeping", "device_id": "node-01", "next_wake_s": 600})
    fleet.take("farm/node-01/status", {"status": "sleeping", "device_id": "node-01", "next_wake_s": "soon"})
    assert fleet.line("node-01", "status") == "node-01 status sleeping"
    assert fleet.well("node-01", time.monotonic() + 3600)


def test_a_log_line_shows_a_readings_relays_and_an_alert_as_it_came():
    fleet = Fleet("farmnode", {"prefix": "farm"})
    assert fleet.subscriptions() == ["farm/+/alert", "farm/+/status", "farm/+/telemetry"]
    event = fleet.take("farm/n1/telemetry", {"device_id": "n1", "seq": 3, "sensors": {"moisture": 40.1},
                                             "relays": {"irrigation": 1}})
    assert event == ("n1", "telemetry")
    assert fleet.line(*event).startswith("n1 telemetry moist%=40.1 ") and fleet.line(*event).endswith(
        " | irrigation=1")
    alert = {"severity": "info", "message": "irrigation started: dry: moisture 40.1 < 46", "device_id": "n1"}
    event = fleet.take("farm/n1/alert", alert)
    assert fleet.line(*event) == "n1 alert info: irrigation started: dry: moisture 40.1 < 46"
    assert fleet.alerts == ["n1 alert info: irrigation started: dry: moisture 40.1 < 46"]
    assert fleet.rows["n1"]["values"]["seq"] == 3  # an alert is not a reading
