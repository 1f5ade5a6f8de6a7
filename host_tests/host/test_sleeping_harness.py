"""Deep sleep in the simulator: a node whose firmware calls machine.deepsleep(ms) ends its
process (harness/virtual_node.py) and VirtualNode starts it again ms/speed later with
reset cause 4 (DEEPSLEEP_RESET), its RTC memory and its field kept; a fleet member
(harness/virtual_fleet.py) sleeps without turns until its wake. The mechanism is
exercised with a stand-in firmware (a node that counts its boots in RTC memory and goes
straight to sleep); the last tests run the real firmware with power.mode "deepsleep"."""
import json
import subprocess
import threading
import time
import types

import pytest

from backend import Backend
from farmsim import HARNESS
from farmsim.nodes import DEEPSLEEP_RESET, VirtualFleet, VirtualNode

RUNTIMES = ("micropython", "cpython")

# The stand-in: firmware/ as virtual_node.py imports it (config.load, wifi.networks,
# startup.run). Each boot counts itself in RTC memory, says what it woke to, and sleeps
# for config["sleep_ms"]; with config["crash"] it leaves a sleep file and fails instead.
STANDIN = {
    "__init__.py": "",
    "config.py": '''
import json


def load(root):
    with open(root + "/config.json") as f:
        return json.loads(f.read()), []
''',
    "wifi.py": '''
def networks(wifi):
    return [("farm", "farmpass")]
''',
    "startup.py": '''
import machine
import simchip


class Sleeper:
    def __init__(self, root):
        import json

        with open(root + "/config.json") as f:
            cfg = json.loads(f.read())
        if cfg.get("crash"):
            with open(root.rstrip("/") + ".sleep", "w") as f:
                f.write('{"sleep_ms": 1000, "field": {}}')
            raise RuntimeError("crashed")
        self.sleep_ms = cfg["sleep_ms"]

    def step(self):  # what virtual_node.py runs has one
        pass

    def run(self, until=None):
        rtc = machine.RTC()
        boot = int(rtc.memory() or b"0") + 1
        rtc.memory(str(boot).encode())
        battery_v = machine.ADC(machine.Pin(33), atten=machine.ADC.ATTN_11DB).read_uv() * 2 / 1000000
        print("standin: boot %d reset_cause %d wake_reason %d hour %.2f battery_v %.2f" % (
            boot, machine.reset_cause(), machine.wake_reason(), simchip.chip().field.hour(), battery_v))
        machine.deepsleep(self.sleep_ms)


def run(root, update=None, host=None):
    return Sleeper(root)
''',
}
BATTERY = {"sensors": {"battery": {"enabled": True, "pin": 33, "ratio": 2.0}}}


def standin_node(tmp_path, runtime, speed=1, **config):
    firmware = tmp_path / "standin" / "firmware"
    firmware.mkdir(parents=True)
    for name, text in STANDIN.items():
        (firmware / name).write_text(text)
    config.update(BATTERY, wifi={})
    return VirtualNode(tmp_path / "node", config, {}, runtime=runtime, speed=speed,
                       extra_path=[tmp_path / "standin"])


def boots(node):
    """{boot number: {"reset_cause": N, "wake_reason": N, "hour": H, "battery_v": V}} from its console."""
    found = {}
    for line in node.console().splitlines():
        if line.startswith("standin: boot "):
            words = line.split()
            found[int(words[2])] = {words[i]: float(words[i + 1]) for i in range(3, len(words), 2)}
    return found


def until(condition, timeout_s, what, node):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} in {timeout_s} s; console:\n{node.console()[-2000:]}"
        time.sleep(0.02)
    return time.monotonic()


