# lib/mqtt: the client's bytes on the wire and its bounds, against a scripted peer.
import json

from jsontext import pieces
from mqtt_client import MQTTClient, MQTTException
from scripted_broker import CONNACK_OK, ScriptedBroker
from testkit import raises
from text_payload import TextPayload
from ticks import sleep_ms, ticks_diff, ticks_ms


def client_for(broker, **kwargs):
    kwargs.setdefault("timeout_ms", 2000)
    return MQTTClient("node1", "127.0.0.1", port=broker.port, **kwargs)


def serve(client, done=lambda: False, timeout_ms=2000, pause_ms=5):
    """check_msg() until done() or the timeout; the exception that ended it, or None."""
    started = ticks_ms()
    while not done() and ticks_diff(ticks_ms(), started) < timeout_ms:
        try:
            client.check_msg()
        except (OSError, MQTTException) as exc:
            return exc
        sleep_ms(pause_ms)
    return None


def received():
    got = []
    return got, lambda topic, msg: got.append((topic, msg))


def test_connect_packet_with_will_and_credentials():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("packet",)])
    client = client_for(broker, user="u", password="p", keepalive=60)
    client.set_last_will("farm/node1/status", "off", retain=True, qos=1)
    assert client.connect() == 0
    client.disconnect()
    connect, disconnect = broker.wait()
    assert connect == (b"\x10\x2f\x00\x04MQTT\x04\xee\x00\x3c\x00\x05node1"
                       b"\x00\x11farm/node1/status\x00\x03off\x00\x01u\x00\x01p")
    assert disconnect == b"\xe0\x00"


def test_refused_connection_names_the_reason():
    broker = ScriptedBroker([("packet",), ("send", b"\x20\x02\x00\x04"), ("sleep", 100)])
    err = raises(MQTTException, client_for(broker).connect)
    assert err.code == 4 and "bad user name or password" in str(err)
    broker.wait()


def test_silent_broker_times_out_within_the_bound():
    broker = ScriptedBroker([("packet",), ("hold", 600)])
    client = client_for(broker, timeout_ms=300)
    started = ticks_ms()
    err = raises(OSError, client.connect)
    assert "CONNACK" in str(err)
    assert ticks_diff(ticks_ms(), started) < 1000
    assert not client.is_connected()
    broker.wait()


def test_publish_bytes_qos0_and_qos1_until_puback():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("packet",), ("packet",),
                             ("send", b"\x40\x02\x00\x01"), ("sleep", 300)])
    client = client_for(broker)
    client.connect()
    assert client.publish("a/b", b"hi") is None
    assert client.publish("a/b", "hi", retain=True, qos=1) == 1
    assert 1 in client.inflight
    serve(client, lambda: not client.inflight)
    assert client.inflight == {}
    _, qos0, qos1 = broker.wait()
    assert qos0 == b"\x30\x07\x00\x03a/bhi"
    assert qos1 == b"\x33\x09\x00\x03a/b\x00\x01hi"


def test_long_messages_use_multi_byte_remaining_length():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("packet_head",), ("packet_head",)])
    client = client_for(broker)
    client.connect()
    client.publish("t", b"x" * 200)
    client.publish("t", b"y" * 17000)
    _, short, long = broker.wait()
    assert short == (b"\x30\xcb\x01\x00\x01txx", 3 + 203)  # 203 = 0x4b + 1 * 128
    assert long[0][:4] == b"\x30\xeb\x84\x01" and long[1] == 4 + 17003  # 17003 = 0x6b + 4*128 + 1*16384


def test_incoming_qos1_message_is_delivered_then_acknowledged():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK),
                             ("send", b"\x32\x0c\x00\x05cmd/x\x00\x07{}\x0a"), ("packet",), ("sleep", 200)])
    client = client_for(broker)
    got, cb = received()
    client.set_callback(cb)
    client.connect()
    serve(client, lambda: got)
    assert got == [(b"cmd/x", b"{}\n")]
    _, puback = broker.wait()
    assert puback == b"\x40\x02\x00\x07"


def test_packet_split_across_reads_and_two_packets_in_one_read():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK)]
                            + [("send", bytes((b,))) for b in b"\x30\x08\x00\x01ahe"]
                            + [("sleep", 50), ("send", b"llo" + b"\x30\x04\x00\x01bz"), ("sleep", 200)])
    client = client_for(broker)
    got, cb = received()
    client.set_callback(cb)
    client.connect()
    serve(client, lambda: len(got) >= 2, pause_ms=2)
    assert got == [(b"a", b"hello"), (b"b", b"z")]
    broker.wait()


def test_oversize_message_is_acknowledged_dropped_and_counted():
    big = b"\x00\x01t\x00\x09" + b"x" * 1000
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK),
                             ("send", b"\x32\xed\x07" + big), ("packet",),
                             ("send", b"\x30\x04\x00\x01tk"), ("sleep", 200)])
    client = client_for(broker, rx_size=256)
    got, cb = received()
    client.set_callback(cb)
    client.connect()
    serve(client, lambda: got, pause_ms=2)
    assert got == [(b"t", b"k")]
    assert client.dropped_oversize == 1
    _, puback = broker.wait()
    assert puback == b"\x40\x02\x00\x09"


