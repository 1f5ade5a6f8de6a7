"""The dual-interpreter runner itself: it must be able to fail on the MicroPython side alone."""
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE / "runner_cases"


def run_cases(case_dir, tmp_path, timeout_s=60, extra=()):
    ini = tmp_path / "pytest.ini"
    ini.write_text(f"[pytest]\ndual_dirs = {case_dir}\npython_files = case_*.py\ndual_timeout = 3\n")
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ini), "-p", "dualrun", "-p", "no:cacheprovider",
         "-v", "--rootdir", str(case_dir), *extra, str(case_dir)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout_s)
    return done.returncode, done.stdout + done.stderr


def test_cpython_only_construct_fails_only_under_micropython(tmp_path):
    code, out = run_cases(CASES / "cpython_only", tmp_path)
    assert code == 1, out
    assert "case_reading.py::test_reading_keeps_its_value[cpython] PASSED" in out
    assert "case_reading.py::test_reading_keeps_its_value[micropython] FAILED" in out
    assert "ImportError: no module named 'dataclasses'" in out  # MicroPython's own traceback
    assert "device tests under CPython         1 passed, 0 failed" in out
    assert "device tests under MicroPython     0 passed, 1 failed" in out


def test_each_function_runs_once_per_interpreter(tmp_path):
    code, out = run_cases(CASES / "both_pass", tmp_path)
    assert code == 1, out
    assert "case_ok.py::test_adds[cpython] PASSED" in out
    assert "case_ok.py::test_adds[micropython] PASSED" in out
    assert "case_ok.py::test_fails_with_message[micropython] FAILED" in out
    assert "AssertionError: ran on micropython" in out
    assert "device tests under MicroPython     1 passed, 1 failed" in out


def test_the_counts_per_interpreter_add_up_across_xdist_workers(tmp_path):
    # make test runs in workers: only their reports reach the process that prints the counts.
    code, out = run_cases(CASES / "both_pass", tmp_path, extra=("-n", "2"))
    assert code == 1, out
    assert "2 workers" in out, out
    assert "device tests under CPython         1 passed, 1 failed" in out, out
    assert "device tests under MicroPython     1 passed, 1 failed" in out, out


def test_hung_micropython_test_is_stopped_and_fails(tmp_path):
    code, out = run_cases(CASES / "micropython_hang", tmp_path)
    assert code == 1, out
    assert "test_hangs_only_under_micropython[cpython] PASSED" in out
    assert "timed out after 3 s under MicroPython" in out
