"""Fleet scale: N virtual nodes running the real firmware, several per process
(farmsim/harness/virtual_fleet.py), against one mosquitto on loopback, telemetry every
--interval s; a paho collector with a persistent QoS 1 session counts every reading per
device (boot_id, seq): received, duplicates, missing, meta.dropped. Measured over
--duration s once every node is online: CPU (user+sys from /proc) of the node
processes and of mosquitto, memory (RSS, and the MicroPython heap), achieved msg/s.

    .venv/bin/python bench/fleet.py --devices 1000 --duration 300

Human progress first; the last line of stdout is one JSON object with the figures.
Bounded: a hard timeout, and every process it started is stopped on exit or Ctrl-C."""
import checkout  # noqa: F401, I001  first: the farmctl of this checkout (bench/checkout.py)
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from farmctl.broker import Mosquitto
from farmsim.nodes import VirtualFleet, split
from farmctl.sim import PER_PROCESS

# Nothing in the broker may drop a QoS 1 message: the collector's queue is bounded
# only far beyond what a run can fill, and a large window of messages in flight keeps
# one slow acknowledgement from holding up the others.
BROKER_CONFIG = "max_queued_messages 1000000\nmax_queued_bytes 0\nmax_inflight_messages 100\n"
ONLINE_TIMEOUT_S = 300  # every node online (status and a first reading)
SETTLE_S = 3  # after the nodes stop: the last acknowledged readings reach the collector
PROGRESS_S = 30
CLK_TCK = os.sysconf("SC_CLK_TCK")
FIGURES = ("devices", "processes", "runtime", "duration_s", "expected", "received", "lost", "duplicates", "dropped",
           "msg_per_s", "cpu_pct_per_node", "cpu_pct_mosquitto", "rss_kb_per_node", "heap_kb_per_node")


class FleetFailed(Exception):
    """The fleet could not be brought up or measured; the message says why."""


