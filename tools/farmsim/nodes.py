"""Virtual farm nodes: the real firmware on the hardware stubs and a field model, with a
device filesystem of its own, under the MicroPython unix port or CPython. A VirtualNode
is one node in its own process; a VirtualFleet is several nodes sharing one process."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from farmsim import HARNESS
from farmsim.runtime import ROOT, command, stop_process

SCRIPT = HARNESS / "virtual_node.py"
FLEET_SCRIPT = HARNESS / "virtual_fleet.py"
# MicroPython heap of a fleet process: the firmware's, the stubs' and the harness's code once
# (~200 KiB from source, and room to compile it), then each node's objects (~32 KiB) and its
# share of the garbage between collections (once a second, see farmsim/harness/virtual_fleet.py).
FLEET_HEAP_BASE_KB = 384
FLEET_HEAP_PER_NODE_KB = 48
DEEPSLEEP_RESET = 4  # machine.DEEPSLEEP_RESET: the reset cause of a wake from deep sleep


def split(count, per_process):
    """Group sizes for count nodes, at most per_process each, as even as they can be
    (50 nodes by 40: 25 and 25, not 40 and 10)."""
    processes = -(-count // per_process)
    return [count // processes + (i < count % processes) for i in range(processes)]


def write_device_files(root, config, secrets):
    """A device's "/": config.json and secrets.json."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config))
    (root / "secrets.json").write_text(json.dumps(secrets))


def deploy_sources(root):
    """firmware/ and every lib/ package's modules into root, laid out as on a device."""
    for source in (ROOT / "firmware").rglob("*.py"):
        target = root / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    (root / "lib").mkdir(exist_ok=True)
    for source in (ROOT / "lib").glob("*/*.py"):
        shutil.copyfile(source, root / "lib" / source.name)


