"""Faults between the device and the broker (a TCP fault proxy), under both runtimes at
once: what the device accepted arrives, once after de-duplication, in order; relays obey
max_on_s; memory comes back. Loopback only, bounded in count and time."""
import json
import random
import threading
import time

import pytest

from backend import Backend
from faultproxy import FaultProxy
from telemetry_check import Collector, check_stream

RUNTIMES = ("micropython", "cpython")


@pytest.fixture
def fleet(broker, nodes, tmp_path):
    """One node per runtime, each behind its own fault proxy, each with a collector and
    a field steering file (node.field_file: field, its first text). secrets: laid over
    the test's own (its Wi-Fi; the broker is the proxy)."""
    started = []

    def make(secrets=None, field="{}", **config):
        out = []
        for i, runtime in enumerate(RUNTIMES):
            proxy = FaultProxy(broker.host, broker.port)
            device = f"node-f{i}"
            collector = Collector(broker, f"farm/{device}/telemetry", f"collector-{device}")
            cfg = {"device_id": device, "interval_s": 1, "mqtt": {"keepalive": 2}, **config}
            steering = tmp_path / f"field-{device}.json"
            steering.write_text(field)
            node = nodes(broker, runtime, cfg, {"mqtt": {"host": proxy.host, "port": proxy.port}, **(secrets or {})},
                         field_file=steering)
            out.append((runtime, proxy, collector, node))
            started.append((proxy, collector))
        for _, _, collector, _ in out:
            collector.wait_for_seq(1)
        return out

    yield make
    for proxy, collector in started:
        collector.close()
        proxy.close()


def in_parallel(work, members):
    """work(member) for every member at once; the first failure is raised."""
    errors = []

    def run(member):
        try:
            work(member)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    if errors:
        raise errors[0]


def wait_for_new_connection(proxy, connections, timeout_s, failure):
    """Until the proxy has accepted a connection beyond the first `connections`."""
    deadline = time.monotonic() + timeout_s
    while proxy.connections == connections:
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


def assert_delivered(collector, runtime, since_seq, console=""):
    """Readings taken after the faults have arrived, then the whole stream is checked (a
    reading's meta.dropped counts every drop of its boot up to its own push); one more
    reading is awaited so that the last of the faults' readings is surely in."""
    collector.wait_for_seq(since_seq + 2, timeout_s=40)
    collector.wait_for_seq(collector.last_seq() + 1, timeout_s=10)
    try:
        report = check_stream(collector.snapshot())
    except AssertionError as exc:
        arrivals = [(seq, m["meta"]["dropped"]) for _, seq, m in collector.snapshot()]
        raise AssertionError(f"{runtime}: {exc}; arrivals (seq, dropped): {arrivals}; console: {console}") from None
    assert len(report) == 1, f"{runtime}: the node rebooted: {report}"
    return report


