"""Faults between the device and the broker (a TCP fault proxy), under both runtimes at
once: what the device accepted arrives, once after de-duplication, in order; relays obey
max_on_s; memory comes back. Loopback only, bounded in count and time."""
import random
import threading
import time

import pytest

from faultproxy import FaultProxy
from telemetry_check import Collector, check_stream

RUNTIMES = ("micropython", "cpython")


@pytest.fixture
def fleet(broker, nodes):
    """One node per runtime, each behind its own fault proxy, each with a collector."""
    started = []

    def make(**config):
        out = []
        for i, runtime in enumerate(RUNTIMES):
            proxy = FaultProxy(broker.host, broker.port)
            device = f"node-f{i}"
            collector = Collector(broker, f"farm/{device}/telemetry", f"collector-{device}")
            cfg = {"device_id": device, "interval_s": 1, "mqtt": {"keepalive": 2}, **config}
            node = nodes(broker, runtime, cfg, {"mqtt": {"host": proxy.host, "port": proxy.port}})
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


def assert_delivered(collector, runtime, since_seq):
    """A reading taken after the faults has arrived, then the whole stream is checked."""
    collector.wait_for_seq(since_seq + 2, timeout_s=40)
    report = check_stream(collector.snapshot())
    assert len(report) == 1, f"{runtime}: the node rebooted: {report}"
    return report


def heap_free(collector):
    return [meta["heap_free"] for _, _, meta in collector.snapshot() if meta.get("heap_free")]


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
            assert max(heap_free(collector)[-5:]) > heap_before[runtime] - 16384, heap_free(collector)


def test_a_black_hole_is_detected_and_nothing_is_lost(fleet):
    members = fleet()
    before = {runtime: collector.last_seq() for runtime, _, collector, _ in members}

    def swallow(member):
        runtime, proxy, collector, node = member
        connections = proxy.connections
        proxy.black_hole()  # both ways: the socket stays open, nothing passes
        time.sleep(8)  # keepalive 2 s: the node must notice by itself
        proxy.heal()
        deadline = time.monotonic() + 20
        while proxy.connections == connections:
            assert time.monotonic() < deadline, f"{runtime}: never reconnected after the black hole"
            time.sleep(0.1)

    in_parallel(swallow, members)
    for runtime, proxy, collector, node in members:
        # The ~8 readings taken while nothing passed arrive afterwards, with no gap.
        unique, duplicates, dropped = next(iter(assert_delivered(collector, runtime, before[runtime] + 8).values()))
        assert dropped == 0, (runtime, unique, duplicates, dropped)


def test_the_stream_check_catches_loss_disorder_and_counts_duplicates():
    meta = {"dropped": 0}
    assert check_stream([("b1", 0, meta), ("b1", 1, meta), ("b1", 1, meta), ("b1", 2, meta)]) == {"b1": (3, 1, 0)}
    with pytest.raises(AssertionError, match="1 readings lost"):
        check_stream([("b1", 0, meta), ("b1", 2, meta)])
    assert check_stream([("b1", 0, meta), ("b1", 2, {"dropped": 1})]) == {"b1": (2, 0, 1)}  # counted: allowed
    with pytest.raises(AssertionError, match="out of order"):
        check_stream([("b1", 0, meta), ("b1", 2, meta), ("b1", 1, meta)])
