"""Home Assistant discovery with the broker in the loop, under both runtimes: paho plays
Home Assistant's MQTT integration as its documentation describes it (retained device
config, availability from the status topic, a switch's command payload, the birth
message). The real Home Assistant runs in `make test-ha`."""
import json
import signal

import pytest

from backend import Backend

RUNTIMES = ("micropython", "cpython")
DISCOVERY = "homeassistant/device/node-t1/config"


def available(status, template):
    """What the node's availability template gives for a status payload."""
    assert template == "{{ 'online' if value_json.status == 'online' else 'offline' }}", template
    return "online" if status["status"] == "online" else "offline"


def value(message, template):
    """Home Assistant's "{{ value_json.a.b }}" over a JSON message."""
    for part in template[len("{{ value_json."):-3].split("."):
        message = message[part]
    return message


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_switch_moves_the_relay_and_its_state_comes_back(broker, nodes, runtime):
    nodes(broker, runtime)
    ha = Backend(broker, ["homeassistant/device/+/config", "farm/node-t1/#"], client_id="homeassistant")
    config = ha.wait_for(lambda t, d, r: t == DISCOVERY and d)
    switch = config["cmps"]["node-t1_irrigation"]
    assert switch["p"] == "switch"
    ha.client.publish(switch["cmd_t"], switch["pl_on"], qos=1)  # the user flips it in Home Assistant
    on = ha.wait_for(lambda t, d, r: t == config["stat_t"] and str(value(d, switch["val_tpl"])) == switch["stat_on"])
    assert on["relays"]["irrigation"] == 1
    ha.client.publish(switch["cmd_t"], switch["pl_off"], qos=1)
    ha.wait_for(lambda t, d, r: t == config["stat_t"] and str(value(d, switch["val_tpl"])) == switch["stat_off"])
    ha.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_device_config_is_retained_and_a_dead_node_shows_unavailable(broker, nodes, runtime):
    node = nodes(broker, runtime, config={"mqtt": {"keepalive": 2}})
    watcher = Backend(broker, [DISCOVERY], client_id="watcher")
    watcher.wait_for(lambda t, d, r: t == DISCOVERY and d)
    # Home Assistant started later: it finds the device and its availability retained
    ha = Backend(broker, ["homeassistant/device/+/config"], client_id="homeassistant")
    config = ha.wait_for(lambda t, d, r: t == DISCOVERY and r and d)
    availability = Backend(broker, [config["avty_t"]], client_id="homeassistant-availability")
    state = availability.wait_for(lambda t, d, r: r)
    assert available(state, config["avty_tpl"]) == "online"
    node.kill(signal.SIGKILL)
    will = availability.wait_for(lambda t, d, r: d and available(d, config["avty_tpl"]) == "offline")
    assert will["reason"] == "lwt"
    for client in (watcher, ha, availability):
        client.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_home_assistant_online_brings_the_device_and_a_reading_again(broker, nodes, runtime):
    nodes(broker, runtime, config={"interval_s": 60})
    ha = Backend(broker, ["homeassistant/device/+/config", "farm/node-t1/telemetry"], client_id="homeassistant")
    ha.wait_for(lambda t, d, r: t == DISCOVERY and d)
    ha.client.publish("homeassistant/status", "online", qos=1)  # Home Assistant restarted
    again = ha.wait_for(lambda t, d, r: t == DISCOVERY and d and not r, timeout_s=10)  # live, not the retained copy
    assert again["dev"]["ids"] == ["node-t1"]
    # the boot's reading is seq 0 and the next is a minute away: this one is the answer
    ha.wait_for(lambda t, d, r: t.endswith("/telemetry") and d["seq"] == 1, timeout_s=10)
    ha.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_turning_discovery_off_removes_the_device(broker, nodes, runtime):
    nodes(broker, runtime)
    ha = Backend(broker, ["homeassistant/device/+/config", "farm/node-t1/command_response"], client_id="homeassistant")
    ha.wait_for(lambda t, d, r: t == DISCOVERY and d)
    ha.client.publish("farm/node-t1/config", json.dumps({"command_id": "off1", "homeassistant": {"discovery": False}}),
                      qos=1)
    answer = ha.wait_for(lambda t, d, r: t.endswith("/command_response") and d["command_id"] == "off1")
    assert answer["success"], answer
    ha.wait_for(lambda t, d, r: t == DISCOVERY and d is None, timeout_s=20)  # the empty retained message
    assert ha.raw[-1] == b""
    ha.close()
    later = Backend(broker, ["homeassistant/#"], client_id="homeassistant-later")
    with pytest.raises(AssertionError):
        later.wait_for(lambda t, d, r: t == DISCOVERY, timeout_s=2)  # nothing retained is left
    later.close()