def left_behind(node):
    """What is left of the node: its processes, its watch's threads."""
    processes = subprocess.run(["pgrep", "-f", str(node.root)], capture_output=True, text=True).stdout.split()
    threads = [t.name for t in threading.enumerate() if t.name == f"{node.root.name} watch"]
    return processes + threads


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_node_in_deep_sleep_wakes_with_reset_cause_4_its_rtc_memory_and_its_field(tmp_path, runtime):
    # Two simulated hours of sleep at an hour a second: its wake two seconds later.
    node = standin_node(tmp_path, runtime, sleep_ms=7_200_000, speed=3600).start()
    try:
        asleep = until(node.sleeping, 30, "no sleep", node)
        assert node.running(), "asleep is not a node to restart"
        assert node.process.poll() == 0 and node.wakes == 0
        assert "deepsleep: 7200000 ms" in node.console()
        woken = until(lambda: node.wakes == 1, 10, "no wake", node)
        assert 1.7 < woken - asleep < 2.5, woken - asleep
        until(lambda: 2 in boots(node), 30, "no second boot", node)
        first, second = boots(node)[1], boots(node)[2]
        assert first["reset_cause"] == 1 and first["wake_reason"] == 0
        assert second["reset_cause"] == DEEPSLEEP_RESET and second["wake_reason"] == 4  # TIMER_WAKE
        # The same field two hours on, not a new one at its start hour again.
        assert 1.99 < second["hour"] - first["hour"] < 3.0, (first, second)
        assert 3.9 < first["battery_v"] < 4.0  # the divider on the configured pin
        until(node.sleeping, 30, "no second sleep", node)
        stopping = time.monotonic()
        node.stop()  # asleep: the wake is dropped at once
        assert time.monotonic() - stopping < 1 and not node.running() and not node.sleeping()
        time.sleep(2.5)  # past the wake that was due
        assert node.wakes == 1 and 3 not in boots(node) and not left_behind(node)
        assert not node.sleep_path.exists()
    finally:
        node.stop()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_reset_or_a_power_cut_while_asleep_drops_the_timed_wake(tmp_path, runtime):
    node = standin_node(tmp_path, runtime, sleep_ms=600_000)  # ten minutes
    try:
        node.start()
        until(node.sleeping, 30, "no sleep", node)
        node.start(reset_cause=2)  # a reset: a boot now, with its cause
        until(lambda: 2 in boots(node), 30, "no boot at the reset", node)
        assert boots(node)[2]["reset_cause"] == 2 and node.wakes == 0
        until(node.sleeping, 30, "no sleep after the reset", node)
        started = time.monotonic()
        node.kill()
        assert time.monotonic() - started < 1 and not node.running()
        assert not left_behind(node) and node.starts == 2
    finally:
        node.stop()


def test_a_crash_is_no_sleep_even_with_a_sleep_file(tmp_path):
    """Only a process that ends well (exit 0) with its sleep file sleeps: a crash is a
    crash, for `farmctl sim` to restart."""
    node = standin_node(tmp_path, "cpython", crash=True)
    try:
        node.start()
        until(lambda: not node.running(), 30, "no crash", node)
        assert node.process.returncode != 0 and node.sleep_path.exists()
        assert not node.sleeping() and node.wakes == 0
        node.start()  # a boot that is no wake: the file is not its field
        assert not node.sleep_path.exists()
    finally:
        node.stop()


# --- a fleet's member ---

class Sleepy:
    """A stand-in Node for a fleet member: its first turn counts its boot in RTC memory
    and sleeps; what it woke to is kept in seen."""

    def __init__(self, seen, sleep_ms):
        import machine

        self.machine = machine
        self.seen = seen
        self.sleep_ms = sleep_ms
        self.link = types.SimpleNamespace(device_id="sleepy-1", session=types.SimpleNamespace(connected=False))
        self.watchdog = types.SimpleNamespace(feed=lambda: None)
        self.relays = types.SimpleNamespace(all_off=lambda reason: seen.append(("all_off", reason)))

    def announce(self):
        pass

    def shutdown(self, reason):
        self.seen.append(("shutdown", reason))

    def step(self):
        machine = self.machine
        rtc = machine.RTC()
        boot = int(rtc.memory() or b"0") + 1
        rtc.memory(str(boot).encode())
        self.seen.append((boot, machine.reset_cause(), machine.wake_reason()))
        machine.deepsleep(self.sleep_ms)


