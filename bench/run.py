"""`make bench`: every benchmark in bench/, under MicroPython (the unix port) and CPython.
Figures are this machine's (loopback, x86), not an ESP32's: they compare versions of
the firmware and the two runtimes, they do not predict a device."""
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
from farmctl.runtime import device_sys_path, find_micropython, micropython_env  # noqa: E402

DEVICE_BENCHES = ["sensor_pass.py", "telemetry_size.py"]
LATENCY_MESSAGES = 500
LATENCY_GAP_MS = 5


def run(script, interpreter, args=()):
    if interpreter == "micropython":
        cmd = [find_micropython(), "-X", "heapsize=256k", str(HERE / script), *args]
        env = micropython_env([str(HERE)])
    else:
        cmd = [sys.executable, str(HERE / script), *args]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *device_sys_path()]))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise SystemExit(f"{script} failed under {interpreter}:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def latency(interpreter):
    """Publish-to-arrival latency through mosquitto on loopback: lib/mqtt publishing
    under the given runtime, paho receiving."""
    import queue
    import tempfile
    import time

    import paho.mqtt.client as mqtt

    from farmctl.broker import Mosquitto

    arrivals = queue.Queue()
    with tempfile.TemporaryDirectory() as workdir, Mosquitto(workdir, persistence=False) as broker:
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub")
        sub.on_message = lambda c, u, m: arrivals.put((time.time_ns(), m.payload))
        sub.connect(broker.host, broker.port)
        sub.subscribe("bench/latency", qos=1)
        sub.loop_start()
        time.sleep(0.3)
        run("publisher.py", interpreter, [broker.host, str(broker.port), str(LATENCY_MESSAGES), str(LATENCY_GAP_MS)])
        time.sleep(0.5)
        sub.loop_stop()
        sub.disconnect()
    delays = []
    while not arrivals.empty():
        arrived, payload = arrivals.get()
        delays.append((arrived - int(payload.split()[1])) / 1e6)
    delays.sort()
    return {"messages": len(delays), "p50_ms": delays[len(delays) // 2],
            "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))]}


def main():
    print("sensor pass (wire time excluded)")
    print(f"  {'interpreter':12} {'us/pass':>8} {'heap B/pass':>12}")
    for interpreter in ("micropython", "cpython"):
        r = json.loads(run("sensor_pass.py", interpreter))
        heap = "-" if r.get("heap_bytes_per_pass") is None else r["heap_bytes_per_pass"]
        print(f"  {interpreter:12} {r['us_per_pass']:>8} {heap:>12}")
    sizes = json.loads(run("telemetry_size.py", "micropython"))["profiles"]
    print("telemetry message size (bytes)")
    print(f"  {'profile':12} {'payload':>8} {'packet':>8}")
    for name, size in sizes.items():
        print(f"  {name:12} {size['payload']:>8} {size['packet']:>8}")
    print(f"publish-to-arrival latency, mosquitto on loopback, QoS 1, {LATENCY_MESSAGES} messages")
    print(f"  {'runtime':12} {'p50 ms':>8} {'p99 ms':>8}")
    for interpreter in ("micropython", "cpython"):
        r = latency(interpreter)
        print(f"  {interpreter:12} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f}  ({r['messages']} arrived)")
    import command_latency  # beside this script; it starts its own broker and virtual nodes

    print("command -> relay through mosquitto, %d relay commands (relay: publish -> telemetry with the "
          "new state; response: publish -> command_response)" % command_latency.COMMANDS)
    for line in command_latency.table([command_latency.measure(runtime) for runtime in ("micropython", "cpython")]):
        print(line)


if __name__ == "__main__":
    main()
