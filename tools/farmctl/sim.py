"""`farmctl sim`: a simulated farm. Starts mosquitto on a free loopback port (or uses
--broker), N virtual nodes running the real firmware on the field model, and shows
their telemetry and status live until Ctrl-C (or --duration), then stops what it started.

A few nodes run one process each; a larger farm (more than 10 nodes, or any
--per-process above 1) runs several nodes per process (farmsim/harness/virtual_fleet.py),
so that a thousand fit on two cores. Its table then sums the fleet up.

--config FILE (a device's config.json) and --secrets FILE (its secrets.json) simulate
your own node: its relays, interlocks, profile, calibration and alerts, on every node
(device ids still numbered node-01, node-02...; farm_id and org_id numbered unless the
file sets them). Both are checked first, by the firmware's own validator: a file the
device would refuse stops the sim before any node starts (exit 2). From the secrets,
what cannot work here is left out: the nodes reach the sim's broker, without TLS.

--outage AT:FOR stops the sim's own broker AT seconds after the start for FOR seconds:
the nodes go on by themselves (an automation's runs, readings kept on flash), and what
they sent meanwhile arrives, in order, once it is back (the table's session with the
broker is kept for it)."""
import argparse
import copy
import shutil
import sys
import tempfile
import time
from pathlib import Path

from farmctl.broker import Mosquitto
from farmctl.link import BrokerError, parse_broker
from farmctl.settings import SettingsError, load_checked
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
DEFAULT_PROFILE = "farmnode"
DEFAULT_INTERVAL_S = 3
SIM_WIFI = {"ssid": "farm", "password": "farmpass"}  # the simulated access point, unless the secrets name one
# What a simulated node cannot use: the sim's broker is plain MQTT on loopback, and the
# unix port has no micropython-lib umqtt (the node's own client stands in).
SIM_MQTT = {"tls": False, "ca": "", "client": "farmnode"}


class Settings:
    """What every node is given: the user's config and secrets (checked), with the
    profile and interval resolved (command line, then the file, then the defaults)."""

    def __init__(self, args, out):
        self.config = self._load("--config", args.config)
        self.secrets = self._load("--secrets", args.secrets)
        self.secrets_path = args.secrets
        self.profile = args.profile or self.config.get("profile") or DEFAULT_PROFILE
        self.interval_s = args.interval or self.config.get("interval_s") or DEFAULT_INTERVAL_S
        left_out = [f"mqtt.{key}" for source in (self.config, self.secrets)
                    for key, value in (source.get("mqtt") or {}).items()
                    if key in SIM_MQTT and value != SIM_MQTT[key]]
        if left_out:
            out.write(f"not simulated: {', '.join(sorted(set(left_out)))} (the nodes reach the sim's broker "
                      "in plain MQTT with the firmware's own client)\n")

    @staticmethod
    def _load(option, path):
        if not path:
            return {}
        try:
            return load_checked(path)
        except SettingsError as exc:
            raise SimUsage(f"{option} {exc}") from None

    def node(self, index, host, port):
        """(config, secrets) of node index (1, 2...)."""
        config = copy.deepcopy(self.config)
        config.update({"device_id": f"node-{index:02d}", "profile": self.profile, "interval_s": self.interval_s})
        config.setdefault("farm_id", f"farm_{index:03d}")
        config.setdefault("org_id", "org-demo")
        secrets = copy.deepcopy(self.secrets)
        secrets.setdefault("wifi", dict(SIM_WIFI))
        if isinstance(config.get("mqtt"), dict):
            config["mqtt"].update(SIM_MQTT)
        secrets["mqtt"] = dict(secrets.get("mqtt") or {}, host=host, port=port, **SIM_MQTT)
        return config, secrets


def next_steps(settings, host, port, field):
    """What a newcomer can do next: the command line that switches a relay of node-01
    on this broker, and how to steer the field."""
    from firmware import config as firmware_config
    from firmware.profiles import topic_templates

    cfg = firmware_config.apply(firmware_config.defaults(), settings.config)
    relay = next(iter(cfg["relays"]), None)
    if "commands" not in topic_templates(settings.profile):
        switch = f"profile {settings.profile} takes no commands"
    elif relay is None:
        switch = "no relay configured"
    else:
        options = [f"--broker {host}:{port}"]
        if settings.profile != DEFAULT_PROFILE:
            options.append(f"--profile {settings.profile}")
        if "{farm_id}" in topic_templates(settings.profile)["commands"]:
            options.append(f"--farm {settings.node(1, host, port)[0]['farm_id']}")
        if cfg["mqtt"]["prefix"] != "farm":
            options.append(f"--prefix {cfg['mqtt']['prefix']}")
        if settings.secrets_path and (settings.secrets.get("signing") or {}).get("key"):
            options.append(f"--key-file {settings.secrets_path}")
        switch = (f"farmctl send node-01 relay relay={relay} state=on duration_s=60 " + " ".join(options))
    hint = (f"switch a relay: {switch}\n"
            f"steer the field: edit {field} (JSON, re-read when it changes), e.g. "
            '{"moisture": 12.5, "faults": {"dht": "timeout"}}; README.md: The field model')
    if settings.profile == DEFAULT_PROFILE and cfg["homeassistant"]["discovery"]:
        hint += (f"\nHome Assistant: add its MQTT integration with broker {host} port {port};"
                 " the nodes appear as devices (README.md: Home Assistant)")
    return hint