def test_a_fleet_member_sleeps_without_turns_and_boots_at_its_wake(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HARNESS))
    import virtual_fleet
    from ticks import ticks_diff, ticks_ms

    seen = []
    monkeypatch.setattr(virtual_fleet, "Node", Sleepy)
    monkeypatch.setattr(virtual_fleet, "startup", types.SimpleNamespace(
        run=lambda root, host=None: Sleepy(seen, 20_000)))
    root = tmp_path / "sleepy-1"
    root.mkdir()
    (root / "config.json").write_text("{}")
    spec = {"nodes": [{"root": str(root), "seed": 1, "start_hour": 9.0, "rtc": str(tmp_path / "sleepy-1.rtc")}],
            "field": None, "speed": 10.0, "idle_ms": 250, "stats": str(tmp_path / "stats.json"), "reset_cause": 1}
    fleet = virtual_fleet.Fleet(spec, types.SimpleNamespace(cut=False))
    fleet.boot()
    member = fleet.members[0]
    field = member.chip.field
    field.set_actuator("irrigation", True)
    before = ticks_ms()
    fleet.round(fleet.members)  # its turn: to sleep, 20 s at 10x: 2 s
    after = ticks_ms()
    assert seen == [(1, 1, 0)], seen  # and no shutdown: the firmware let go of the broker itself
    assert member.node is None and member.app is None and member.chip.closed
    assert not member.chip.field.actuators["irrigation"]  # its pins undriven: the relay drops out
    # The scheduler's next look: the wake, 2 s after a moment within the turn.
    assert ticks_diff(member.due, before) >= 2000 and ticks_diff(member.due, after) <= 2000
    left_before = ticks_diff(member.due, ticks_ms())
    fleet.write_stats()
    left_after = ticks_diff(member.due, ticks_ms())
    entry = json.loads((tmp_path / "stats.json").read_text())["members"][0]
    assert entry["running"] == "sleeping" and entry["device"] == "sleepy-1" and entry["sleep_ms"] == 20_000
    assert max(0, left_after) <= entry["wake_in_ms"] <= left_before  # however loaded the machine
    wake = member.due
    started = time.monotonic()
    while len(seen) == 1:
        assert time.monotonic() - started < 3, "no wake"
        fleet.round(fleet.members)  # idles until the wake (idle_ms at most)
    assert ticks_diff(ticks_ms(), wake) >= 0  # not before its time
    assert seen[1] == (2, DEEPSLEEP_RESET, 4), seen  # RTC memory kept, TIMER_WAKE
    assert member.wakes == 1 and member.boots == 2
    assert member.chip.field is field  # a new chip in the same field
    member.due = ticks_ms()  # asleep again, its wake due this instant: the stop comes first
    fleet.stop()  # stopped at once, asleep, no offline said
    assert member.boots == 2 and member.final["running"] == "sleeping" and member.final["wakes"] == 1
    assert [event for event in seen if type(event[0]) is str] == [], seen  # no shutdown, ever


# --- the real firmware (power.mode "deepsleep") ---

SLEEPER = {"power": {"mode": "deepsleep", "sleep_s": 10, "awake_s": 5},
           "relays": {"irrigation": None, "fertigation": None},
           "interlocks": {"spray_drift": None, "nutrient_lockout": None}}
SPEED = 5  # its ten seconds' sleep, less its wake, in a second or two


