"""Driving `farmctl vdev` from host tests: the vdev as a process, its serial line, and
the real mpremote against it."""
import os
import signal
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

FARMCTL = Path(sys.executable).parent / "farmctl"
MPREMOTE = Path(sys.executable).parent / "mpremote"


class Vdev:
    """`farmctl vdev --link PORT --dir FLASH --state STATE` in its own process (farmctl:
    another installation's, env: its environment)."""

    def __init__(self, workdir, field=None, farmctl=FARMCTL, env=None):
        self.workdir = Path(workdir)
        self.port = self.workdir / "port"
        self.flash = self.workdir / "flash"
        self.state = self.workdir / "state"
        self.flash.mkdir(parents=True, exist_ok=True)
        argv = [str(farmctl), "vdev", "--link", str(self.port), "--dir", str(self.flash),
                "--state", str(self.state)]
        if field:
            argv += ["--field", str(field)]
        self.log = open(self.workdir / "vdev.log", "w")
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 15
        while not self.port.exists():
            assert self.process.poll() is None, (self.workdir / "vdev.log").read_text()
            assert time.monotonic() < deadline, "the vdev made no port"
            time.sleep(0.05)

    def press_reset(self):
        """The EN button: a hard reset."""
        self.process.send_signal(signal.SIGUSR1)

    def hold_boot_button(self, held):
        path = self.state / "boot_button"
        if held:
            path.touch()
        else:
            path.unlink(missing_ok=True)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()


def mpremote(port, *args, timeout=60, program=MPREMOTE):
    """Run the real mpremote against the port: (exit status, output)."""
    done = subprocess.run([str(program), "connect", str(port), *args], capture_output=True,
                          text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def farmctl(*args, timeout=120):
    done = subprocess.run([str(FARMCTL), *args], capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


class SerialLine:
    """The port as a terminal program sees it (or, given fd, any terminal): bytes in, bytes out."""

    def __init__(self, port=None, fd=None):
        self.fd = os.open(str(port), os.O_RDWR | os.O_NOCTTY) if fd is None else fd
        # TCSANOW, not setraw's default TCSAFLUSH: that discards what arrived before this
        # open, and a vdev quick to boot had printed its banner already (CI saw b'').
        tty.setraw(self.fd, termios.TCSANOW)
        os.set_blocking(self.fd, False)
        self.seen = b""

    def write(self, data):
        os.write(self.fd, data)

    def read_until(self, marker, timeout_s=10):
        """Everything up to and including marker (bytes); AssertionError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while marker not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {marker!r} in {timeout_s} s; got {self.seen[-600:]!r}")
            try:
                self.seen += os.read(self.fd, 4096)
            except BlockingIOError:
                time.sleep(0.02)
        head, _, self.seen = self.seen.partition(marker)
        return head + marker

    def close(self):
        os.close(self.fd)
