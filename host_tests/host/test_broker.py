"""The test broker itself: mosquitto starts on loopback, carries messages, keeps retained ones."""
import queue

import paho.mqtt.client as mqtt
import pytest

import farmctl.broker
from farmctl.broker import Mosquitto, free_port


def backend_client(broker, client_id):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.connect(broker.host, broker.port, keepalive=10)
    client.loop_start()
    return client


def receive_one(broker, topic, timeout_s=5):
    got = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="reader")
    client.on_message = lambda c, u, msg: got.put((msg.topic, msg.payload, msg.retain))
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.connect(broker.host, broker.port, keepalive=10)
    client.loop_start()
    try:
        return got.get(timeout=timeout_s)
    finally:
        client.loop_stop()
        client.disconnect()


def test_broker_listens_on_loopback_with_our_config(broker):
    assert broker.host == "127.0.0.1"
    text = broker.conf_path.read_text()
    assert f"listener {broker.port} 127.0.0.1" in text
    assert "set_tcp_nodelay true" in text and "persistence true" in text


def test_retained_message_survives_a_broker_restart(broker):
    writer = backend_client(broker, "writer")
    writer.publish("farm/t1/status", b'{"status": "online"}', qos=1, retain=True).wait_for_publish(5)
    writer.loop_stop()
    writer.disconnect()
    broker.restart()
    topic, payload, retained = receive_one(broker, "farm/+/status")
    assert (topic, payload, retained) == ("farm/t1/status", b'{"status": "online"}', True)


def test_a_port_taken_before_mosquitto_binds_it_is_not_mistaken_for_ours(broker, tmp_path, monkeypatch):
    # Tests run in parallel: a port free when drawn may be another broker's by the bind.
    draws = iter([broker.port, broker.port, free_port()])
    monkeypatch.setattr(farmctl.broker, "free_port", lambda host: next(draws))
    second = Mosquitto(tmp_path / "second")
    with second:
        assert second.port != broker.port and second.process.poll() is None
    told = Mosquitto(tmp_path / "told", port=broker.port)  # a port the caller chose stays
    with pytest.raises(RuntimeError, match="Address already in use"):
        told.start(timeout_s=5)
    assert told.process is None