class Collector:
    """Per device and boot: the seqs received, duplicates, the highest meta.dropped; and
    which devices said online. Its session is persistent (clean_session False), QoS 1."""

    def __init__(self, broker):
        self.lock = threading.Lock()
        self.boots = {}  # (device, boot_id) -> set of seqs
        self.duplicates = 0
        self.dropped = {}  # (device, boot_id) -> highest meta.dropped
        self.telemetry = 0  # messages, duplicates included
        self.online = set()
        self.disconnects = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fleet-bench-collector",
                                  clean_session=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties):
        client.subscribe([("farm/+/telemetry", 1), ("farm/+/status", 1)])

    def _on_disconnect(self, *args):
        self.disconnects += 1

    def _on_message(self, client, userdata, message):
        data = json.loads(message.payload)
        device = message.topic.split("/")[1]
        with self.lock:
            if message.topic.endswith("/status"):
                if data.get("status") == "online":
                    self.online.add(device)
                else:
                    self.online.discard(device)
                return
            self.telemetry += 1
            key = (device, data["boot_id"])
            seqs = self.boots.setdefault(key, set())
            if data["seq"] in seqs:
                self.duplicates += 1
            seqs.add(data["seq"])
            dropped = data["meta"].get("dropped") or 0
            if dropped > self.dropped.get(key, 0):
                self.dropped[key] = dropped

    def counts(self):
        with self.lock:
            return self.telemetry, len(self.online), len({device for device, _ in self.boots})

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def cpu_ticks(pid):
    """user + system clock ticks of a process so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def memory_kb(pid, field):
    """A line of /proc/PID/status in kB: VmRSS (resident, shared libraries included)
    or RssAnon (the process's own)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def build_fleets(workdir, broker, args):
    fleets = []
    first = 0
    for count in split(args.devices, args.per_process):
        members = []
        for i in range(first, first + count):
            device = f"node-{i + 1:04d}"
            config = {"device_id": device, "farm_id": f"farm_{i + 1:04d}", "interval_s": args.interval}
            secrets = {"wifi": {"ssid": "farm", "password": "farmpass"},
                       "mqtt": {"host": broker.host, "port": broker.port}}
            members.append((workdir / "nodes" / device, config, secrets, i + 1, (6.0 + 0.37 * i) % 24))
        fleets.append(VirtualFleet(workdir / f"process-{len(fleets):03d}", members, runtime=args.runtime,
                                   idle_ms=args.idle_ms))
        first += count
    return fleets


def wait_online(collector, fleets, devices, timeout_s):
    """Until every device said online and sent a reading; returns the seconds it took."""
    started = time.monotonic()
    last_note = started
    while True:
        _, online, reporting = collector.counts()
        if online >= devices and reporting >= devices:
            return time.monotonic() - started
        dead = [f for f in fleets if not f.running()]
        if dead:
            print(dead[0].console()[-2000:], flush=True)
            raise FleetFailed(f"{dead[0].workdir.name} ended during start-up")
        if time.monotonic() - started > timeout_s:
            raise FleetFailed(f"only {online} of {devices} nodes online after {timeout_s} s")
        if time.monotonic() - last_note >= 10:
            last_note = time.monotonic()
            print(f"  {online} online, {reporting} reporting", flush=True)
        time.sleep(0.2)


def measure(collector, fleets, broker, duration_s):
    """CPU of every node process and of mosquitto, memory, and the readings received,
    over the window (cut short if a node process ends)."""
    pids = [f.process.pid for f in fleets]
    before = {pid: cpu_ticks(pid) for pid in pids + [broker.process.pid, os.getpid()]}
    received_before = collector.counts()[0]
    started = time.monotonic()
    next_note = started + PROGRESS_S
    died = None
    while time.monotonic() - started < duration_s and died is None:
        time.sleep(min(1.0, max(0.0, duration_s - (time.monotonic() - started))))
        died = next((f for f in fleets if not f.running()), None)
        if time.monotonic() >= next_note:
            next_note += PROGRESS_S
            received, online, _ = collector.counts()
            elapsed = time.monotonic() - started
            print(f"  {elapsed:4.0f} s: {(received - received_before) / elapsed:6.1f} msg/s, {online} online",
                  flush=True)
    elapsed = time.monotonic() - started
    after = {pid: cpu_ticks(pid) for pid in before}
    rss = [memory_kb(pid, "VmRSS") for pid in pids]
    anon = [memory_kb(pid, "RssAnon") for pid in pids]
    heaps = [(f.stats() or {}).get("heap_used") for f in fleets]
    received = collector.counts()[0] - received_before

    def cpu_pct(pid_list):
        ticks = sum(after[p] - before[p] for p in pid_list if after[p] is not None and before[p] is not None)
        return 100.0 * ticks / CLK_TCK / elapsed

    def total(values):
        return None if None in values else sum(values)

    if died is not None:
        print(f"{died.workdir.name} ended after {elapsed:.0f} s:\n{died.console()[-1500:]}", flush=True)
    return {"elapsed": elapsed, "received": received, "cpu_nodes": cpu_pct(pids),
            "cpu_mosquitto": cpu_pct([broker.process.pid]), "cpu_collector": cpu_pct([os.getpid()]),
            "rss_kb": total(rss), "anon_kb": total(anon),
            "heap": total(heaps), "alive": sum(f.running() for f in fleets)}


def tally(collector, fleets):
    """Expected readings per boot: the final seq a node reported at its stop (or, for a
    boot that ended before, the highest seq received + 1); lost: expected ones never
    received, less those still unsent on the node when it stopped."""
    expected = lost = unsent = loop_errors = reboots = 0
    final = {}
    for fleet in fleets:
        stats = fleet.stats() or {}
        if not stats.get("final"):
            continue
        for member in stats["members"]:
            if member.get("boot_id") is not None:
                final[(member["device"], member["boot_id"])] = member
                unsent += member["queued"] + member["inflight"]
                loop_errors += member["loop_errors"]
            reboots += member["boots"] - 1
    with collector.lock:
        boots = {key: set(seqs) for key, seqs in collector.boots.items()}
        dropped = sum(collector.dropped.values())
        duplicates = collector.duplicates
    for key in set(boots) | set(final):
        seqs = boots.get(key, set())
        due = max(final[key]["seq"] if key in final else 0, max(seqs) + 1 if seqs else 0)
        expected += due
        lost += due - len({s for s in seqs if s < due})
    missing_final = sum(1 for f in fleets if not (f.stats() or {}).get("final"))
    received = sum(len(s) for s in boots.values())
    return {"expected": expected, "received": received, "lost": max(0, lost - unsent), "unsent": unsent,
            "duplicates": duplicates, "dropped": dropped, "loop_errors": loop_errors, "reboots": reboots,
            "processes_without_final_stats": missing_final}


def run(args):
    workdir = Path(tempfile.mkdtemp(prefix="farmnode-fleet-"))
    broker = collector = None
    fleets = []
    try:
        broker = Mosquitto(workdir / "broker", persistence=False, extra_config=BROKER_CONFIG).start()
        collector = Collector(broker)
        fleets = build_fleets(workdir, broker, args)
        print(f"fleet: {args.devices} nodes ({args.runtime}) in {len(fleets)} processes of up to "
              f"{args.per_process}, telemetry every {args.interval} s "
              f"(~{args.devices / args.interval:.0f} msg/s), mosquitto {broker.address}", flush=True)
        for fleet in fleets:
            fleet.start()
        online_s = wait_online(collector, fleets, args.devices, ONLINE_TIMEOUT_S)
        print(f"all {args.devices} nodes online in {online_s:.1f} s; settling for {2 * args.interval} s, "
              f"then measuring for {args.duration:.0f} s", flush=True)
        time.sleep(2 * args.interval)  # the start's backlog (late first readings) out of the window
        window = measure(collector, fleets, broker, args.duration)
        print("stopping: each node sends what it took, then says offline", flush=True)
        for fleet in fleets:
            fleet.request_stop()
        for fleet in fleets:
            fleet.stop(timeout_s=30)
        time.sleep(SETTLE_S)
        counts = tally(collector, fleets)
        result = {
            "devices": args.devices, "processes": len(fleets), "per_process": args.per_process,
            "runtime": args.runtime, "interval_s": args.interval, "duration_s": round(window["elapsed"], 1),
            "online_s": round(online_s, 1),
            **counts,
            "msg_per_s": round(window["received"] / window["elapsed"], 1),
            "cpu_pct_per_node": round(window["cpu_nodes"] / args.devices, 3),
            "cpu_pct_nodes": round(window["cpu_nodes"], 1),
            "cpu_pct_mosquitto": round(window["cpu_mosquitto"], 1),
            "cpu_pct_collector": round(window["cpu_collector"], 1),
            "rss_kb_per_node": None if window["rss_kb"] is None else round(window["rss_kb"] / args.devices, 1),
            "rss_anon_kb_per_node": None if window["anon_kb"] is None else round(window["anon_kb"] / args.devices, 1),
            "heap_kb_per_node": None if window["heap"] is None else round(window["heap"] / 1024 / args.devices, 1),
            "processes_alive": window["alive"], "collector_disconnects": collector.disconnects,
        }
        print(f"received {result['received']} of {result['expected']} readings: lost {result['lost']}, "
              f"unsent at stop {result['unsent']}, duplicates {result['duplicates']}, dropped "
              f"{result['dropped']}; {result['msg_per_s']} msg/s; CPU {result['cpu_pct_nodes']} % nodes "
              f"({result['cpu_pct_per_node']} % each), {result['cpu_pct_mosquitto']} % mosquitto", flush=True)
        failed = result["processes_alive"] < len(fleets)
        if failed:
            result["error"] = f"{len(fleets) - result['processes_alive']} node processes ended during the run"
        print(json.dumps(result), flush=True)
        return 1 if failed else 0
    except (FleetFailed, TimeoutError) as exc:
        print(f"fleet benchmark failed: {exc}", flush=True)
        result = dict.fromkeys(FIGURES)
        result.update(devices=args.devices, processes=len(fleets), runtime=args.runtime, error=str(exc))
        print(json.dumps(result), flush=True)
        return 1
    finally:
        for fleet in fleets:
            if fleet.process is not None:
                try:
                    fleet.stop(timeout_s=0)
                except Exception as exc:  # noqa: BLE001 (stop the others whatever happens)
                    print(f"stopping {fleet.workdir.name}: {exc}", file=sys.stderr)
        if collector is not None:
            collector.close()
        if broker is not None:
            broker.stop()
        if args.keep:
            print(f"files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=300, help="measured seconds once all are online")
    parser.add_argument("--per-process", type=int, default=PER_PROCESS,
                        help=f"nodes per process (default {PER_PROCESS}, as farmctl sim)")
    parser.add_argument("--runtime", choices=("micropython", "cpython"), default="micropython")
    parser.add_argument("--interval", type=int, default=3, help="telemetry period, s (default 3)")
    parser.add_argument("--idle-ms", type=int, default=250,
                        help="longest wait of an idle node for its turn (default 250, as farmctl sim)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="hard limit on the whole run, s (default: start-up bound + duration + 120)")
    parser.add_argument("--keep", action="store_true", help="keep the nodes' files and logs")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.per_process < 1:
        parser.error("--devices and --per-process must be at least 1")
    timeout = args.timeout or ONLINE_TIMEOUT_S + args.duration + 120

    def expire(*_):
        raise TimeoutError(f"fleet benchmark: hard timeout of {timeout:.0f} s")

    signal.signal(signal.SIGALRM, expire)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stopped from outside: clean up too
    signal.alarm(int(timeout))
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted; everything stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
