"""A private mosquitto on a free loopback port, with a config we write.

Used by the tests (one broker per test or session) and by `farmctl sim`."""
import ctypes
import getpass
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from farmsim.runtime import stop_process

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

INSTALL_HINT = ("mosquitto is not installed: run `make test` (it installs it), or "
                "`sudo apt-get install mosquitto` (Debian/Ubuntu), `brew install mosquitto` (macOS)")


def find_mosquitto():
    # Debian installs the broker in /usr/sbin, which is not on every user's PATH.
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return found


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent():
    """In the child, before exec: SIGTERM when the parent ends (prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the broker outlives a killed simulator, as before


class Mosquitto:
    """mosquitto on 127.0.0.1:port, its config, log and persistence kept in workdir."""

    host = "127.0.0.1"

    def __init__(self, workdir, port=None, persistence=True, extra_config="", anonymous=True, listener=True,
                 tethered=False):
        """listener: False when extra_config brings the listener on port itself (with
        its own access settings, as `farmctl provision`'s mosquitto.conf does).
        tethered: mosquitto gets SIGTERM when this process ends, however it ends (Linux:
        the parent-death signal), for the commands that start one (sim, broker); start()
        it before any thread starts (it runs code between fork and exec)."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._port_chosen = port is None  # ours to change if another process takes it first
        self.port = port or free_port(self.host)
        self.persistence = persistence
        self.extra_config = extra_config
        self.anonymous = anonymous
        self.listener = listener
        self.tethered = tethered
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.process = None

    def config_text(self):
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
        ] if self.listener else []
        lines += [
            # Started as root, mosquitto would drop to user "mosquitto" and lose our workdir.
            f"user {getpass.getuser()}",
            # mosquitto leaves Nagle on: small back-to-back packets would wait ~40 ms
            "set_tcp_nodelay true",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
        ]
        return "\n".join(lines) + "\n" + self.extra_config

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def start(self, timeout_s=10.0):
        """Until mosquitto says it runs: a port that merely answers may be another
        broker's (tests run in parallel), and a port taken between free_port() and the
        bind is drawn again."""
        for attempt in range(3):
            self.conf_path.write_text(self.config_text())
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            self.process = subprocess.Popen(
                [find_mosquitto(), "-c", str(self.conf_path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                preexec_fn=_die_with_parent if self.tethered else None)
            if self._wait_running(log_start, timeout_s):
                return self
            exited = self.process.poll() is not None
            stderr = self.process.stderr.read().decode(errors="replace") if exited else ""
            self.stop()
            failure = self._log_since(log_start) + stderr
            if self._port_chosen and "Address already in use" in failure and attempt < 2:
                self.port = free_port(self.host)
                continue
            raise RuntimeError(f"mosquitto did not start on {self.address} within {timeout_s} s:\n"
                               + failure)

    def _wait_running(self, log_start, timeout_s):
        """True once this start's log says "running" (mosquitto logs it after opening its
        listeners); False if mosquitto exits or is silent."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if " running" in self._log_since(log_start):
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def stop(self, timeout_s=5.0):
        if self.process is None:
            return
        stop_process(self.process, timeout_s)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def kill(self):
        """SIGKILL, as a crash or a power cut: no Wills sent, no final save of the
        persistence file (what autosave wrote is what a restart finds)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
        self.stop()

    def restart(self):
        self.stop()
        return self.start()

    def _log_since(self, offset):
        return self.log_path.read_bytes()[offset:].decode(errors="replace") if self.log_path.exists() else ""

    def log(self):
        return self._log_since(0)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
