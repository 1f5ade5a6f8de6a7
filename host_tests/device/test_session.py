# The MQTT session's connection: what it says to the broker, in which order.
from firmware.session import Session


class OrderClient:
    """Records the packets a session sends, in order."""

    def __init__(self):
        self.server, self.port = "broker", 1883
        self.sent = []

    def set_callback(self, cb):
        pass

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.sent.append(("will", topic))

    def connect(self, clean_session=True):
        self.sent.append(("connect", clean_session))

    def subscribe(self, topic, qos=0):
        self.sent.append(("subscribe", topic))

    def publish(self, topic, msg, retain=False, qos=0):
        self.sent.append(("publish", topic))

    def check_msg(self):
        pass


def test_the_node_subscribes_before_it_says_online():
    # A backend may send a command the moment it sees "online": it must not be lost.
    client = OrderClient()
    session = Session(client, OSError, "farm/n1/status", "offline",
                      ["farm/n1/commands", "farm/all/commands"], None, lambda text: None)
    session.online_payload = lambda: "online"
    session.poll(True)
    assert session.connected
    assert client.sent == [("will", "farm/n1/status"), ("connect", True),
                           ("subscribe", "farm/n1/commands"), ("subscribe", "farm/all/commands"),
                           ("publish", "farm/n1/status")], client.sent
