"""The backend's proof that no reading was lost: a paho collector with a persistent
QoS 1 session, and the invariants of PROTOCOL.md checked over what it received."""
import json
import threading
import time

import paho.mqtt.client as mqtt


class Collector:
    """Every telemetry message of the given topic, in arrival order, de-duplicated later."""

    def __init__(self, broker, topic, client_id):
        self.received = []  # (boot_id, seq, message) in arrival order, duplicates included
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        data = json.loads(message.payload)
        with self._lock:
            self.received.append((data["boot_id"], data["seq"], data))

    def snapshot(self):
        with self._lock:
            return list(self.received)

    def wait_for_seq(self, seq, timeout_s=30):
        """Until a reading numbered seq or later has arrived (of any boot)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(s >= seq for _, s, _ in self.snapshot()):
                return
            time.sleep(0.1)
        raise AssertionError(f"no reading {seq} in {timeout_s} s; last {self.snapshot()[-3:]}")

    def last_seq(self):
        got = self.snapshot()
        return got[-1][1] if got else -1

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def check_stream(received):
    """Per boot, over the readings a later one proves were due: every seq from 0 up to
    the highest arrived, unless counted in meta.dropped; after de-duplication by
    (boot_id, seq), the first arrivals in order. Returns {boot_id: (unique, duplicates,
    dropped)}; raises AssertionError naming what broke."""
    report = {}
    boots = {}
    for boot_id, seq, message in received:
        boots.setdefault(boot_id, []).append((seq, message["meta"]))
    for boot_id, readings in boots.items():
        seen = set()
        order = []
        for seq, _ in readings:
            if seq not in seen:
                seen.add(seq)
                order.append(seq)
        assert order == sorted(order), f"boot {boot_id}: out of order: {order}"
        dropped = max(meta.get("dropped") or 0 for _, meta in readings)
        missing = sorted(set(range(max(order) + 1)) - seen)
        assert len(missing) <= dropped, (
            f"boot {boot_id}: {len(missing)} readings lost ({missing[:10]}...), only {dropped} counted as dropped")
        report[boot_id] = (len(order), len(readings) - len(order), dropped)
    return report
