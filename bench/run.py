"""`make bench`: every benchmark in bench/, under MicroPython (the unix port, 128 KiB heap,
as on an ESP32) and CPython, as one table. Figures are this machine's, not an ESP32's."""
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
from farmctl.runtime import device_sys_path, find_micropython, micropython_env  # noqa: E402

BENCHES = ["sensor_pass.py"]


def run(script, interpreter):
    if interpreter == "micropython":
        cmd = [find_micropython(), "-X", "heapsize=128k", str(HERE / script)]
        env = micropython_env([str(HERE)])
    else:
        cmd = [sys.executable, str(HERE / script)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *device_sys_path()]))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise SystemExit(f"{script} failed under {interpreter}:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    rows = []
    for script in BENCHES:
        for interpreter in ("micropython", "cpython"):
            rows.append(run(script, interpreter))
    print(f"{'benchmark':16} {'interpreter':12} {'us/pass':>8} {'heap B/pass':>12}")
    for r in rows:
        heap = "-" if r.get("heap_bytes_per_pass") is None else r["heap_bytes_per_pass"]
        print(f"{r['bench']:16} {r['interpreter']:12} {r['us_per_pass']:>8} {heap:>12}")


if __name__ == "__main__":
    main()
