"""`farmctl sim`: a simulated farm. Starts mosquitto on a free loopback port (or uses
--broker), N virtual nodes running the real firmware on the field model, and shows
their telemetry and status live until Ctrl-C (or --duration), then stops what it started."""
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from farmctl.broker import Mosquitto
from farmctl.nodes import VirtualNode
from firmware.profiles import Profile

# Where each telemetry name may hide in a profile's payload (lower-cased keys).
COLUMNS = (
    ("moist%", ("moisture",)),
    ("temp", ("temp", "temperaturec", "temperature")),
    ("hum%", ("humidity", "humiditypct")),
    ("N", ("n",)),
    ("P", ("p",)),
    ("K", ("k",)),
    ("EC", ("ec", "ec_salinity")),
    ("pH", ("ph", "soil_ph")),
    ("wind", ("wind_speed",)),
)
ID_KEYS = ("device_id", "node_id", "publisher_id", "farm_id")


def flatten(payload, out=None):
    out = {} if out is None else out
    if isinstance(payload, dict):
        for key, value in payload.items():
            if isinstance(value, dict):
                flatten(value, out)
            else:
                out.setdefault(key.lower(), value)
    return out


class Monitor:
    """A backend-side view of the nodes: the latest telemetry and status of each."""

    def __init__(self, host, port, nodes, out=sys.stdout):
        self.nodes = nodes  # device_id -> (farm_id, Profile)
        self.out = out
        self.rows = {device: {"status": "-", "seq": None, "at": None, "values": {}} for device in nodes}
        self.lock = threading.Lock()
        self.messages = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="farmctl-sim-monitor")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def _topics(self):
        topics = set()
        for _, profile in self.nodes.values():
            topics.add(profile.topics["telemetry"])
            topics.add(profile.topics["status"])
        return sorted(topics)

    def _on_connect(self, client, userdata, flags, reason, properties):
        for topic in self._topics():
            client.subscribe(topic, qos=1)

    def _device_of(self, topic, payload):
        owners = [d for d, (_, p) in self.nodes.items() if topic in (p.topics["telemetry"], p.topics["status"])]
        if len(owners) == 1:
            return owners[0]
        for key in ID_KEYS:  # a topic the nodes share: the payload says who
            value = payload.get(key) if isinstance(payload, dict) else None
            for device, (farm_id, _) in self.nodes.items():
                if value in (device, farm_id):
                    return device
        return None

    def _on_message(self, client, userdata, msg):
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            return
        device = self._device_of(msg.topic, payload)
        if device is None:
            return
        with self.lock:
            row = self.rows[device]
            _, profile = self.nodes[device]
            if msg.topic == profile.topics["status"] and "status" in payload:
                row["status"] = payload["status"]
            else:
                flat = flatten(payload)
                if flat.get("type") == "STATUS":  # seed 000's actuator ack
                    return
                row["values"] = flat
                row["seq"] = flat.get("seq")
                row["at"] = time.monotonic()
                self.messages += 1
                if not self.out.isatty():
                    self.out.write(f"{device} telemetry {self._cells(row)}\n")
                    self.out.flush()

    def _cells(self, row):
        cells = []
        for title, keys in COLUMNS:
            value = next((row["values"][k] for k in keys if k in row["values"]), None)
            cells.append(f"{title}={'-' if value is None else value}")
        return " ".join(cells)

    def table(self):
        lines = [f"{'device':14} {'status':8} {'seq':>5} {'age':>5}  readings"]
        with self.lock:
            for device, row in self.rows.items():
                age = "-" if row["at"] is None else f"{time.monotonic() - row['at']:.0f}s"
                seq = "-" if row["seq"] is None else row["seq"]
                lines.append(f"{device:14} {row['status']:8} {seq:>5} {age:>5}  {self._cells(row)}")
        return "\n".join(lines)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def parse_broker(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"--broker must be HOST:PORT, got {text!r}")
    return host, int(port)


def run(args, out=sys.stdout):
    workdir = Path(tempfile.mkdtemp(prefix="farmctl-sim-"))
    broker = None
    nodes = {}
    monitor = None
    try:
        if args.broker:
            host, port = parse_broker(args.broker)
        else:
            broker = Mosquitto(workdir / "broker").start()
            host, port = broker.host, broker.port
        field = str(Path(args.field).resolve()) if args.field else None
        for i in range(args.devices):
            device_id = f"node-{i + 1:02d}"
            farm_id = f"farm_{i + 1:03d}"
            config = {"device_id": device_id, "farm_id": farm_id, "org_id": "org-demo",
                      "profile": args.profile, "interval_s": args.interval}
            secrets = {"wifi": {"ssid": "farm", "password": "farmpass"},
                       "mqtt": {"host": host, "port": port}}
            nodes[device_id] = VirtualNode(workdir / device_id, config, secrets, runtime=args.runtime,
                                           field_file=field, speed=args.speed, seed=i + 1,
                                           start_hour=6.0 + 3 * i)
        identities = {d: (f"farm_{i + 1:03d}", Profile(args.profile, {
            "prefix": "farm", "device_id": d, "farm_id": f"farm_{i + 1:03d}", "org_id": "org-demo"}))
            for i, d in enumerate(nodes)}
        monitor = Monitor(host, port, identities, out)
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
                out.write("\x1b[H\x1b[2J" + monitor.table() + "\n")
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        for node in nodes.values():
            node.stop()
        if monitor is not None:
            out.write(monitor.table() + "\n")
            monitor.close()
        if broker is not None:
            broker.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0
