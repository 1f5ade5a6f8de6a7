"""Command -> relay latency through mosquitto on loopback, one virtual node per runtime.

paho plays the backend: it sends `relay` commands (QoS 1) one at a time, irrigation on
and off in turn, and times two arrivals from the moment it published each:
  relay     the node's telemetry showing the new relay state (published at once on a
            change, built after the pin was switched: an upper bound of command -> GPIO);
  response  the command_response carrying the command's command_id.
Two runs per runtime: "idle", the commands 20 ms apart with no sensor pass among them
(the telemetry interval is longer than the run); "passes", a sensor pass every 2 s while
the commands come 100 to 300 ms apart (300 of them span two DHT intervals): the DHT's
measure() holds the CPU ~270 ms (tools/farmsim/stubs/dht.py, as drivers/dht/dht.c), and
a command that arrives meanwhile waits for it.
Alone: python bench/command_latency.py [COMMANDS] [idle|passes]"""
import checkout  # noqa: F401, I001  first: the farmctl of this checkout (bench/checkout.py)
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from devicerun import Traffic, summary

from farmctl.broker import Mosquitto
from farmsim.nodes import VirtualNode

DEVICE_ID = "node-b1"
COMMANDS = 300
# Each run: (telemetry interval s, gap s after a command has completed, before the next,
# +- jitter s). The jitter (seeded: the same gaps each time) lets the commands arrive at
# any moment of the node's passes, not in step with them.
RUNS = {"idle": (60, 0.02, 0), "passes": (2, 0.2, 0.1)}
COMMAND_TIMEOUT_S = 5.0
STARTUP_TIMEOUT_S = 30.0  # broker, node boot, online status and the boot reading
RUN_TIMEOUT_S = 120.0  # every command of one run; what is left unsent counts as timed out
TOPIC = "farm/%s/" % DEVICE_ID


def _next(traffic, deadline):
    """(arrival perf_counter_ns, topic, decoded payload), or None once deadline (monotonic) has passed."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        got = traffic.next(min(left, 0.2))
        if got is None:
            continue
        try:
            return got[1], got[2], json.loads(got[3])
        except ValueError:
            continue  # not ours to judge here


def _wait_for(traffic, node, what, matches, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        got = _next(traffic, deadline)
        if got is None:
            raise RuntimeError("%s node: no %s in %d s; console:\n%s"
                               % (node.runtime, what, timeout_s, node.console()[-2000:]))
        if matches(got[1], got[2]):
            return got[2]


def _one_command(traffic, i):
    """Send command i; (ms to the telemetry with the new state, ms to its response),
    with None for what did not arrive within COMMAND_TIMEOUT_S."""
    state = 1 if i % 2 == 0 else 0  # relays are off at boot: on first
    command_id = "lat-%d" % i
    relay_ms = response_ms = None
    sent = traffic.send(TOPIC + "commands", {"command_id": command_id, "command": "relay",
                                             "parameters": {"relay": "irrigation", "state": "on" if state else "off"}})
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while relay_ms is None or response_ms is None:
        got = _next(traffic, deadline)
        if got is None:
            break
        arrived, topic, data = got
        if topic.endswith("/telemetry") and relay_ms is None and data["relays"]["irrigation"] == state:
            relay_ms = (arrived - sent) / 1e6
        elif topic.endswith("/command_response") and data.get("command_id") == command_id:
            response_ms = (arrived - sent) / 1e6
            if not data["success"]:  # a refused command moves nothing: no telemetry will come
                raise RuntimeError("%s refused: %s" % (command_id, data["error"]))
    return relay_ms, response_ms


def measure(runtime, commands=COMMANDS, run="idle"):
    """Latency of `commands` relay commands to a virtual node under runtime
    ("micropython" or "cpython") in one of RUNS: p50/p99/max ms of relay and response,
    and timeouts."""
    interval_s, gap_s, jitter_s = RUNS[run]
    gaps = random.Random(1)
    relay_ms, response_ms, timeouts = [], [], 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        broker = Mosquitto(Path(workdir) / "broker", persistence=False)
        node = traffic = None
        try:
            broker.start()
            traffic = Traffic(broker, [TOPIC + "telemetry", TOPIC + "status", TOPIC + "command_response"])
            node = VirtualNode(Path(workdir) / "node", {"device_id": DEVICE_ID, "interval_s": interval_s},
                               {"wifi": {"ssid": "farm", "password": "farmpass"},
                                "mqtt": {"host": broker.host, "port": broker.port}}, runtime=runtime)
            node.start()
            _wait_for(traffic, node, "online status", lambda t, d: t.endswith("/status") and d.get("status") == "online",
                      STARTUP_TIMEOUT_S)
            # The boot reading's sensor pass would share the loop with the first commands.
            _wait_for(traffic, node, "boot reading", lambda t, d: t.endswith("/telemetry"), STARTUP_TIMEOUT_S)
            run_deadline = time.monotonic() + RUN_TIMEOUT_S
            for i in range(commands):
                if time.monotonic() >= run_deadline:
                    timeouts += commands - i
                    break
                relay, response = _one_command(traffic, i)
                if relay is None or response is None:
                    timeouts += 1
                    if not node.running():
                        raise RuntimeError("%s node stopped:\n%s" % (runtime, node.console()[-2000:]))
                else:
                    relay_ms.append(relay)
                    response_ms.append(response)
                time.sleep(gap_s + jitter_s * (2 * gaps.random() - 1))
        finally:
            if traffic is not None:
                traffic.close()
            if node is not None:
                node.stop()
            broker.stop()
    return {"runtime": runtime, "run": run, "commands": commands, "timeouts": timeouts,
            "relay": summary(relay_ms), "response": summary(response_ms),
            "seconds": round(time.monotonic() - started, 1)}


def describe(run):
    """One run's conditions, as the table and BENCHMARKS.md say them."""
    interval_s, gap_s, jitter_s = RUNS[run]
    apart = "%d ms apart" % (gap_s * 1000) if not jitter_s else "%d +- %d ms apart" % (gap_s * 1000, jitter_s * 1000)
    if run == "idle":
        return apart + ", no sensor pass among them"
    return apart + ", a sensor pass every %d s (the DHT's measure() holds the CPU)" % interval_s


