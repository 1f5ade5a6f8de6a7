"""The node's own irrigation with mosquitto stopped: a rule starts and stops the valve
while no broker is there (past the failsafe), and every start and stop arrives once the
broker is back, in order, in telemetry and as alerts. Both runtimes at once; loopback
only, bounded in time."""
import json
import time

from telemetry_check import Collector, check_stream

RUNTIMES = ("micropython", "cpython")
RULE = {"relay": "irrigation", "sensor": "moisture", "on_below": 25, "off_above": 40, "max_run_s": 12,
        "min_rest_s": 2}


class Alerts(Collector):
    """Every alert on topic, in arrival order, through the same persistent QoS 1 session
    as telemetry's (what a backend keeps while the broker is down)."""

    def _on_message(self, client, userdata, message):
        with self._lock:
            self.received.append(json.loads(message.payload))

    def about_relays(self):
        with self._lock:
            return [m["message"] for m in self.received if m["sensor"] is None]


def wait(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what()
        time.sleep(0.1)


def test_a_rule_irrigates_through_a_broker_outage_and_every_start_and_stop_arrives_in_order(broker, nodes, tmp_path):
    members = []
    try:
        for i, runtime in enumerate(RUNTIMES):
            device = f"node-a{i}"
            telemetry = Collector(broker, f"farm/{device}/telemetry", f"telemetry-{device}")
            alerts = Alerts(broker, f"farm/{device}/alert", f"alerts-{device}")
            field = tmp_path / f"field-{device}.json"
            field.write_text(json.dumps({"moisture": 45}))
            node = nodes(broker, runtime, {"device_id": device, "failsafe_s": 10, "mqtt": {"keepalive": 2},
                                           "automation": {"rules": {"dry": RULE}}}, field_file=field)
            members.append((runtime, telemetry, alerts, field, node))
        for runtime, telemetry, *_ in members:
            telemetry.wait_for_seq(1)
        broker.stop()
        started = time.monotonic()
        for _, _, _, field, _ in members:
            field.write_text(json.dumps({"moisture": 15}))  # dry: the rule starts, no broker to ask
        time.sleep(17)  # 12 s run (past the 10 s failsafe), 2 s rest, then it starts again
        for _, _, _, field, _ in members:
            field.write_text(json.dumps({"moisture": 45}))  # wet: the rule stops
        time.sleep(2)
        outage_s = time.monotonic() - started
        broker.start()
        for runtime, telemetry, alerts, field, node in members:
            wanted = [("started", "< 25"), ("stopped", "max_run_s reached"), ("started", "< 25"),
                      ("stopped", "> 40")]
            wait(lambda: len(alerts.about_relays()) >= len(wanted), 30,
                 lambda: f"{runtime}: alerts {alerts.about_relays()}; {node.console()[-2500:]}")
            got = alerts.about_relays()
            assert len(got) == len(wanted), (runtime, got)
            for message, (verb, reason) in zip(got, wanted):
                assert message.startswith(f"irrigation {verb}: dry: ") and message.endswith(reason), (runtime, got)
            console = node.console()
            assert "failsafe: no broker for 10 s, every relay off but the automation's" in console, runtime
            # Telemetry: none lost, in order, and the relay as the rule drove it. The outbox
            # drains in order: once two newer readings are in, every reading of the outage is.
            telemetry.wait_for_seq(telemetry.last_seq() + 2, timeout_s=20)
            report = check_stream(telemetry.snapshot())
            assert len(report) == 1 and next(iter(report.values()))[2] == 0, (runtime, report)
            states = [m["relays"]["irrigation"] for _, _, m in telemetry.snapshot()]
            runs = [state for i, state in enumerate(states) if i == 0 or state != states[i - 1]]
            assert runs == [0, 1, 0, 1, 0], (runtime, states)
            holders = [m["meta"]["automation"] for _, _, m in telemetry.snapshot() if m["relays"]["irrigation"]]
            assert holders and all(h == {"irrigation": "dry"} for h in holders), (runtime, holders)
            assert outage_s >= 18, outage_s
    finally:
        for _, telemetry, alerts, _, _ in members:
            telemetry.close()
            alerts.close()