def node_messages(device):
    """match(kind, **fields): a wait_for predicate for the device's status or telemetry."""
    def match(kind, **fields):
        def predicate(topic, data, retain):
            return (topic == f"farm/{device}/{kind}" and bool(data)
                    and all(data.get(key) == value for key, value in fields.items()))
        return predicate
    return match


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_firmware_sleeps_and_wakes_in_its_own_process(broker, nodes, runtime):
    backend = Backend(broker, ["farm/node-t1/status", "farm/node-t1/telemetry"])
    match = node_messages("node-t1")
    try:
        node = nodes(broker, runtime, config=SLEEPER, speed=SPEED)
        first = backend.wait_for(match("telemetry"), timeout_s=30)
        sleeping = backend.wait_for(match("status", status="sleeping"), timeout_s=20)
        assert sleeping["next_wake_s"] <= 10, sleeping
        until(node.sleeping, 10, "no sleep", node)
        assert node.running() and node.process.returncode == 0
        online = backend.wait_for(match("status", status="online"), timeout_s=20)
        assert online["reset_cause"] == "deepsleep" and node.wakes == 1, online
        again = backend.wait_for(match("telemetry"), timeout_s=20)
        # RTC memory kept through the sleep: the boot goes on, its readings numbered on.
        assert again["boot_id"] == first["boot_id"] and again["seq"] == first["seq"] + 1, (first, again)
        backend.wait_for(match("status", status="sleeping"), timeout_s=20)
        until(node.sleeping, 10, "no second sleep", node)
        node.stop()
        assert not node.running() and not left_behind(node)
        statuses = [data["status"] for topic, data, _ in backend.seen if topic.endswith("/status") and data]
        assert "offline" not in statuses, statuses  # it let go cleanly: no Will, and nothing said for it
    finally:
        backend.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_firmware_sleeps_and_wakes_in_a_fleet(broker, tmp_path, runtime):
    secrets = {"wifi": {"ssid": "farm", "password": "farmpass"}, "mqtt": {"host": broker.host, "port": broker.port}}
    config = dict(SLEEPER, device_id="node-s1", farm_id="farm_001", interval_s=1)
    awake = {"device_id": "node-a1", "farm_id": "farm_002", "interval_s": 1}  # a neighbour that never sleeps
    backend = Backend(broker, ["farm/+/status", "farm/+/telemetry"])
    match = node_messages("node-s1")
    fleet = VirtualFleet(tmp_path / "fleet", [(tmp_path / "node-s1", config, secrets, 1, 9.0),
                                              (tmp_path / "node-a1", awake, secrets, 2, 9.0)],
                         runtime=runtime, speed=SPEED, idle_ms=100)
    try:
        fleet.start()
        first = backend.wait_for(match("telemetry"), timeout_s=30)
        backend.wait_for(match("status", status="sleeping"), timeout_s=20)
        online = backend.wait_for(match("status", status="online"), timeout_s=20)
        assert online["reset_cause"] == "deepsleep", online
        again = backend.wait_for(match("telemetry"), timeout_s=20)
        assert again["boot_id"] == first["boot_id"] and again["seq"] == first["seq"] + 1, (first, again)
        backend.wait_for(match("status", status="sleeping"), timeout_s=20)
        neighbour = [data["seq"] for topic, data, _ in backend.seen
                     if topic == "farm/node-a1/telemetry" and data]
        assert len(neighbour) >= 3, neighbour  # its turns went on while the other slept
        fleet.request_stop()
        fleet.stop()
        final = {member["device"]: member for member in fleet.stats()["members"]}
        assert fleet.process.returncode == 0, fleet.console()[-2000:]
        assert final["node-s1"]["running"] == "sleeping" and final["node-s1"]["wakes"] >= 1, final
        assert final["node-a1"]["running"] == "app" and final["node-a1"]["wakes"] == 0, final
        statuses = [data["status"] for topic, data, _ in backend.seen if topic == "farm/node-s1/status" and data]
        assert "offline" not in statuses, statuses
    finally:
        fleet.stop()
        backend.close()
