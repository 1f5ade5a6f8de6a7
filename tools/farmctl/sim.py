"""`farmctl sim`: a simulated farm. Starts mosquitto on a free loopback port (or uses
--broker), N virtual nodes running the real firmware on the field model, and shows
their telemetry and status live until Ctrl-C (or --duration), then stops what it started.

A few nodes run one process each; a larger farm (more than SOLO_MAX nodes, or any
--per-process above 1) runs several nodes per process (farmsim/harness/virtual_fleet.py),
so that a thousand fit on two cores. Its table then sums the fleet up."""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from farmctl.broker import Mosquitto
from farmctl.link import BrokerError, parse_broker
from farmsim.nodes import VirtualFleet, VirtualNode, split
from farmctl.stopping import stop_on_signals
from farmctl.watch import Fleet, Monitor

SOLO_MAX = 10  # up to this many nodes, one process each (unless --per-process says otherwise)
# Nodes per process above that. bench/fleet.py (1,000 nodes, two cores): CPU per node is
# the same for 20, 40 or 100 per process; memory per node falls as the processes get
# fewer (each carries an interpreter); 50 keeps what one stuck process takes down small.
PER_PROCESS = 50
LOG_SUMMARY_S = 10  # without a terminal, a big fleet's count line this often (not every message)
LOG_ROWS = 20  # without a terminal, the final table of a big fleet shows this many devices


def per_process(args):
    if args.per_process is not None:
        return max(1, args.per_process)
    return 1 if args.devices <= SOLO_MAX else PER_PROCESS


def make_processes(args, workdir, host, port, field):
    """The node processes (VirtualNode, or VirtualFleet for groups), and {device: farm}."""
    farm_ids = {}
    members = []
    for i in range(args.devices):
        device_id = f"node-{i + 1:02d}"
        farm_id = farm_ids[device_id] = f"farm_{i + 1:03d}"
        config = {"device_id": device_id, "farm_id": farm_id, "org_id": "org-demo",
                  "profile": args.profile, "interval_s": args.interval}
        secrets = {"wifi": {"ssid": "farm", "password": "farmpass"}, "mqtt": {"host": host, "port": port}}
        members.append((workdir / device_id, config, secrets, i + 1, (6.0 + 3 * i) % 24))
    size = per_process(args)
    if size == 1:
        return [VirtualNode(root, config, secrets, runtime=args.runtime, field_file=field, speed=args.speed,
                            seed=seed, start_hour=hour)
                for root, config, secrets, seed, hour in members], farm_ids
    processes = []
    first = 0
    for count in split(len(members), size):
        processes.append(VirtualFleet(workdir / f"process-{len(processes) + 1:02d}", members[first:first + count],
                                      runtime=args.runtime, field_file=field, speed=args.speed,
                                      idle_ms=args.idle_ms))
        first += count
    return processes, farm_ids


def describe(process):
    if isinstance(process, VirtualFleet):
        return f"{process.workdir.name} ({process.roots[0].name}..{process.roots[-1].name})"
    return process.root.name


def run(args, out=sys.stdout):
    stop_on_signals()
    workdir = Path(tempfile.mkdtemp(prefix="farmctl-sim-"))
    broker = None
    processes = []
    monitor = None
    try:
        if args.broker:
            try:
                host, port = parse_broker(args.broker)
            except argparse.ArgumentTypeError as exc:
                raise SystemExit(f"--broker {exc}") from None
        else:
            broker = Mosquitto(workdir / "broker", tethered=True).start()
            host, port = broker.host, broker.port
        field = str(Path(args.field).resolve()) if args.field else None
        processes, farm_ids = make_processes(args, workdir, host, port, field)
        # The nodes' rows are there from the start; others on a shared broker join them.
        fleet = Fleet(args.profile, {"prefix": "farm", "org_id": "org-demo"}, devices=farm_ids)
        tty = out.isatty()
        big = args.devices > LOG_ROWS
        monitor = Monitor((host, port), fleet, "sim", echo=None if tty or big else out)
        for process in processes:
            process.start()
        grouping = f" in {len(processes)} processes" if len(processes) < args.devices else ""
        out.write(f"broker {host}:{port}; {args.devices} nodes ({args.runtime}, profile {args.profile}){grouping}; "
                  f"files in {workdir}; Ctrl-C stops\n")
        out.flush()
        started = last_summary = time.monotonic()
        while args.duration is None or time.monotonic() - started < args.duration:
            time.sleep(1)
            for process in processes:
                if not process.running():  # a device that died reboots, as its watchdog would
                    out.write(f"{describe(process)} exited ({process.process.returncode}); restarting\n")
                    process.start(reset_cause=2)
            if tty:
                monitor.show(out)
            elif big and time.monotonic() - last_summary >= LOG_SUMMARY_S:
                last_summary = time.monotonic()
                with monitor.lock:
                    out.write(fleet.counts() + "\n")
                out.flush()
    except KeyboardInterrupt:
        pass
    except BrokerError as exc:
        raise SystemExit(f"farmctl sim: {exc}") from None
    finally:
        for process in processes:  # all at once: a fleet takes a moment to say offline
            if isinstance(process, VirtualFleet) and process.running():
                process.request_stop()
        for process in processes:
            process.stop()
        if monitor is not None:
            monitor.close()  # first: no message line may come after the table
            monitor.show(out, None if out.isatty() else LOG_ROWS)
        if broker is not None:
            broker.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0
