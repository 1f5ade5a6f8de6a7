"""Latency through mosquitto on loopback, QoS 1, of the firmware's telemetry and of the
bare baselines, from the device code compiled as deployed (devicerun.Build):

  telemetry  one node (bench_node.py with "stamp") is sent `read` commands one at a
             time; each telemetry message is timed from the instant the firmware hands it
             to the MQTT client (time.time_ns in the node's process, printed after the
             send) to its arrival at paho (time.time_ns in paho's network thread): one
             host clock on both sides. The k-th telemetry handed over is the k-th to
             arrive (one connection, in order, no reconnect in this run).
  publisher  the bare baseline of that: bench/publisher.py, lib/mqtt publishing
             messages that carry their send time, nothing else running.
  bare round trip
             the bare loop (bare_loop.py) answering commands one at a time: paho's
             publish -> the answer's arrival at paho.

Alone: python bench/loop_latency.py [SAMPLES]"""
import checkout  # noqa: F401, I001  first: the farmctl of this checkout (bench/checkout.py)
import sys
import tempfile
import time
from pathlib import Path

from devicerun import PASSWORD, SSID, Build, Device, DeviceRun, Failed, Traffic, node_root, summary

from farmctl.broker import Mosquitto

SAMPLES = 500
GAP_S = 0.02  # between one sample's end and the next command
HEAP_KIB = 512  # ample: speed is measured here, not memory
PUBLISHER_GAP_MS = 5
SAMPLE_TIMEOUT_S = 5.0


def telemetry(build, workdir, runtime="micropython", samples=SAMPLES):
    """Publish -> arrival of the node's telemetry under runtime: {"samples", "p50_ms", "p99_ms",
    "max_ms", "payload_bytes_p50" (the median telemetry payload, farmnode profile)}."""
    device_id = "node-lat-%s" % runtime
    with Mosquitto(Path(workdir) / ("broker-" + device_id), persistence=False) as broker:
        root = node_root(workdir, device_id, broker, 86400)
        traffic = Traffic(broker, ["farm/%s/#" % device_id])
        run = DeviceRun(build, "bench_node", [root, SSID, PASSWORD, "stamp"], root / "console.log",
                        runtime=runtime, heap_kib=HEAP_KIB, cwd=root)
        device = Device(traffic, run, "farm/%s/" % device_id, "command_response")
        try:
            device.synced(1)
            device.pump(lambda: 0 in device.seqs, SAMPLE_TIMEOUT_S, "boot reading")
            for i in range(samples):
                command_id = "t%d" % i
                device.send(command_id, "read")
                device.pump(lambda: command_id in device.answers and len(device.seqs) >= i + 2,
                            SAMPLE_TIMEOUT_S, "reading %d" % (i + 1))
                time.sleep(GAP_S)
        finally:
            run.stop()
            traffic.close()
    handed = [int(line.split()[1]) for line in run.output().splitlines()
              if line.startswith("TX ") and line.endswith("/telemetry")]
    arrived = device.telemetry_arrivals
    if len(handed) != len(arrived):
        raise Failed("%d telemetry messages handed over, %d arrived" % (len(handed), len(arrived)))
    result = summary([(at - sent) / 1e6 for sent, at in zip(handed, arrived)])
    result["runtime"] = runtime
    result["payload_bytes_p50"] = sorted(device.telemetry_bytes)[len(device.telemetry_bytes) // 2]
    return result


def publisher(build, workdir, samples=SAMPLES):
    """Publish -> arrival of bench/publisher.py's messages (MicroPython)."""
    with Mosquitto(Path(workdir) / "broker-publisher", persistence=False) as broker:
        traffic = Traffic(broker, ["bench/latency"])
        run = DeviceRun(build, "publisher", [broker.host, broker.port, samples, PUBLISHER_GAP_MS],
                        Path(workdir) / "publisher.log")
        delays = []
        try:
            deadline = time.monotonic() + 60 + samples * PUBLISHER_GAP_MS / 1000
            while len(delays) < samples and time.monotonic() < deadline:
                got = traffic.next(0.5)
                if got is not None:
                    delays.append((got[0] - int(got[3].split()[1])) / 1e6)
                elif run.process.poll() is not None:
                    break  # ended, and nothing more came in 0.5 s
        finally:
            run.stop()
            traffic.close()
    if len(delays) != samples:
        raise Failed("publisher: %d of %d messages arrived: %s" % (len(delays), samples, run.output()[-300:]))
    return summary(delays)


def bare_round_trip(build, workdir, samples=SAMPLES):
    """paho's publish -> arrival of the bare loop's answer, one command at a time."""
    client_id = "bare-lat"
    with Mosquitto(Path(workdir) / "broker-bare", persistence=False) as broker:
        traffic = Traffic(broker, ["bare/%s/#" % client_id])
        run = DeviceRun(build, "bare_loop", [broker.host, broker.port, client_id], Path(workdir) / "bare.log",
                        heap_kib=HEAP_KIB)
        device = Device(traffic, run, "bare/%s/" % client_id, "response")
        delays = []
        try:
            device.synced(1)
            for i in range(samples):
                command_id = "c%d" % i
                sent = device.send(command_id)
                device.pump(lambda: command_id in device.answers, SAMPLE_TIMEOUT_S, "answer %d" % i)
                delays.append((device.answered_at[command_id] - sent) / 1e6)
                time.sleep(GAP_S)
        finally:
            run.stop()
            traffic.close()
    return summary(delays)


def main():
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES
    with tempfile.TemporaryDirectory() as workdir:
        build = Build(Path(workdir) / "build")
        for name, figures in [("telemetry micropython", telemetry(build, workdir, "micropython", samples)),
                              ("telemetry cpython", telemetry(build, workdir, "cpython", samples)),
                              ("bare publisher", publisher(build, workdir, samples)),
                              ("bare command round trip", bare_round_trip(build, workdir, samples))]:
            print("%-24s p50 %.3f ms  p99 %.3f ms  max %.3f ms  (%d samples)"
                  % (name, figures["p50_ms"], figures["p99_ms"], figures["max_ms"], figures["samples"]))


if __name__ == "__main__":
    main()
