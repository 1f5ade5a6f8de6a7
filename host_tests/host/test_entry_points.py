"""boot.py and main.py, the device's entry points, start the firmware under MicroPython."""
import json
import subprocess

from dualrun import ROOT, find_micropython, micropython_env


def run_on_micropython(script, cwd):
    return subprocess.run([find_micropython(), "-X", "heapsize=128k", str(ROOT / script)],
                          cwd=cwd, env=micropython_env(), capture_output=True, text=True, timeout=30)


def test_boot_then_main_report_config_problems(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"interval_s": 0, "profile": "dese"}))
    boot = run_on_micropython("boot.py", tmp_path)
    assert boot.returncode == 0, boot.stderr
    done = run_on_micropython("main.py", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "profile dese" in done.stdout
    assert "config problem: interval_s: must be between 1 and 86400, got 0" in done.stdout
