"""boot.py and main.py, the device's entry points, start the firmware under MicroPython."""
import json
import subprocess
import time

from farmsim.runtime import ROOT, command


def test_boot_then_main_start_the_node_and_report_config_problems(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"interval_s": 0, "profile": "farmnode"}))
    argv, env = command(ROOT / "boot.py", "micropython")
    boot = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert boot.returncode == 0, boot.stderr
    argv, env = command(ROOT / "main.py", "micropython")
    node = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = node.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "no network configured" in line:
                break
    finally:
        node.kill()
        node.wait(5)
    out = "".join(lines)
    assert "farmnode 0.1.0 as node-" in out and "profile farmnode" in out, out
    assert "config: interval_s: must be between 1 and 86400, got 0" in out, out
    assert "wifi: no network configured" in out, out
