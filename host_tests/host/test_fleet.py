"""Several nodes in one process (farmsim/harness/virtual_fleet.py, as `farmctl sim` runs a
large farm) against mosquitto: each node is a device of its own, with its own field,
telemetry and seqs, its own answers and relay, and its own restart; and the process
stops cleanly, each node saying offline, with final figures that match what arrived.
Both runtimes at once: a process of three nodes each."""
import json

from backend import Backend
from farmsim.nodes import VirtualFleet

FLEETS = {"micropython": ("node-m1", "node-m2", "node-m3"), "cpython": ("node-c1", "node-c2", "node-c3")}
DEVICES = [device for devices in FLEETS.values() for device in devices]
SWITCHED = ("node-m2", "node-c2")  # the relay is switched on these only
RESTARTED = ("node-m3", "node-c3")  # and these are restarted


def start_fleet(broker, tmp_path, runtime):
    secrets = {"wifi": {"ssid": "farm", "password": "farmpass"}, "mqtt": {"host": broker.host, "port": broker.port}}
    members = [(tmp_path / device, {"device_id": device, "farm_id": f"farm_{i}", "interval_s": 1}, secrets,
                i + 1, 9.0 + i) for i, device in enumerate(FLEETS[runtime], 1)]
    # A minute of field time per second: an open valve wets the soil by 0.5 % a second.
    return VirtualFleet(tmp_path / runtime, members, runtime=runtime, speed=60, idle_ms=100).start()


def command(backend, device, command_id, name, **parameters):
    payload = {"command_id": command_id, "command": name, "parameters": parameters}
    backend.client.publish(f"farm/{device}/commands", json.dumps(payload), qos=1)


def test_nodes_sharing_a_process_are_separate_devices(broker, tmp_path):
    backend = Backend(broker, ["farm/+/telemetry", "farm/+/command_response", "farm/+/status"])
    fleets = [start_fleet(broker, tmp_path, runtime) for runtime in FLEETS]
    readings = {device: [] for device in DEVICES}
    answers = {}  # command_id -> answer
    offline = {}  # device -> reason
    online = {}  # device -> [status per boot]

    def record(topic, data, retain):
        """Keeps every message (checking each reading came on its own device's topic)."""
        if not data:
            return False
        if topic.endswith("/telemetry"):
            assert topic == f"farm/{data['device_id']}/telemetry", (topic, data)
            readings[data["device_id"]].append(data)
        elif topic.endswith("/command_response"):
            answers[data["command_id"]] = data
        elif data.get("status") == "offline":
            offline[data["device_id"]] = data["reason"]
        elif data.get("status") == "online":
            online.setdefault(data["device_id"], []).append(data)
        return False

    def until(condition):
        backend.wait_for(lambda t, d, r: record(t, d, r) or condition(), timeout_s=30)

    try:
        until(lambda: all(len(got) >= 2 for got in readings.values()))
        # Each reads its own field (they start at 10:00, 11:00, 12:00: warmer each).
        for devices in FLEETS.values():
            temps = [readings[device][0]["sensors"]["temp"] for device in devices]
            assert temps == sorted(temps) and len(set(temps)) == 3, temps
        # Each answers its own ping.
        for device in DEVICES:
            command(backend, device, f"ping-{device}", "ping")
        until(lambda: all(f"ping-{device}" in answers for device in DEVICES))
        for device in DEVICES:
            answer = answers[f"ping-{device}"]
            assert answer["device_id"] == device and answer["success"] and answer["response"]["pong"], answer
        # A relay switched on one node moves that node's relay only (its own chip's pin).
        for device in SWITCHED:
            command(backend, device, f"relay-{device}", "relay", relay="irrigation", state="on", duration_s=60)
        until(lambda: all(f"relay-{device}" in answers for device in SWITCHED))
        assert all(answers[f"relay-{device}"]["success"] for device in SWITCHED), answers
        wet = {device: readings[device][-1]["sensors"]["moisture"] for device in DEVICES}
        until(lambda: all(readings[device][-1]["sensors"]["moisture"] >= wet[device] + 1.5 for device in SWITCHED))
        for device in DEVICES:
            assert readings[device][-1]["relays"]["irrigation"] == (device in SWITCHED), readings[device][-1]
            if device not in SWITCHED:  # its own soil, not watered
                assert readings[device][-1]["sensors"]["moisture"] < wet[device] + 0.5, (device, wet)
            assert readings[device][-1]["sensors"]["wind_speed"] > 0  # its anemometer turns (no calm here)
        # A node restarted boots alone (the others keep their boot), and reads again.
        for device in RESTARTED:
            command(backend, device, f"restart-{device}", "restart")
        def reading_again(device):
            boots = online.get(device, ())
            return len(boots) == 2 and readings[device][-1]["boot_id"] == boots[1]["boot_id"]

        until(lambda: all(reading_again(device) for device in RESTARTED))
        for device in DEVICES:
            assert len(online[device]) == (2 if device in RESTARTED else 1), online[device]
            assert [s["reset_cause"] for s in online[device]] == ["power_on", "hard"][:len(online[device])]
        # Each boot's own stream: seqs from 0 without a gap.
        for device, got in readings.items():
            for boot in {r["boot_id"] for r in got}:
                seqs = [r["seq"] for r in got if r["boot_id"] == boot]
                assert sorted(set(seqs)) == list(range(max(seqs) + 1)), (device, boot, seqs)
        # A clean stop: every node says offline, and each process's figures match the stream.
        assert offline == {device: "restart" for device in RESTARTED}
        offline.clear()
        for fleet in fleets:
            fleet.request_stop()
        until(lambda: len(offline) == len(DEVICES))
        assert offline == {device: "stopped" for device in DEVICES}
        for fleet in fleets:
            fleet.stop()
            final = fleet.stats()
            assert final["final"] and fleet.process.returncode == 0, fleet.console()[-2000:]
            for member in final["members"]:
                got = [r for r in readings[member["device"]] if r["boot_id"] == member["boot_id"]]
                assert member["boot_id"] == online[member["device"]][-1]["boot_id"], member
                assert member["seq"] == len({r["seq"] for r in got}), (member, len(got))
                assert member["queued"] == member["inflight"] == member["loop_errors"] == 0, member
                assert member["boots"] == len(online[member["device"]]), member
    finally:
        for fleet in fleets:
            fleet.stop()
        backend.close()
