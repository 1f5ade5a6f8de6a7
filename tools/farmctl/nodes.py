"""Virtual farm nodes: the real firmware in its own process (MicroPython unix port or
CPython) on the hardware stubs and a field model, with a device filesystem of its own."""
import json
import shutil
import signal
import subprocess
from pathlib import Path

from farmctl.runtime import ROOT, command, stop_process

SCRIPT = ROOT / "host_tests" / "virtual_node.py"


def deploy_sources(root):
    """firmware/ and every lib/ package's modules into root, laid out as on a device."""
    for source in (ROOT / "firmware").rglob("*.py"):
        target = root / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    (root / "lib").mkdir(exist_ok=True)
    for source in (ROOT / "lib").glob("*/*.py"):
        shutil.copyfile(source, root / "lib" / source.name)


class VirtualNode:
    def __init__(self, workdir, config, secrets, runtime="micropython", field_file=None,
                 speed=1.0, seed=1, start_hour=9.0, extra_path=(), deployed=False, boot_button=False):
        """deployed: the firmware and lib/ are copied into the node's own filesystem,
        as on a device (what an OTA update replaces); otherwise they run from the repo."""
        self.root = Path(workdir)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "config.json").write_text(json.dumps(config))
        (self.root / "secrets.json").write_text(json.dumps(secrets))
        self.runtime = runtime
        self.field_file = field_file
        # RTC memory (the boot counter of safe mode) outlives the process, as it outlives a reset.
        self.options = ["--speed", str(speed), "--seed", str(seed), "--start-hour", str(start_hour),
                        "--rtc", str(self.root.parent / f"{self.root.name}.rtc"),
                        "--boot-button", "1" if boot_button else "0"]
        self.extra_path = [str(p) for p in extra_path]
        if deployed:
            deploy_sources(self.root)
            self.extra_path += [str(self.root), str(self.root / "lib")]
        self.log_path = self.root / "console.log"
        self.process = None
        self.starts = 0

    def start(self, reset_cause=1):
        args = [str(self.root), *self.options, "--reset-cause", str(reset_cause)]
        if self.field_file:
            args += ["--field", str(self.field_file)]
        argv, env = command(SCRIPT, self.runtime, args, extra_path=self.extra_path)
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(argv, cwd=self.root, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.starts += 1
        return self

    def running(self):
        return self.process is not None and self.process.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Power cut (SIGKILL): no clean shutdown, the broker publishes the Will."""
        if self.running():
            self.process.send_signal(sig)
            self.process.wait(10)

    def stop(self, timeout_s=5):
        if self.process is not None:
            stop_process(self.process, timeout_s)

    def console(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
