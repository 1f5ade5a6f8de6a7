# The MQTT session's connection: what it says to the broker, in which order.
from firmware.session import Session
from mqtt_client import MQTTException
from sessionkit import FakeClient
from ticks import ticks_ms


def test_the_node_subscribes_before_it_says_online():
    # A backend may send a command the moment it sees "online": it must not be lost.
    client = FakeClient()
    session = Session(client, "farm/n1/status", "offline",
                      ["farm/n1/commands", "farm/all/commands"], None, lambda text: None)
    session.online_payload = lambda: "online"
    session.poll(True)
    assert session.connected
    assert client.order == [("will", "farm/n1/status"), ("connect", True),
                            ("subscribe", "farm/n1/commands"), ("subscribe", "farm/all/commands"),
                            ("publish", "farm/n1/status")], client.order


class UmqttLike:
    """umqtt.simple's surface and its ways of failing: connect() asserts on a CONNACK it
    did not expect; an empty read (the broker hung up) is an IndexError."""

    def __init__(self, connect_failures):
        self.server, self.port, self.sock = "broker", 1883, None
        self.connect_failures = list(connect_failures)
        self.check_failure = None
        self.published = []

    def set_callback(self, cb):
        pass

    def set_last_will(self, topic, msg, retain=False, qos=0):
        pass

    def connect(self, clean_session=True):
        if self.connect_failures:
            raise self.connect_failures.pop(0)

    def subscribe(self, topic, qos=0):
        pass

    def publish(self, topic, msg, retain=False, qos=0):
        self.published.append(topic)

    def check_msg(self):
        failure, self.check_failure = self.check_failure, None
        if failure is not None:
            raise failure

    def disconnect(self):
        pass


def test_whatever_the_client_raises_is_a_lost_link_logged_and_tried_again():
    client = UmqttLike([AssertionError(), IndexError("index out of range")])
    logs = []
    session = Session(client, "farm/n1/status", "offline", ["farm/n1/commands"], None, logs.append)
    session.online_payload = lambda: "online"
    for expected in ("AssertionError", "IndexError"):
        session.poll(True)
        assert not session.connected and "cannot connect" in logs[-1] and expected in logs[-1], logs
        session._next_try = ticks_ms()  # its backoff is over
    session.poll(True)
    assert session.connected and client.published == ["farm/n1/status"]
    client.check_failure = IndexError("index out of range")
    session.poll(True)
    assert not session.connected and "connection lost: IndexError" in logs[-1], logs


def test_a_link_lost_by_an_answer_sent_while_reading_is_said_once_with_its_own_cause():
    """A command's answer, published from inside check_msg, fails: that is the cause
    logged, not the "not connected" the read that goes on meets next."""
    client = UmqttLike([])
    logs = []
    session = Session(client, "farm/n1/status", "offline", ["farm/n1/commands"], None, logs.append)
    session.online_payload = lambda: "online"
    session.poll(True)

    def failing_publish(topic, msg, retain=False, qos=0):
        raise OSError(110, "write timed out after 5000 ms")

    def answering_read():
        session.publish("farm/n1/command_response", "{}")  # what the node's callback does
        raise OSError(107, "not connected")  # the client, closed by the failed write

    client.publish = failing_publish
    client.check_msg = answering_read
    session.poll(True)
    lost = [line for line in logs if "connection lost" in line]
    assert not session.connected and len(lost) == 1 and "write timed out" in lost[0], logs


class HeapShortClient(FakeClient):
    """Ours, with no heap for one publish's in-flight entry: nothing is sent."""

    def __init__(self):
        super().__init__()
        self.short = False

    def publish(self, topic, msg, retain=False, qos=0):
        if self.short:
            self.short = False
            raise MemoryError("memory allocation failed, allocating 64 bytes")
        super().publish(topic, msg, retain, qos)


def test_a_message_the_client_had_no_heap_to_take_is_sent_after_the_reconnect():
    client = HeapShortClient()
    logs = []
    session = Session(client, "farm/n1/status", "offline", [], None, logs.append)
    session.online_payload = lambda: "online"
    session.poll(True)
    client.short = True
    session.enqueue("farm/n1/telemetry", '{"seq": 0}')
    assert not session.connected and "MemoryError" in logs[-1], logs
    session.enqueue("farm/n1/telemetry", '{"seq": 1}')
    session._next_try = ticks_ms()
    session.poll(True)
    sent = [msg for topic, msg in client.delivered if topic == "farm/n1/telemetry"]
    assert session.connected and sent == ['{"seq": 0}', '{"seq": 1}'], sent  # none lost, in order


class WindowClient(FakeClient):
    """Refuses a QoS 1 publish while max_inflight await PUBACK, as ours does."""

    def publish(self, topic, msg, retain=False, qos=0):
        if qos == 1 and len(self.inflight) >= self.max_inflight:
            raise MQTTException(-2, "%d publishes await PUBACK" % len(self.inflight))
        super().publish(topic, msg, retain, qos)


def test_answers_beyond_the_in_flight_window_wait_their_turn_without_a_reconnect():
    # A flood of commands arrives ahead of the PUBACKs of their answers: the window fills.
    client = WindowClient()
    client.max_inflight = 2
    logs = []
    session = Session(client, "farm/n1/status", "offline", [], None, logs.append)
    session.online_payload = lambda: "online"
    session.poll(True)
    client.ack()
    for n in range(5):
        assert session.publish("farm/n1/command_response", '{"n": %d}' % n) is True
    assert session.connected and len(client.inflight) == 2, logs
    # A retained one cannot wait on the queue (it leaves without retain): not sent, said so.
    assert session.publish("farm/n1/ha", b"", True, 1) is False and session.connected, logs
    while len(session.queue):
        client.ack()  # the PUBACKs come
        session.poll(True)
    sent = [msg for topic, msg in client.delivered if topic == "farm/n1/command_response"]
    assert sent == ['{"n": %d}' % n for n in range(5)], sent  # every answer, in order
    assert "farm/n1/ha" not in [topic for topic, msg in client.delivered]
    assert [step for step in client.order if step[0] == "connect"] == [("connect", True)], client.order
