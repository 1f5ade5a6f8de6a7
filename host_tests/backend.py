"""A backend's side of the broker for host tests: a paho client that records messages."""
import json
import queue
import threading
import time

import paho.mqtt.client as mqtt


class Backend:
    """A paho client that records every message (topic, payload, retain) it receives."""

    def __init__(self, broker, topics, client_id="backend", persistent=False, tls_ca=None, auth=None):
        """auth: (user, password) for a broker that wants them."""
        self.messages = queue.Queue()
        self.seen = []  # (topic, parsed payload or None, retain) of each message looked at
        self.raw = []  # its payload as it came, bytes
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=not persistent)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        # Not before the broker has the subscriptions: an answer to a command sent
        # right after this returns would otherwise pass unseen.
        if not self.subscribed.wait(10):
            self.close()
            raise AssertionError(f"backend {client_id}: no SUBACK from {broker.host}:{broker.port} in 10 s")

    def wait_for(self, predicate, timeout_s=15):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                topic, payload, retain = self.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                data = json.loads(payload)
            except ValueError:
                data = None
            self.seen.append((topic, data, retain))
            self.raw.append(payload)
            if predicate(topic, data, retain):
                return data
        raise AssertionError(f"no matching message in {timeout_s} s; saw {self.seen[-5:]}")

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()
