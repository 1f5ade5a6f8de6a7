"""What the heap-floor and loop-latency benchmarks share: the device code compiled with
mpy-cross as it is deployed, a device-side script run from it under a given heap, and
paho on a private mosquitto (a listener that stamps arrivals, a backend that sends)."""
import checkout  # noqa: F401, I001  first: the farmctl of this checkout (bench/checkout.py)
import collections
import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from farmctl import deploy
from farmsim import HARNESS as SIM_HARNESS
from farmsim import STUBS
from farmsim.runtime import cpython_env, find_micropython, stop_process

BENCH = Path(__file__).resolve().parent
# Device-side scripts of the benchmarks and the harness they use, compiled with the rest.
HARNESS = [BENCH / "bench_node.py", BENCH / "bare_loop.py", BENCH / "heap_profile.py", BENCH / "publisher.py",
           SIM_HARNESS / "virtual_node.py", SIM_HARNESS / "lifeline.py"]
# What a run that passes never prints: the firmware logs an exception it survived
# ("loop: ...", "message on ... dropped: ...") rather than dying of it.
ERROR_MARKS = ("MemoryError", "Traceback", "loop: ", "message on ")
SSID, PASSWORD = "farm", "farmpass"  # the simulated access point
RECONNECT_TIMEOUT_S = 15.0  # dropped -> online again
SYNC_EVERY_S = 0.5


class Build:
    """firmware/ and lib/ compiled into out_dir as `farmctl deploy` compiles them (lib/
    flattened), with the stubs and the harness beside them; path: MicroPython's import
    path over them (the sources are not on it); micropython: the binary that runs them
    (None: find_micropython(), the 64-bit unix port), frozen: what it has frozen in."""

    def __init__(self, out_dir):
        self.out = Path(out_dir).resolve()
        sources = {target: source for target, source in deploy.firmware_sources().items()
                   if target not in ("boot.py", "main.py")}
        for source in sorted(STUBS.glob("*.py")):
            sources["stubs/" + source.name] = source
        for source in HARNESS:
            sources["harness/" + source.name] = source
        self.files = deploy.build(sources, self.out, compiled=True)
        self.micropython = None
        self.frozen = ()
        self.path = self._path()

    def _path(self, firmware=None, lib=None):
        """The import path: the harness, the parts not frozen in (firmware/ and lib/ from the
        build unless given elsewhere), then the frozen modules."""
        folders = {"stubs": str(self.out / "stubs"), "firmware": str(self.out) if firmware is None else firmware,
                   "lib": str(self.out / "lib") if lib is None else lib}
        return [str(self.out / "harness"), *(folders[part] for part in folders if part not in self.frozen), ".frozen"]

    def on_port(self, micropython, frozen=()):
        """This build run by another MicroPython binary, which has frozen in the parts that
        frozen names ("stubs", "firmware", "lib"): their .mpy files are left off the import
        path, so the frozen modules are the ones imported."""
        port = copy.copy(self)
        port.micropython, port.frozen = str(micropython), tuple(frozen)
        port.path = port._path()
        return port

    def laid_out(self, root):
        """This build run in root as from a device's filesystem: firmware/ and lib/ (those
        not frozen in) copied there and imported by relative paths ("" and "lib"; a
        device's are "" and "/lib"). MicroPython interns each module's __file__ for good,
        a module loaded per use too: the build's absolute temporary paths cost ~40 bytes
        more each than a device's ("firmware/node.mpy"), over 1 KiB in all."""
        run = copy.copy(self)
        for part in ("firmware", "lib"):
            if part not in self.frozen:
                shutil.copytree(self.out / part, Path(root) / part, dirs_exist_ok=True)
        run.path = self._path(firmware="", lib="lib")
        return run

    def misplaced(self, origins):
        """origins: {part: the __file__ of one of its modules}, as the device printed them.
        In words, the first part not imported from where this build's binary should take it
        (frozen in, or a file), or None. A frozen module's __file__ is its source's path in
        the manifest (.py); a file's is the compiled one's (.mpy)."""
        for part, file in origins.items():
            if file.endswith(".py") != (part in self.frozen):
                return "%s imported from %s, not %s" % (part, file, "frozen" if part in self.frozen else "a file")
        return None

    def romfs_image(self, out_path):
        """The compiled firmware/ and lib/ packed into a ROMFS image by mpremote, as
        `mpremote romfs deploy` would write them to a device's ROMFS partition."""
        stage = Path(out_path).with_suffix(".stage")
        for target, compiled in self.files.items():
            if target.startswith(("firmware/", "lib/")):
                (stage / target).parent.mkdir(parents=True, exist_ok=True)
                (stage / target).write_bytes(Path(compiled).read_bytes())
        subprocess.run([sys.executable, "-m", "mpremote", "romfs", "-o", str(out_path), "build", str(stage)],
                       check=True, capture_output=True, timeout=120)
        return Path(out_path)

    def mpy_bytes(self, folder):
        """Total size of the .mpy files under folder ("firmware" or "lib")."""
        return sum(Path(f).stat().st_size for target, f in self.files.items() if target.startswith(folder + "/"))


