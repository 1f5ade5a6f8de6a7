"""`farmctl sim`, the README's first command: three nodes' telemetry within seconds."""
import subprocess
import sys


def test_sim_shows_three_nodes_telemetry_then_stops_everything(tmp_path):
    done = subprocess.run([sys.executable, "-m", "farmctl", "sim", "--duration", "8", "--interval", "1"],
                          capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for device in ("node-01", "node-02", "node-03"):
        assert f"{device} telemetry moist%=" in out, out
    assert "broker 127.0.0.1:" in out and "3 nodes (micropython, profile farmnode)" in out
    table = out[out.rindex("device "):]
    assert table.count("node-0") == 3
    workdir = out.split("files in ")[1].split(";")[0]
    leftovers = subprocess.run(["pgrep", "-f", workdir], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "nodes left running"


def test_sim_with_a_profile_and_the_cpython_runtime(tmp_path):
    done = subprocess.run([sys.executable, "-m", "farmctl", "sim", "--devices", "2", "--runtime", "cpython",
                           "--profile", "harit", "--duration", "6", "--interval", "1"],
                          capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "node-01 telemetry" in done.stdout and "node-02 telemetry" in done.stdout, done.stdout