def relay_on_seq(collector, timeout_s=10):
    """The seq of the first reading showing the irrigation relay on."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for _, seq, message in collector.snapshot():
            if message["relays"]["irrigation"]:
                return seq
        time.sleep(0.05)
    raise AssertionError("no reading shows the relay on")


def switch_irrigation_on(backend, members, duration_s=None):
    """The irrigation relay on (for duration_s, else up to its max_on_s), through the
    broker; {runtime: seq of the first reading showing it on}."""
    for i, (runtime, proxy, collector, node) in enumerate(members):
        parameters = {"relay": "irrigation", "state": "on"}
        if duration_s is not None:
            parameters["duration_s"] = duration_s
        command = {"command_id": f"on-{i}", "command": "relay", "parameters": parameters}
        backend.client.publish(f"farm/node-f{i}/commands", json.dumps(command), qos=1)
        backend.wait_for(lambda t, d, r, i=i: d and d.get("command_id") == f"on-{i}" and d["success"])
    return {runtime: relay_on_seq(collector) for runtime, _, collector, _ in members}


def heap_free(collector):
    return [m["meta"]["heap_free"] for _, _, m in collector.snapshot() if m["meta"].get("heap_free")]


def test_fifty_cuts_at_random_moments_lose_nothing(fleet):
    members = fleet()
    heap_before = {runtime: max(heap_free(c)) for runtime, _, c, _ in members if runtime == "micropython"}

    def cut_fifty_times(member):
        runtime, proxy, collector, node = member
        chance = random.Random(runtime)
        for cut in range(50):
            deadline = time.monotonic() + 10
            while proxy.open_connections() == 0:  # the node has come back
                assert time.monotonic() < deadline, f"{runtime}: no reconnection after cut {cut}"
                time.sleep(0.02)
            time.sleep(chance.uniform(0.05, 0.6))  # mid-publish, mid-ping, mid-handshake...
            proxy.reset() if chance.random() < 0.5 else proxy.cut()
        assert node.running(), f"{runtime}: the node died"

    in_parallel(cut_fifty_times, members)
    for runtime, proxy, collector, node in members:
        unique, duplicates, dropped = next(iter(assert_delivered(collector, runtime, collector.last_seq()).values()))
        assert unique > 50 and dropped == 0, (runtime, unique, duplicates, dropped)
    for runtime, _, collector, _ in members:
        if runtime in heap_before:
            # heap_free is measured after a collection; the node's own bounded logs may take a little.
            assert max(heap_free(collector)[-5:]) > heap_before[runtime] - 4096, heap_free(collector)


# Slow, then deaf one way, then the other, then both: each black hole keeps the socket
# open, so only the node's own keepalive can tell the link is dead.
FAULT_SCHEDULE = [
    (0, "delay", {"up_s": 0.3, "down_s": 0.3}),
    (3, "heal", {}), (3, "black_hole", {"up": True, "down": False}),
    (8, "heal", {}), (9, "black_hole", {"up": False, "down": True}),
    (14, "heal", {}), (15, "black_hole", {}),
    (21, "heal", {}),
]


def through_fault_nothing_lost(members, fault, seconds):
    """fault(member) on every member at once, for about seconds: the readings taken
    meanwhile arrive afterwards, with no gap and none dropped."""
    before = {runtime: collector.last_seq() for runtime, _, collector, _ in members}
    in_parallel(fault, members)
    for runtime, proxy, collector, node in members:
        unique, duplicates, dropped = next(iter(assert_delivered(collector, runtime, before[runtime] + seconds).values()))
        assert dropped == 0, (runtime, unique, duplicates, dropped)


def test_delays_and_black_holes_on_a_schedule_lose_nothing(fleet):
    def play(member):
        runtime, proxy, collector, node = member
        connections = proxy.connections
        proxy.play(FAULT_SCHEDULE)
        wait_for_new_connection(proxy, connections, 20, f"{runtime}: never reconnected after the black holes")
        assert proxy.connections >= connections + 3, (runtime, "each black hole needs a new connection")

    through_fault_nothing_lost(fleet(), play, FAULT_SCHEDULE[-1][0])


def test_the_stream_check_catches_loss_disorder_and_counts_duplicates():
    meta = {"meta": {"dropped": 0}}
    assert check_stream([("b1", 0, meta), ("b1", 1, meta), ("b1", 1, meta), ("b1", 2, meta)]) == {"b1": (3, 1, 0)}
    with pytest.raises(AssertionError, match="1 readings lost"):
        check_stream([("b1", 0, meta), ("b1", 2, meta)])
    assert check_stream([("b1", 0, meta), ("b1", 2, {"meta": {"dropped": 1}})]) == {"b1": (2, 0, 1)}  # counted
    with pytest.raises(AssertionError, match="out of order"):
        check_stream([("b1", 0, meta), ("b1", 2, meta), ("b1", 1, meta)])


def test_the_access_point_going_away_loses_nothing(fleet):
    members = fleet()

    def drop_wifi(member):
        runtime, proxy, collector, node = member
        connections = proxy.connections
        node.field_file.write_text('{"access_point": false}')  # through the network stub
        time.sleep(6)
        node.field_file.write_text("{}")
        # A join takes a while, then the broker.
        wait_for_new_connection(proxy, connections, 30, f"{runtime}: never came back after the Wi-Fi outage")

    through_fault_nothing_lost(members, drop_wifi, 6)
    for runtime, proxy, collector, node in members:
        assert "wifi: link to farm lost" in node.console(), runtime


def test_a_node_whose_access_point_vanishes_moves_to_another_and_loses_nothing(fleet):
    barn_and_shed = [{"ssid": "farm", "rssi": -60}, {"ssid": "shed", "rssi": -75}]
    members = fleet(secrets={"wifi": {"networks": [{"ssid": "shed", "password": "shed-pass"}]}},
                    field=json.dumps({"access_points": barn_and_shed}))

    def farm_goes(member):
        runtime, proxy, collector, node = member
        connections = proxy.connections
        node.field_file.write_text(json.dumps({"access_points": barn_and_shed[1:]}))  # only the shed's
        wait_for_new_connection(proxy, connections, 30, f"{runtime}: never came back over the shed's network")

    through_fault_nothing_lost(members, farm_goes, 3)
    for runtime, proxy, collector, node in members:
        console = node.console()
        joined_farm = console.find("wifi: joined farm")  # the stronger, at boot
        lost = console.find("wifi: link to farm lost")
        assert 0 <= joined_farm < lost < console.find("wifi: joined shed"), (runtime, console[-2000:])


def test_a_long_outage_counts_what_the_queue_bound_dropped_and_trips_the_failsafe(fleet, broker):
    """12 readings while the broker is unreachable: at the default 60 s interval, a
    12-minute outage, compressed by a 1 s interval (the node's clock is real time).
    The queue in RAM only (no outbox on flash), bounded to 5."""
    members = fleet(failsafe_s=10, mqtt={"keepalive": 2, "queue_max": 5, "spill_bytes": 0})
    backend = Backend(broker, ["farm/+/command_response"])
    try:
        before = switch_irrigation_on(backend, members, 600)

        def outage(member):
            runtime, proxy, collector, node = member
            proxy.refuse()
            proxy.reset()
            time.sleep(12)
            proxy.heal()

        in_parallel(outage, members)
        for runtime, proxy, collector, node in members:
            report = assert_delivered(collector, runtime, before[runtime] + 12, node.console()[-3000:])
            unique, duplicates, dropped = next(iter(report.values()))
            assert dropped >= 12 - 5 - 2, (runtime, report)  # the queue holds 5; the rest counted
            state = {seq: m["relays"]["irrigation"] for _, seq, m in collector.snapshot()}
            assert state[before[runtime]] == 1, runtime  # on when the outage began
            later = [seq for seq in state if seq > before[runtime]]
            assert later and all(state[seq] == 0 for seq in later), (runtime, state)  # the failsafe
        for runtime, _, collector, node in members:
            assert "failsafe: no broker for 10 s, every relay off" in node.console(), runtime
    finally:
        backend.close()


def outbox_seqs(node):
    """The seqs of the readings waiting in the node's outbox on its flash."""
    path = node.root / "outbox.txt"
    seqs = []
    for line in path.read_bytes().splitlines() if path.exists() else ():
        try:
            seqs.append(json.loads(line.split(b"\t", 2)[2])["seq"])
        except (IndexError, ValueError, KeyError):
            pass  # a line being written
    return seqs


def readings_of(collector, boot_id):
    return [seq for boot, seq, _ in collector.snapshot() if boot == boot_id]


def test_readings_of_an_outage_survive_a_power_cut(fleet):
    """Broker unreachable, then the device loses power (SIGKILL) and boots again, still
    offline: what it had accepted was on flash and arrives once the broker is back."""
    members = fleet()
    first_boot = {runtime: collector.snapshot()[0][0] for runtime, _, collector, _ in members}
    on_flash = {}

    def outage_with_power_cut(member):
        runtime, proxy, collector, node = member
        proxy.refuse()
        proxy.reset()
        time.sleep(4)  # ~4 readings, offline
        on_flash[runtime] = outbox_seqs(node)
        node.kill()
        node.start()
        time.sleep(3)  # the new boot reads offline too
        proxy.heal()

    in_parallel(outage_with_power_cut, members)
    for runtime, proxy, collector, node in members:
        assert len(on_flash[runtime]) >= 2, (runtime, on_flash[runtime])
        deadline = time.monotonic() + 30
        while max([-1] + [seq for boot, seq, _ in collector.snapshot() if boot != first_boot[runtime]]) < 4:
            assert time.monotonic() < deadline, (runtime, collector.snapshot()[-3:], node.console()[-2000:])
            time.sleep(0.1)
        report = check_stream(collector.snapshot())
        assert len(report) == 2, (runtime, report)
        assert report[first_boot[runtime]][2] == 0, (runtime, report)  # nothing dropped...
        assert max(readings_of(collector, first_boot[runtime])) >= max(on_flash[runtime]), runtime  # ...or lost
        assert "outbox:" in node.console() and "from before the reset" in node.console(), runtime


def test_the_broker_killed_and_restarted_loses_nothing(fleet, broker):
    """mosquitto SIGKILLed, down 4 s, restarted on its persistence file: the nodes send
    what they kept, the retained status is online again, and a relay switched on with
    no duration went off at its max_on_s (3 s) with no broker to tell it."""
    members = fleet(relays={"irrigation": {"max_on_s": 3}})
    backend = Backend(broker, ["farm/+/command_response"])
    before = switch_irrigation_on(backend, members)
    backend.close()
    broker.kill()
    time.sleep(4)
    broker.start()
    for runtime, proxy, collector, node in members:
        unique, duplicates, dropped = next(iter(assert_delivered(collector, runtime, before[runtime] + 4).values()))
        assert dropped == 0, (runtime, unique, duplicates, dropped)
        readings = {seq: m for _, seq, m in collector.snapshot()}
        switched_off = min(seq for seq, m in readings.items() if seq > before[runtime] and not m["relays"]["irrigation"])
        on_for_s = readings[switched_off]["uptime_s"] - readings[before[runtime]]["uptime_s"]
        assert on_for_s <= 3 + 2, (runtime, on_for_s)  # whole seconds, a turn of the loop: not the outage
    status = Backend(broker, ["farm/+/status"], client_id="status-check")
    online = set()

    def all_online(topic, data, retain):
        # the retained statuses come in any order: each is noted as it comes
        if retain and data and data["status"] == "online":
            online.add(topic)
        return online == {f"farm/node-f{i}/status" for i in range(len(members))}

    try:
        status.wait_for(all_online)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nbroker log:\n{broker.log()[-4000:]}") from None
    finally:
        status.close()