class DeviceRun:
    """A device-side script (a module of the build) in its own process: under MicroPython
    from the compiled build with -X heapsize, or under CPython from the sources. Its
    console goes to a file, scanned for ERROR_MARKS as it grows."""

    def __init__(self, build, module, args, log_path, runtime="micropython", heap_kib=512, cwd=None):
        args = [str(a) for a in args]
        if runtime == "micropython":
            argv = [build.micropython or find_micropython(), "-X", "heapsize=%dk" % heap_kib, "-m", module, *args]
            env = dict(os.environ, MICROPYPATH=":".join(build.path))
        else:
            script = next(Path(f) for f in HARNESS if f.stem == module)
            argv = [sys.executable, "-u", str(script), *args]
            env = cpython_env([str(BENCH), str(SIM_HARNESS)])
        self.log_path = Path(log_path)
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self._reader = open(self.log_path, errors="replace")
        self._tail = ""  # the end of what was scanned: a mark may straddle two reads

    def output(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def check(self):
        """Raise Failed if the process has ended or printed an error mark."""
        text = self._tail + self._reader.read()
        for mark in ERROR_MARKS:
            at = text.find(mark)
            if at >= 0:
                line_start = text.rfind("\n", 0, at) + 1
                raise Failed("%s: %s" % (mark.strip(": "), text[line_start:].splitlines()[0][:160]))
        self._tail = text[-200:]
        if self.process.poll() is not None:
            raise Failed("the process ended (exit %s): %s" % (self.process.returncode, _tail(self.output())))

    def stop(self):
        stop_process(self.process, 3)
        self._reader.close()


class Failed(Exception):
    """Why an attempt did not pass, in words for the table's notes."""


def _tail(text, lines=3):
    return " | ".join(text.strip().splitlines()[-lines:])


class Traffic:
    """paho on the bench broker, served in the caller's thread (a network thread would
    add a thread hop to every figure): a listener subscribed to topics, which stamps each
    message (time.time_ns and perf_counter_ns) as paho reads it, and a backend that
    publishes commands, written to the socket at once with TCP_NODELAY (paho leaves
    Nagle on: a command could wait for the broker's delayed ACK of the one before, ~20
    ms measured). Arrivals are read while next() waits: the benchmarks call it
    whenever they wait for something."""

    def __init__(self, broker, topics):
        self.broker = broker
        self.arrivals = collections.deque()
        self.listener = self._client("bench-listener")
        self.listener.on_message = lambda c, u, m: self.arrivals.append(
            (time.time_ns(), time.perf_counter_ns(), m.topic, m.payload))
        subscribed = []
        self.listener.on_subscribe = lambda c, u, mid, codes, p: subscribed.append(mid)
        self.listener.subscribe([(topic, 1) for topic in topics])
        self.backend = self._client("bench-backend")
        deadline = time.monotonic() + 5
        while not subscribed:
            if time.monotonic() > deadline:
                raise RuntimeError("no SUBACK from the bench broker in 5 s")
            self.listener.loop(0.05)

    def _client(self, client_id):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        client.connect(self.broker.host, self.broker.port)
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadline = time.monotonic() + 5
        while not client.is_connected():
            if time.monotonic() > deadline:
                raise RuntimeError("no CONNACK from the bench broker in 5 s")
            client.loop(0.05)
        return client

    def send(self, topic, message):
        """Publish message (a dict, as JSON) at QoS 1; returns perf_counter_ns just before."""
        payload = json.dumps(message)
        sent = time.perf_counter_ns()
        self.backend.publish(topic, payload, qos=1)
        return sent

    def next(self, timeout_s):
        """(time_ns, perf_ns, topic, payload bytes) of the next arrival, or None after
        timeout_s; serves both clients meanwhile (PUBACKs, pings)."""
        deadline = time.monotonic() + timeout_s
        while not self.arrivals:
            self.backend.loop(0)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.listener.loop(min(left, 0.05))
        return self.arrivals.popleft()

    def take_over(self, client_id):
        """Connect a second client with a device's client id: the broker drops the
        device's connection (MQTT session takeover); then leave, so it can come back."""
        connected = threading.Event()
        impostor = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        impostor.on_connect = lambda c, u, flags, code, p: connected.set()
        impostor.connect(self.broker.host, self.broker.port)
        impostor.loop_start()
        try:
            if not connected.wait(5):
                raise Failed("the takeover client got no CONNACK in 5 s")
        finally:
            impostor.disconnect()
            impostor.loop_stop()

    def close(self):
        self.backend.disconnect()
        self.listener.disconnect()


class Device:
    """What paho has seen of one device in one attempt: answers by command_id, distinct
    readings (seq), online announcements."""

    def __init__(self, traffic, run, prefix, response_topic):
        self.traffic = traffic
        self.run = run
        self.prefix = prefix
        self.response_topic = prefix + response_topic
        self.commands_topic = prefix + "commands"
        self.answers = {}
        self.answered_at = {}  # command_id -> perf_counter_ns of the answer's arrival
        self.seqs = set()
        self.telemetry_arrivals = []  # time_ns of each telemetry message, duplicates too
        self.telemetry_bytes = []  # and its payload's length
        self.onlines = 0
        self.heap_free = None  # meta.heap_free of the last reading
        self._sync = 0

    def pump(self, done, timeout_s, what):
        """Take arrivals until done() holds; Failed after timeout_s, or as soon as the
        device dies or prints an error."""
        deadline = time.monotonic() + timeout_s
        while not done():
            self.run.check()
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed("no %s within %d s" % (what, timeout_s))
            got = self.traffic.next(min(left, 0.2))
            if got is not None:
                self._record(*got)

    def _record(self, arrived_ns, arrived_perf_ns, topic, payload):
        if not topic.startswith(self.prefix):
            return  # another attempt's device, still leaving
        if topic.endswith("/status"):
            if payload == b"online" or payload.startswith(b"{") and json.loads(payload).get("status") == "online":
                self.onlines += 1
            return
        data = json.loads(payload)
        if topic == self.response_topic:
            self.answers[data["command_id"]] = data
            self.answered_at[data["command_id"]] = arrived_perf_ns
        elif topic.endswith("/telemetry"):
            self.seqs.add(data["seq"])
            self.telemetry_arrivals.append(arrived_ns)
            self.telemetry_bytes.append(len(payload))
            self.heap_free = data["meta"]["heap_free"]

    def send(self, command_id, command=None, parameters=None):
        """Send a command (the bare loop takes any message with a command_id); returns
        perf_counter_ns just before."""
        message = {"command_id": command_id}
        if command is not None:
            message["command"] = command
            message["parameters"] = parameters or {}
        return self.traffic.send(self.commands_topic, message)

    def answered(self, *command_ids):
        return all(command_id in self.answers for command_id in command_ids)

    def synced(self, first_online):
        """Wait for the device to be online (announced) and subscribed: pings go out
        every SYNC_EVERY_S until one is answered (a command sent before the device has
        subscribed is lost: it connects with a clean session)."""
        self.pump(lambda: self.onlines >= first_online, RECONNECT_TIMEOUT_S, "online status")
        deadline = time.monotonic() + RECONNECT_TIMEOUT_S
        while True:
            self._sync += 1
            command_id = "sync-%d" % self._sync
            self.send(command_id, "ping")
            try:
                self.pump(lambda: command_id in self.answers, SYNC_EVERY_S, "sync")
                return
            except Failed:
                if time.monotonic() > deadline:
                    raise Failed("no answer to a ping within %d s of going online" % RECONNECT_TIMEOUT_S)

    def reconnect(self, client_id):
        onlines = self.onlines
        self.traffic.take_over(client_id)
        self.synced(onlines + 1)

    def check_answers(self, *command_ids):
        for command_id in command_ids:
            answer = self.answers[command_id]
            if answer.get("success") is False:
                raise Failed("%s refused: %s" % (command_id, answer.get("error")))


def node_root(workdir, device_id, broker, interval_s):
    """A node's filesystem under workdir: config.json (the default wiring) and secrets.json."""
    root = Path(workdir) / device_id
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"device_id": device_id, "interval_s": interval_s}))
    (root / "secrets.json").write_text(json.dumps({"wifi": {"ssid": SSID, "password": PASSWORD},
                                                   "mqtt": {"host": broker.host, "port": broker.port}}))
    return root


def percentile(ordered, q):
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats
    return ordered[int(rank) - 1]


def summary(delays_ms):
    """{"samples", "p50_ms", "p99_ms", "max_ms"}; None figures when there is no sample."""
    ordered = sorted(delays_ms)
    if not ordered:
        return {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {"samples": len(ordered), "p50_ms": percentile(ordered, 50), "p99_ms": percentile(ordered, 99),
            "max_ms": ordered[-1]}