class NodeProcess:
    """One interpreter process running node code, with its console log (log_path) and
    its lifeline (harness/lifeline.py): a pipe whose write end only this object holds.
    Closing it stops the node(s) cleanly; this process dying closes it too, so they
    never outlive the simulator (however it ends: SIGKILL included)."""

    log_path = None
    process = None
    starts = 0
    _lifeline = None

    def _launch(self, argv, env, cwd):
        self._cut_lifeline()
        line_in, self._lifeline = os.pipe()  # neither end is inherited by other children
        log = open(self.log_path, "a")
        try:
            self.process = subprocess.Popen([*argv, "--parent-fd", str(line_in)], cwd=cwd, env=env,
                                            stdout=log, stderr=subprocess.STDOUT, pass_fds=(line_in,),
                                            start_new_session=True)
        finally:
            log.close()
            os.close(line_in)
        self.starts += 1
        return self

    def _cut_lifeline(self):
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s=5):
        """Stop cleanly (relays off, status offline) within timeout_s, else end the process."""
        if self.process is None:
            return
        self._cut_lifeline()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
        stop_process(self.process, 5)

    def kill(self, sig=signal.SIGKILL):
        """Power cut (SIGKILL): no clean shutdown, the broker publishes each node's Will."""
        if self.running():
            self.process.send_signal(sig)
            self.process.wait(10)
        self._cut_lifeline()

    def console(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class VirtualNode(NodeProcess):
    """One node in its own process. A node in deep sleep has no process, as a sleeping
    chip runs no program: the harness ends it, leaving its sleep file (sleep_path: how
    long, and the field's state); this object starts it again at the wake, ms/speed
    seconds later, with reset cause DEEPSLEEP_RESET and the RTC memory kept. A thread
    per node waits for its process to end, then for the wake."""

    def __init__(self, workdir, config, secrets, runtime="micropython", field_file=None,
                 speed=1.0, seed=1, start_hour=9.0, extra_path=(), deployed=False, boot_button=False):
        """deployed: the firmware and lib/ are copied into the node's own filesystem,
        as on a device (what an OTA update replaces); otherwise they run from the repo."""
        self.root = Path(workdir)
        write_device_files(self.root, config, secrets)
        self.runtime = runtime
        self.field_file = field_file
        self.speed = float(speed)
        self.sleep_path = self.root.parent / f"{self.root.name}.sleep"
        # RTC memory (the boot counter of safe mode) outlives the process, as it outlives a reset.
        self.options = ["--speed", str(speed), "--seed", str(seed), "--start-hour", str(start_hour),
                        "--rtc", str(self.root.parent / f"{self.root.name}.rtc"),
                        "--boot-button", "1" if boot_button else "0", "--sleep", str(self.sleep_path)]
        self.extra_path = [str(p) for p in extra_path]
        self.deployed = deployed
        if deployed:
            deploy_sources(self.root)
            self.extra_path += [str(self.root), str(self.root / "lib")]
        self.log_path = self.root / "console.log"
        self.wakes = 0  # wakes from deep sleep, each a start with DEEPSLEEP_RESET
        self._lock = threading.Lock()  # the process, the sleep and the watch, between threads
        self._watch = None  # (thread, cancel Event) of the current boot
        self._boot_number = 0  # which boot the watch belongs to: an older one lets go
        self._sleep = None  # (ms, wake at time.monotonic(), or None: no timed wake) while asleep
        self._stopped = True

    def start(self, reset_cause=1):
        """Boot with reset_cause (machine's: 1 power on, 2 hard...). A node asleep boots
        now, as a sleeping chip's reset pin wakes it: its timed wake is dropped."""
        with self._lock:
            self._let_go()
            self.sleep_path.unlink(missing_ok=True)  # the field goes on only at a wake
            return self._boot(reset_cause)

    def _boot(self, reset_cause):
        """Start the process and its watch (the lock held)."""
        args = [str(self.root), *self.options, "--reset-cause", str(reset_cause)]
        if self.field_file:
            args += ["--field", str(self.field_file)]
        argv, env = command(SCRIPT, self.runtime, args, extra_path=self.extra_path, compiled=not self.deployed)
        self._launch(argv, env, self.root)
        self._stopped = False
        self._boot_number += 1
        cancel = threading.Event()
        thread = threading.Thread(target=self._watch_boot, args=(self._boot_number, self.process, cancel),
                                  name=f"{self.root.name} watch", daemon=True)
        self._watch = (thread, cancel)
        thread.start()
        return self

    def _let_go(self):
        """The current boot's watch ends and a pending wake is dropped (the lock held);
        returns the watch's thread, to join once its process is ended."""
        self._boot_number += 1
        self._sleep = None
        watch, self._watch = self._watch, None
        if watch is None:
            return None
        watch[1].set()
        return watch[0]

    def _watch_boot(self, boot_number, process, cancel):
        """The watch's thread: when the process ends in deep sleep, the wake."""
        process.wait()
        with self._lock:
            sleep = self._asleep() if boot_number == self._boot_number else None
        if sleep is None:
            return  # an end of another kind: the caller restarts it, or not
        wake_at = sleep[1]
        if cancel.wait(None if wake_at is None else max(0.0, wake_at - time.monotonic())):
            return  # stopped, or started again, while asleep
        with self._lock:
            if boot_number == self._boot_number:
                self._sleep = None
                self.wakes += 1
                self._boot(DEEPSLEEP_RESET)

    def _asleep(self):
        """The sleep the process ended in, or None (the lock held): it ended with exit
        status 0 and left the sleep file (harness/virtual_node.py removes the last
        one at each boot). Noted once, by whoever sees it first."""
        if self._sleep is None and not self._stopped and self.process is not None and self.process.poll() == 0:
            try:
                ms = int(json.loads(self.sleep_path.read_text())["sleep_ms"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
            self._sleep = (ms, time.monotonic() + ms / 1000 / self.speed if ms > 0 else None)
        return self._sleep

    def running(self):
        """Its process runs, or the node sleeps until its wake: not one to restart."""
        with self._lock:
            return super().running() or self._asleep() is not None

    def sleeping(self):
        """In deep sleep: its process ended there, and the wake has not come yet."""
        with self._lock:
            return not super().running() and self._asleep() is not None

    def stop(self, timeout_s=5):
        """Stop cleanly (see NodeProcess.stop); a node asleep stays off: its wake is dropped."""
        thread = self._stop_watching()
        super().stop(timeout_s)
        self._join(thread)

    def kill(self, sig=signal.SIGKILL):
        """A power cut (see NodeProcess.kill); a node asleep stays off: its wake is dropped."""
        thread = self._stop_watching()
        super().kill(sig)
        self._join(thread)

    def _stop_watching(self):
        with self._lock:
            self._stopped = True
            return self._let_go()

    def _join(self, thread):
        """The watch's thread ends as soon as its process has (bounded all the same)."""
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        self.sleep_path.unlink(missing_ok=True)


class VirtualFleet(NodeProcess):
    """Several nodes in one process (farmsim/harness/virtual_fleet.py), each with its own
    chip, field model and folder. members: (workdir, config, secrets, seed, start_hour)
    per node; idle_ms: the longest an idle node waits for its next turn."""

    def __init__(self, workdir, members, runtime="micropython", field_file=None, speed=1.0, idle_ms=250):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.runtime = runtime
        self.stats_path = self.workdir / "stats.json"
        self.spec_path = self.workdir / "fleet.json"
        self.log_path = self.workdir / "console.log"
        nodes = []
        self.roots = []
        for root, config, secrets, seed, start_hour in members:
            root = Path(root).resolve()
            write_device_files(root, config, secrets)
            self.roots.append(root)
            nodes.append({"root": str(root), "seed": seed, "start_hour": start_hour,
                          "rtc": str(root.parent / f"{root.name}.rtc")})
        self.spec = {"nodes": nodes, "field": field_file, "speed": speed, "idle_ms": idle_ms,
                     "stats": str(self.stats_path), "reset_cause": 1}
        self.heap = f"{FLEET_HEAP_BASE_KB + FLEET_HEAP_PER_NODE_KB * len(nodes)}k"

    def start(self, reset_cause=1):
        self.stats_path.unlink(missing_ok=True)
        self.spec["reset_cause"] = reset_cause
        self.spec_path.write_text(json.dumps(self.spec))
        argv, env = command(FLEET_SCRIPT, self.runtime, [str(self.spec_path)], heap=self.heap,
                            extra_path=[str(FLEET_SCRIPT.parent)])
        return self._launch(argv, env, self.workdir)

    def request_stop(self):
        """Ask the process to stop: its nodes send what they took, say offline, and it
        writes its final stats (stop() waits for that)."""
        self._cut_lifeline()

    def stop(self, timeout_s=15):
        super().stop(timeout_s)

    def stats(self):
        """The process's last stats (heap, each node's boot, seq, queue), or None."""
        try:
            return json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return None
