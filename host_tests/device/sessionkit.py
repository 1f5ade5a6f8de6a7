# A stand-in for the MQTT client under firmware/session.py, for the session's device tests.


class FakeClient:
    """Our MQTT client's surface: QoS 1 publishes wait in inflight until ack(); order
    holds what the session asked for, in turn: ("will"|"connect"|"subscribe"|"publish", topic)."""

    def __init__(self):
        self.server, self.port = "broker", 1883
        self.inflight = {}
        self.max_inflight = 16
        self.up = True  # the broker answers
        self.delivered = []
        self._pid = 0
        self.order = []

    def set_callback(self, cb):
        pass

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.order.append(("will", topic))

    def connect(self, clean_session=True):
        if not self.up:
            raise OSError("ECONNREFUSED")
        self.order.append(("connect", clean_session))
        for pid in sorted(self.inflight):  # as ours does: resent after a reconnect
            self.delivered.append(self.inflight[pid][:2])

    def publish(self, topic, msg, retain=False, qos=0):
        self.order.append(("publish", topic))
        self._pid += 1
        self.inflight[self._pid] = (topic, msg, retain)
        self.delivered.append((topic, msg))

    def ack(self):
        self.inflight.clear()

    def subscribe(self, topic, qos=0):
        self.order.append(("subscribe", topic))

    def check_msg(self):
        pass

    def wait_msg(self, ms):
        return None

    def close(self):
        pass
