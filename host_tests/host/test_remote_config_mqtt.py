"""Remote config through mosquitto, under both runtimes: a config on the config topic is
applied and answered; a config that moves the node to another broker is tried, kept
once that broker is reached, and undone (back on the old broker, with an alert) when it
is not reached within mqtt.fallback_s, also when the new Wi-Fi cannot be joined."""
import json

import pytest

from backend import Backend
from farmctl.broker import Mosquitto

RUNTIMES = ("micropython", "cpython")


def is_online(topic, data, retain):
    return topic == "farm/node-t1/status" and data and data.get("status") == "online"


def response(command_id):
    return lambda t, d, r: t == "farm/node-t1/command_response" and d and d.get("command_id") == command_id


def saved_secrets(node):
    return json.loads((node.root / "secrets.json").read_text())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_config_topic_then_a_move_to_another_broker(broker, nodes, runtime, tmp_path):
    with Mosquitto(tmp_path / "second", persistence=False) as second:
        old_side = Backend(broker, ["farm/#"])
        new_side = Backend(second, ["farm/#"], client_id="backend-2")
        node = nodes(broker, runtime, config={"interval_s": 5, "mqtt": {"fallback_s": 20}})
        old_side.wait_for(is_online)
        old_side.client.publish("farm/node-t1/config", json.dumps({"command_id": "c1", "interval_s": 2}), qos=1)
        answer = old_side.wait_for(response("c1"))
        assert answer["success"] is True and answer["response"] == {"changed": ["interval_s"]}
        old_side.client.publish("farm/node-t1/commands", json.dumps(
            {"command_id": "c2", "command": "config", "parameters": {"mqtt": {"port": second.port}}}), qos=1)
        answer = old_side.wait_for(response("c2"))
        assert answer["success"] is True and answer["response"]["reconnect"] is True, answer
        offline = old_side.wait_for(lambda t, d, r: t == "farm/node-t1/status" and d["status"] == "offline")
        assert offline["reason"] == "reconfigure"
        new_side.wait_for(is_online)
        reading = new_side.wait_for(lambda t, d, r: t == "farm/node-t1/telemetry")
        assert reading["device_id"] == "node-t1"
        assert saved_secrets(node)["mqtt"]["port"] == second.port  # kept once it worked
        old_side.close()
        new_side.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("change", ["broker", "wifi"])
def test_an_unreachable_new_link_falls_back_to_the_old_one(broker, nodes, runtime, change):
    backend = Backend(broker, ["farm/#"])
    node = nodes(broker, runtime, config={"interval_s": 2, "mqtt": {"fallback_s": 5}})
    backend.wait_for(is_online)
    patch = {"mqtt": {"port": 1}} if change == "broker" else {"wifi": {"ssid": "no-such-ap"}}
    backend.client.publish("farm/node-t1/commands", json.dumps(
        {"command_id": "move", "command": "config", "parameters": patch}), qos=1)
    answer = backend.wait_for(response("move"))
    assert answer["success"] is True and answer["response"]["fallback_s"] == 5
    backend.wait_for(lambda t, d, r: t == "farm/node-t1/status" and d["status"] == "offline")
    backend.wait_for(is_online, timeout_s=30)  # back after ~5 s
    alert = backend.wait_for(lambda t, d, r: t == "farm/node-t1/alert" and d.get("rule") == "config")
    assert "back on the old config" in alert["message"] and alert["severity"] == "warning"
    secrets = saved_secrets(node)
    assert secrets["mqtt"]["port"] == broker.port and secrets["wifi"]["ssid"] == "farm"  # never saved
    seq = backend.wait_for(lambda t, d, r: t == "farm/node-t1/telemetry")["seq"]
    backend.wait_for(lambda t, d, r: t == "farm/node-t1/telemetry" and d["seq"] > seq)
    backend.close()
