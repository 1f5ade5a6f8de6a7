"""A battery node that deep-sleeps, with mosquitto and the simulator waking it: its
readings arrive every sleep_s with seq continuing across wakes, a command sent while it
sleeps runs at its next wake, and no offline Will fires. Both runtimes at once; loopback
only, bounded in time."""
import json
from datetime import datetime
import time

from backend import Backend
from telemetry_check import Collector, check_stream

RUNTIMES = ("micropython", "cpython")
SLEEP_S = 10
SLEEPER = {"power": {"mode": "deepsleep", "sleep_s": SLEEP_S, "awake_s": 5},
           "relays": {"irrigation": None, "fertigation": None},
           "interlocks": {"spray_drift": None, "nutrient_lockout": None},
           "sensors": {"battery": {"enabled": True}}}


def drain(backend):
    """Every message the backend has received so far into backend.seen."""
    try:
        backend.wait_for(lambda topic, data, retain: False, 0.5)
    except AssertionError:
        pass


def wait_seen(backend, predicate, timeout_s):
    """Until a message matching predicate(topic, data) has come (perhaps already)."""
    if not any(predicate(topic, data) for topic, data, _ in backend.seen):
        backend.wait_for(lambda topic, data, retain: predicate(topic, data), timeout_s)


def answered(backend, device):
    return [p for t, p, _ in backend.seen if (p or {}).get("command_id") == f"ping-{device}"]


def test_a_sleeping_node_reports_every_sleep_s_and_takes_a_command_sent_while_it_slept(broker, nodes):
    members = []
    backend = Backend(broker, ["farm/+/status", "farm/+/command_response"], client_id="sleep-backend")
    try:
        for i, runtime in enumerate(RUNTIMES):
            device = f"node-s{i}"
            telemetry = Collector(broker, f"farm/{device}/telemetry", f"telemetry-{device}")
            node = nodes(broker, runtime, dict(SLEEPER, device_id=device))
            members.append((runtime, device, telemetry, node))
        for runtime, device, telemetry, node in members:
            wait_seen(backend, lambda topic, data: topic == f"farm/{device}/status"
                      and (data or {}).get("status") == "sleeping", 30)
            deadline = time.monotonic() + 5  # its process ends right after it said so
            while not (node.sleeping() or node.wakes):
                assert time.monotonic() < deadline, (runtime, node.console()[-1500:])
                time.sleep(0.05)
        for runtime, device, telemetry, node in members:  # it sleeps: the command waits at the broker
            backend.client.publish(f"farm/{device}/commands",
                                   json.dumps({"command_id": f"ping-{device}", "command": "ping"}), qos=1)
        for runtime, device, telemetry, node in members:
            telemetry.wait_for_seq(2, timeout_s=4 * SLEEP_S)
            wait_seen(backend, lambda topic, data: (data or {}).get("command_id") == f"ping-{device}", 2 * SLEEP_S)
        drain(backend)
        for runtime, device, telemetry, node in members:
            got = telemetry.snapshot()
            report = check_stream(got)
            assert len(report) == 1, (runtime, report)  # one boot across the wakes
            seqs = [seq for _, seq, _ in got]
            assert seqs[:3] == [0, 1, 2], (runtime, seqs)
            assert node.wakes >= 2, runtime
            # Every sleep_s by its uptime, which counts the sleeps (its clock: a wake's boot
            # and Wi-Fi come on top of it in real time).
            uptimes = [m["uptime_s"] for _, _, m in got[:3]]
            assert all(SLEEP_S - 1 <= b - a <= SLEEP_S + 1 for a, b in zip(uptimes, uptimes[1:])), (runtime, uptimes)
            times = [datetime.fromisoformat(m["ts"].replace("Z", "+00:00")).timestamp() for _, _, m in got[:3]]
            assert all(SLEEP_S - 1 <= b - a <= SLEEP_S + 5 for a, b in zip(times, times[1:])), (runtime, times)
            reading = got[-1][2]
            assert 3.0 <= reading["sensors"]["battery_v"] <= 4.3 and 0 <= reading["sensors"]["battery_pct"] <= 100
            answers = answered(backend, device)
            assert len(answers) == 1 and answers[0]["success"], (runtime, answers)
            statuses = [p for t, p, _ in backend.seen if t == f"farm/{device}/status"]
            assert [s for s in statuses if s["status"] == "offline"] == [], (runtime, statuses)  # no Will
            sleeping = [s for s in statuses if s["status"] == "sleeping"]
            assert sleeping and all(0 < s["next_wake_s"] <= SLEEP_S for s in sleeping), (runtime, sleeping)
            # The command was answered at a wake: after an "online" that came after it was sent.
            order = [s["status"] for s in statuses]
            assert "online" in order[order.index("sleeping") + 1:], (runtime, order)
    finally:
        for _, _, telemetry, _ in members:
            telemetry.close()
        backend.close()
