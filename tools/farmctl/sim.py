"""`farmctl sim`: a simulated farm. Starts mosquitto on a free loopback port (or uses
--broker), N virtual nodes running the real firmware on the field model, and shows
their telemetry and status live until Ctrl-C (or --duration), then stops what it started."""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from farmctl.broker import Mosquitto
from farmctl.nodes import VirtualNode
from farmctl.link import BrokerError, parse_broker
from farmctl.watch import Fleet, Monitor


def run(args, out=sys.stdout):
    workdir = Path(tempfile.mkdtemp(prefix="farmctl-sim-"))
    broker = None
    nodes = {}
    farm_ids = {}
    monitor = None
    try:
        if args.broker:
            try:
                host, port = parse_broker(args.broker)
            except argparse.ArgumentTypeError as exc:
                raise SystemExit(f"--broker {exc}") from None
        else:
            broker = Mosquitto(workdir / "broker").start()
            host, port = broker.host, broker.port
        field = str(Path(args.field).resolve()) if args.field else None
        for i in range(args.devices):
            device_id = f"node-{i + 1:02d}"
            farm_id = farm_ids[device_id] = f"farm_{i + 1:03d}"
            config = {"device_id": device_id, "farm_id": farm_id, "org_id": "org-demo",
                      "profile": args.profile, "interval_s": args.interval}
            secrets = {"wifi": {"ssid": "farm", "password": "farmpass"},
                       "mqtt": {"host": host, "port": port}}
            nodes[device_id] = VirtualNode(workdir / device_id, config, secrets, runtime=args.runtime,
                                           field_file=field, speed=args.speed, seed=i + 1,
                                           start_hour=6.0 + 3 * i)
        # The nodes' rows are there from the start; others on a shared broker join them.
        fleet = Fleet(args.profile, {"prefix": "farm", "org_id": "org-demo"},
                      devices=farm_ids)
        monitor = Monitor((host, port), fleet, "sim", echo=None if out.isatty() else out)
        for node in nodes.values():
            node.start()
        out.write(f"broker {host}:{port}; {len(nodes)} nodes ({args.runtime}, profile {args.profile}); "
                  f"files in {workdir}; Ctrl-C stops\n")
        out.flush()
        started = time.monotonic()
        while args.duration is None or time.monotonic() - started < args.duration:
            time.sleep(1)
            for device, node in nodes.items():
                if not node.running():  # a device that died reboots, as its watchdog would
                    out.write(f"{device} exited ({node.process.returncode}); restarting\n")
                    node.start(reset_cause=2)
            if out.isatty():
                monitor.show(out)
    except KeyboardInterrupt:
        pass
    except BrokerError as exc:
        raise SystemExit(f"farmctl sim: {exc}") from None
    finally:
        for node in nodes.values():
            node.stop()
        if monitor is not None:
            monitor.close()  # first: no message line may come after the table
            monitor.show(out)
        if broker is not None:
            broker.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0