def table(results):
    """What `main` prints: a heading, a row per run, runtime and measure, durations."""
    lines = ["command -> relay latency, mosquitto on loopback, QoS 1, %d relay commands one at a time"
             % results[0]["commands"],
             "  (relay: publish -> telemetry with the new state; response: publish -> command_response)",
             "  load average (1, 5, 15 min) at the end: %.2f %.2f %.2f" % os.getloadavg()]
    for run in RUNS:
        rows = [r for r in results if r["run"] == run]
        if not rows:
            continue
        lines.append("  %s: %s" % (run, describe(run)))
        lines.append("  %-12s %-9s %8s %8s %8s %9s" % ("runtime", "measure", "p50 ms", "p99 ms", "max ms", "timeouts"))
        for result in rows:
            for measure_name in ("relay", "response"):
                figures = result[measure_name]
                if figures["p50_ms"] is None:
                    cells = "%8s %8s %8s" % ("-", "-", "-")
                else:
                    cells = "%8.2f %8.2f %8.2f" % (figures["p50_ms"], figures["p99_ms"], figures["max_ms"])
                lines.append("  %-12s %-9s %s %9d" % (result["runtime"], measure_name, cells, result["timeouts"]))
    lines.append("  (took %s)" % ", ".join("%s %s %.1f s" % (r["runtime"], r["run"], r["seconds"]) for r in results))
    return lines


def main():
    commands = int(sys.argv[1]) if len(sys.argv) > 1 else COMMANDS
    runs = sys.argv[2:] or list(RUNS)
    for run in runs:
        if run not in RUNS:
            sys.exit("usage: command_latency.py [COMMANDS] [%s]..." % "|".join(RUNS))
    results = [measure(runtime, commands, run) for run in runs for runtime in ("micropython", "cpython")]
    for line in table(results):
        print(line)


if __name__ == "__main__":
    main()