def test_unacknowledged_publish_is_resent_with_dup_after_reconnect():
    first = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("packet",), ("close",)])
    client = client_for(first)
    client.connect()
    client.publish("t", b"r1", qos=1)
    first.wait()
    lost = serve(client)
    assert isinstance(lost, OSError) and not client.is_connected()
    assert resent_after_reconnect(client) == b"\x3a\x07\x00\x01t\x00\x01r1"  # DUP | QoS 1, same packet id
    assert client.inflight == {}


def resent_after_reconnect(client):
    """What client resends on connecting to a new peer that acknowledges packet id 1."""
    second = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("packet",),
                             ("send", b"\x40\x02\x00\x01"), ("sleep", 200)])
    client.port = second.port
    client.connect(clean_session=False)
    serve(client, lambda: not client.inflight)
    return second.wait()[1]


def test_half_open_connection_is_detected_within_the_keepalive_bound():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("packet",), ("hold", 4000)])
    client = client_for(broker, keepalive=1)
    client.connect()
    started = ticks_ms()
    dead = serve(client, timeout_ms=5000, pause_ms=20)
    elapsed = ticks_diff(ticks_ms(), started)
    assert isinstance(dead, OSError) and "PINGRESP" in str(dead)
    assert 2000 <= elapsed < 3500  # ping after 1 s idle, then 2 s without an answer
    assert broker.wait()[1] == b"\xc0\x00"


def test_subscribe_waits_for_suback_and_reports_refusal():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK),
                             ("packet",), ("send", b"\x90\x03\x00\x01\x01"),
                             ("packet",), ("send", b"\x90\x03\x00\x02\x80"), ("sleep", 100)])
    client = client_for(broker)
    client.connect()
    assert client.subscribe("farm/n/commands", qos=1) == 1
    err = raises(MQTTException, client.subscribe, "secret/#", 1)
    assert "refused" in str(err)
    _, sub, _ = broker.wait()
    assert sub == b"\x82\x14\x00\x01\x00\x0ffarm/n/commands\x01"


def test_wait_msg_returns_after_its_timeout():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("hold", 600)])
    client = client_for(broker)
    client.connect()
    started = ticks_ms()
    assert client.wait_msg(150) is None
    assert 150 <= ticks_diff(ticks_ms(), started) < 500
    broker.wait()


def test_inflight_publishes_are_bounded():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("packet",), ("packet",), ("sleep", 100)])
    client = client_for(broker, max_inflight=2)
    client.connect()
    client.publish("t", b"1", qos=1)
    client.publish("t", b"2", qos=1)
    err = raises(MQTTException, client.publish, "t", b"3", qos=1)
    assert err.code == -2 and len(client.inflight) == 2
    broker.wait()


def test_malformed_remaining_length_drops_the_connection():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("send", b"\x30\xff\xff\xff\xff\x01"),
                             ("sleep", 200)])
    client = client_for(broker)
    client.connect()
    err = serve(client)
    assert isinstance(err, MQTTException) and "remaining length" in str(err)
    assert not client.is_connected()
    broker.wait()


def test_a_large_payload_leaves_whole_without_being_copied_into_the_packet():
    broker = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("packet",), ("packet",)])
    client = client_for(broker)
    client.connect()
    text = '{"config": "%s"}' % ("z" * 1500)  # above one write's size: header, then the payload
    client.publish("farm/n1/command_response", text)
    client.publish("t", "h\u00e9")  # a str's UTF-8 bytes, as CPython encodes them
    _, large, small = broker.wait()
    topic = b"farm/n1/command_response"
    remaining = 2 + len(topic) + len(text)
    assert large == bytes((0x30, remaining & 0x7F | 0x80, remaining >> 7)) + b"\x00\x18" + topic + text.encode()
    assert small == b"\x30\x06\x00\x01th\xc3\xa9"


def test_a_payload_written_as_it_is_sent_goes_with_its_length_first_and_again_after_a_reconnect():
    value = {"relays": {"r%d" % i: {"pin": i, "max_on_s": 600.5, "name": "caf\u00e9"} for i in range(40)}}
    expected = json.dumps(value).encode()  # the same text as json.dumps writes on each runtime
    first = ScriptedBroker([("packet",), ("send", CONNACK_OK), ("packet",), ("close",)])
    client = client_for(first)
    client.connect()
    client.publish("t", TextPayload(lambda: pieces(value)), qos=1)
    _, sent = first.wait()
    assert len(expected) > 1000
    assert sent[:1] == b"\x32" and sent.endswith(b"\x00\x01t\x00\x01" + expected)
    assert serve(client) is not None  # the broker closed before its PUBACK
    resent = resent_after_reconnect(client)
    assert resent[:1] == b"\x3a" and resent.endswith(b"\x00\x01t\x00\x01" + expected)
    payload = TextPayload(lambda: pieces(value))
    assert payload.text().encode() == expected and len(payload) == len(expected)
