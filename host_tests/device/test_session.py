# The MQTT session's connection: what it says to the broker, in which order.
from firmware.session import Session
from sessionkit import FakeClient


def test_the_node_subscribes_before_it_says_online():
    # A backend may send a command the moment it sees "online": it must not be lost.
    client = FakeClient()
    session = Session(client, OSError, "farm/n1/status", "offline",
                      ["farm/n1/commands", "farm/all/commands"], None, lambda text: None)
    session.online_payload = lambda: "online"
    session.poll(True)
    assert session.connected
    assert client.order == [("will", "farm/n1/status"), ("connect", True),
                            ("subscribe", "farm/n1/commands"), ("subscribe", "farm/all/commands"),
                            ("publish", "farm/n1/status")], client.order
