"""pytest plugin: run device-side test modules under CPython *and* MicroPython.

Every test module below a directory named in the ``dual_dirs`` ini option
is collected twice per test function: ``test_x[cpython]`` runs in this process,
``test_x[micropython]`` runs in a fresh ``micropython -X heapsize=...`` process with
the hardware stubs, ``lib/*`` and the repo root on its path. A failure on either
interpreter fails the suite, and the MicroPython traceback is shown.
"""
import ast
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from farmsim.runtime import device_sys_path, find_micropython, micropython_env

RUNNER = Path(__file__).resolve().parent / "mpy_run.py"
INTERPRETERS = ("cpython", "micropython")


def pytest_addoption(parser):
    parser.addini("dual_dirs", "directories whose test modules also run under MicroPython",
                  type="paths", default=[])
    parser.addini("dual_heapsize", "MicroPython heap for device tests", default="128k")
    parser.addini("dual_timeout", "seconds one MicroPython test may take", default="120")


def pytest_configure(config):
    for name in INTERPRETERS:
        config.addinivalue_line("markers", f"{name}: device test run under {name}")
    config.addinivalue_line("markers", "host: host-only test (CPython)")
    for entry in reversed(device_sys_path()):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    config.pluginmanager.register(InterpreterCounts(), "dualrun-counts")


def _is_dual(config, path):
    path = Path(path).resolve()
    return any(Path(d).resolve() in path.parents for d in config.getini("dual_dirs"))


def pytest_pycollect_makemodule(module_path, parent):
    if _is_dual(parent.config, module_path):
        return DualModule.from_parent(parent, path=module_path)
    return None


def _test_names(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test")]


class DualModule(pytest.Module):
    """A device test module: each function once per interpreter."""

    def collect(self):
        micropython_items = {
            name: MicroPythonItem.from_parent(self, name=f"{name}[micropython]", test_name=name)
            for name in _test_names(self.path)}
        for item in super().collect():
            if isinstance(item, pytest.Function) and item.name in micropython_items:
                twin = pytest.Function.from_parent(
                    self, name=f"{item.name}[cpython]", callobj=item.obj)
                twin.add_marker("cpython")
                yield twin
                yield micropython_items.pop(item.name)
            else:
                yield item
        yield from micropython_items.values()


class MicroPythonFailure(Exception):
    pass


class MicroPythonItem(pytest.Item):
    def __init__(self, *, test_name, **kwargs):
        super().__init__(**kwargs)
        self.test_name = test_name
        self.add_marker("micropython")

    def runtest(self):
        config = self.config
        cmd = [find_micropython(), "-X", f"heapsize={config.getini('dual_heapsize')}",
               str(RUNNER), str(self.path), self.test_name]
        timeout = float(config.getini("dual_timeout"))
        with tempfile.TemporaryDirectory(prefix="mpy-test-") as tmp:
            env = micropython_env(compiled=True)  # the firmware's bytecode, as deployed
            env["FARMNODE_TEST_TMP"] = tmp
            try:
                done = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True,
                                      text=True, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                out = exc.stdout.decode(errors="replace") if exc.stdout else ""
                raise MicroPythonFailure(
                    f"timed out after {timeout:g} s under MicroPython\n{out}") from None
        if done.returncode != 0 or f"PASS {self.test_name}" not in done.stdout:
            raise MicroPythonFailure(
                f"failed under MicroPython (exit {done.returncode}):\n{done.stdout}{done.stderr}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.name} (MicroPython)"


@pytest.fixture(autouse=True)
def _device_test_tmp(request, monkeypatch):
    """CPython runs of device tests get a FARMNODE_TEST_TMP of their own, as MicroPython runs do."""
    if request.node.get_closest_marker("cpython"):
        monkeypatch.setenv("FARMNODE_TEST_TMP", str(request.getfixturevalue("tmp_path")))


def pytest_collection_modifyitems(config, items):
    for item in items:
        kind = next((name for name in INTERPRETERS if item.get_closest_marker(name)), "host")
        if kind == "host":
            item.add_marker("host")
        # Carried by the item's reports (their keywords would also hold parameter ids).
        item.user_properties.append(("interpreter", kind))


class InterpreterCounts:
    """Passed/failed per interpreter, counted from reports, not items: under pytest-xdist
    (make test) the tests run in workers and only their reports reach this process."""

    LABELS = {"cpython": "device tests under CPython", "micropython": "device tests under MicroPython",
              "host": "host-only tests (CPython)"}

    def __init__(self):
        self.counts = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            kind = dict(report.user_properties).get("interpreter", "host")
            counts = self.counts.setdefault(kind, {})
            counts[report.outcome] = counts.get(report.outcome, 0) + 1

    def pytest_terminal_summary(self, terminalreporter):
        if not self.counts:
            return
        terminalreporter.section("tests per interpreter")
        for kind, label in self.LABELS.items():
            c = self.counts.get(kind, {})
            terminalreporter.write_line(
                f"{label:34s} {c.get('passed', 0)} passed, {c.get('failed', 0)} failed"
                + (f", {c['skipped']} skipped" if c.get("skipped") else ""))