class SimUsage(Exception):
    """The command line or a file it names cannot be simulated (exit 2)."""


def per_process(args):
    if args.per_process is not None:
        return max(1, args.per_process)
    return 1 if args.devices <= SOLO_MAX else PER_PROCESS


def make_processes(args, settings, workdir, host, port, field):
    """The node processes (VirtualNode, or VirtualFleet for groups), and {device: farm}."""
    farm_ids = {}
    members = []
    for i in range(args.devices):
        config, secrets = settings.node(i + 1, host, port)
        farm_ids[config["device_id"]] = config["farm_id"]
        members.append((workdir / config["device_id"], config, secrets, i + 1, (6.0 + 3 * i) % 24))
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


class Outage:
    """The sim's broker stopped at `at` seconds for `length` seconds, then started again
    on its port (its persistence keeps the sessions)."""

    def __init__(self, broker, at, length, out):
        self.broker = broker
        self.at = at
        self.length = length
        self.out = out
        self.down_since = None
        self.done = False

    def step(self, elapsed):
        if self.done:
            return
        if self.down_since is None and elapsed >= self.at:
            self.broker.stop()
            self.down_since = elapsed
            self.out.write(f"outage: broker stopped for {self.length:g} s; the nodes go on by themselves\n")
        elif self.down_since is not None and elapsed - self.down_since >= self.length:
            # Not tethered again: the parent-death hook runs between fork and exec, unsafe
            # now that threads run; the sim's finally stops it as before.
            self.broker.tethered = False
            self.broker.start()
            self.done = True
            self.out.write("outage: broker back; what the nodes kept arrives now, in order\n")
        self.out.flush()


def run(args, out=sys.stdout):
    stop_on_signals()
    try:
        if args.outage and args.broker:
            raise SimUsage("--outage stops the sim's own broker: not with --broker")
        settings = Settings(args, out)  # before anything starts: a bad file starts nothing
    except SimUsage as exc:
        print(f"farmctl sim: {exc}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="farmctl-sim-"))
    broker = None
    processes = []
    monitor = None
    outage = None
    try:
        if args.broker:
            try:
                host, port = parse_broker(args.broker)
            except argparse.ArgumentTypeError as exc:
                raise SystemExit(f"--broker {exc}") from None
        else:
            broker = Mosquitto(workdir / "broker", tethered=True).start()
            host, port = broker.host, broker.port
        if args.field:
            field = Path(args.field).resolve()
        else:  # one to steer it by, ready to edit
            field = workdir / "field.json"
            field.write_text("{}\n")
        processes, farm_ids = make_processes(args, settings, workdir, host, port, str(field))
        # The nodes' rows are there from the start; others on a shared broker join them.
        prefix = (settings.config.get("mqtt") or {}).get("prefix", "farm")
        fleet = Fleet(settings.profile, {"prefix": prefix, "org_id": settings.config.get("org_id", "org-demo")},
                      devices=farm_ids, speed=args.speed)  # a sleeping node wakes at the field's speed
        tty = out.isatty()
        big = args.devices > LOG_ROWS
        monitor = Monitor((host, port), fleet, "sim", echo=None if tty or big else out,
                          persistent=broker is not None)  # our broker: a session it keeps through --outage
        if args.outage:
            outage = Outage(broker, *args.outage, out)
        for process in processes:
            process.start()
        grouping = f" in {len(processes)} processes" if len(processes) < args.devices else ""
        out.write(f"broker {host}:{port}; {args.devices} nodes ({args.runtime}, profile {settings.profile})"
                  f"{grouping}; files in {workdir}; Ctrl-C stops\n")
        hint = next_steps(settings, host, port, field)
        out.write(hint + "\n")
        out.flush()
        started = last_summary = time.monotonic()
        while args.duration is None or time.monotonic() - started < args.duration:
            time.sleep(1)
            if outage is not None:
                outage.step(time.monotonic() - started)
            for process in processes:
                if not process.running():  # a device that died reboots, as its watchdog would
                    out.write(f"{describe(process)} exited ({process.process.returncode}); restarting\n")
                    process.start(reset_cause=2)
            if tty:
                monitor.show(out, footer=hint)
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
