# Home Assistant MQTT discovery (firmware/ha_discovery.py), checked against what Home
# Assistant documents for device-based discovery (2024.11+) and for its sensor, switch
# and binary_sensor platforms: required keys, device classes and their units.
import json

from firmware import ha_discovery
from nodekit import make_node, send
from ticks import sleep_ms, ticks_diff, ticks_ms

TOPIC = "homeassistant/device/n1/config"
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
# Home Assistant's sensor device classes used here and the units it accepts for each
# (developers.home-assistant.io, SensorDeviceClass); None: unitless.
UNITS = {"moisture": ("%",), "temperature": ("°C", "°F", "K"), "humidity": ("%",), "ph": (None,),
         "conductivity": ("S/cm", "mS/cm", "µS/cm"), "wind_speed": ("km/h", "m/s", "mph", "kn", "ft/s", "Beaufort"),
         "signal_strength": ("dB", "dBm"), "data_size": ("B", "kB", "KiB", "MB", "MiB")}
# telemetry key -> (device class, unit) the issue asks for
WANTED = {"moisture": ("moisture", "%"), "temp": ("temperature", "°C"), "humidity": ("humidity", "%"),
          "ph": ("ph", None), "ec": ("conductivity", "mS/cm"), "wind_speed": ("wind_speed", "km/h"),
          "n": (None, "mg/kg"), "p": (None, "mg/kg"), "k": (None, "mg/kg")}


def discovered(patch=None):
    chip, node = make_node(patch)
    node.step()  # connected: the node describes itself
    return chip, node, node.link.session.retained.get(TOPIC)


def lookup(message, template):
    """What Home Assistant's "{{ value_json.a.b }}" gives for message (None: unknown)."""
    assert template.startswith("{{ value_json.") and template.endswith(" }}"), template
    value = message
    for part in template[len("{{ value_json."):-3].split("."):
        assert part in value, (template, sorted(value))  # a missing key would be an error, not unknown
        value = value[part]
    return value


def test_the_device_config_has_what_home_assistant_requires():
    chip, node, text = discovered()
    config = json.loads(text)
    device = config["dev"]
    assert device["ids"] == ["n1"] and device["name"] == "n1" and device["mf"] == "farmnode"
    assert device["mdl"] and device["sw"] == config["o"]["sw"] and config["o"]["name"] == "farmnode"
    mac = device["cns"][0]
    assert mac[0] == "mac" and len(mac[1]) == 17 and mac[1].count(":") == 5
    assert config["avty_t"] == "farm/n1/status" and config["avty_tpl"] == ha_discovery.AVAILABILITY
    assert config["stat_t"] == "farm/n1/telemetry"
    for object_id, component in config["cmps"].items():
        assert component["p"] in ("sensor", "switch", "binary_sensor"), component
        assert component["qos"] == 1, component  # a device-level qos is not passed on to components
        assert component["uniq_id"] == object_id and object_id.startswith("n1_"), component
        assert component["name"], component


def test_one_sensor_per_fitted_sensor_with_its_class_and_unit_and_two_diagnostics():
    chip, node, text = discovered()
    components = json.loads(text)["cmps"]
    sensors = {object_id[3:]: c for object_id, c in components.items() if c["p"] == "sensor"}
    fitted = set()
    for driver in node.reader.drivers:
        fitted.update(driver.keys)
    fitted.discard("wind_gust")  # in telemetry only when measured: no entity of its own
    assert set(sensors) == fitted | {"rssi", "heap_free"}, sorted(sensors)
    for key, component in sensors.items():
        assert component["stat_cla"] == "measurement", component
        device_class = component.get("dev_cla")
        unit = component.get("unit_of_meas")
        if key in WANTED:
            assert (device_class, unit) == WANTED[key], (key, component)
        if device_class is not None:
            assert unit in UNITS[device_class], (key, component)
    assert sensors["rssi"]["ent_cat"] == "diagnostic" and sensors["heap_free"]["ent_cat"] == "diagnostic"
    assert all("ent_cat" not in sensors[key] for key in fitted)


def test_every_value_template_reads_the_nodes_telemetry_and_a_null_stays_unknown():
    chip, node, text = discovered()
    chip.field.fault("npk", "timeout")
    node.publish_reading({"moisture": 41.5, "n": None}, {"npk": "timeout"})
    reading = node.link.session.on("farm/n1/telemetry")[-1]
    for component in json.loads(text)["cmps"].values():
        value = lookup(reading, component["val_tpl"])
        if component["p"] == "sensor":
            assert value is None or type(value) in (int, float), (component, value)
    assert lookup(reading, "{{ value_json.sensors.n }}") is None  # rendered "None": unknown in Home Assistant


def test_a_switch_per_relay_whose_payloads_are_farmnode_commands_that_move_it():
    chip, node, text = discovered()
    switches = {c["uniq_id"][3:]: c for c in json.loads(text)["cmps"].values() if c["p"] == "switch"}
    assert sorted(switches) == sorted(node.relays.relays)
    irrigation = switches["irrigation"]
    assert irrigation["cmd_t"] == "farm/n1/commands"
    assert (irrigation["stat_on"], irrigation["stat_off"]) == ("1", "0")
    answer = send(node, irrigation["pl_on"].encode())
    assert answer["success"] and chip.relay_on("irrigation"), answer
    state = lookup(node.link.session.on("farm/n1/telemetry")[-1], irrigation["val_tpl"])
    assert str(state) == irrigation["stat_on"]
    assert send(node, irrigation["pl_off"].encode())["success"] and not chip.relay_on("irrigation")
    assert str(lookup(node.link.session.on("farm/n1/telemetry")[-1], irrigation["val_tpl"])) == "0"


def test_a_node_that_takes_only_signed_commands_shows_its_relays_read_only():
    chip, node, text = discovered({"signing": {"key": KEY}})
    relays = [c for c in json.loads(text)["cmps"].values() if c["uniq_id"][3:] in node.relays.relays]
    assert len(relays) == 2 and all(c["p"] == "binary_sensor" and "cmd_t" not in c for c in relays), relays


def test_only_fitted_sensors_are_described():
    chip, node, text = discovered({"sensors": {"npk": {"enabled": False}, "wind": {"enabled": False}}})
    keys = {c["uniq_id"][3:] for c in json.loads(text)["cmps"].values()}
    assert not keys & {"n", "p", "k", "wind_speed"} and "moisture" in keys, keys


def says_nothing_to_home_assistant(patch):
    chip, node, text = discovered(patch)
    assert text is None and node.link.discovery_topic is None, patch
    assert not any(t.startswith("homeassistant/") for t, _ in node.link.session.texts), patch
    assert node.link.ha_status_topic is None, patch  # not subscribed to Home Assistant's status


def test_seed_profiles_say_nothing_to_home_assistant():
    says_nothing_to_home_assistant({"profile": "iotnode"})


def test_a_node_with_discovery_off_says_nothing_to_home_assistant():
    says_nothing_to_home_assistant({"homeassistant": {"discovery": False}})


def test_a_prefix_of_ones_own():
    chip, node, text = discovered({"homeassistant": {"prefix": "ha"}})
    assert node.link.session.retained.get("ha/device/n1/config") and text is None
    assert node.link.ha_status_topic == b"ha/status"


def test_home_assistant_coming_online_gets_the_device_and_its_state_again_within_a_few_seconds():
    chip, node, text = discovered()
    session = node.link.session
    before = len(session.on(TOPIC))
    readings = len(session.on("farm/n1/telemetry"))
    node.on_message(b"homeassistant/status", b"offline")  # its last will: nothing to do
    node.on_message(b"homeassistant/status", b"online")
    started = ticks_ms()
    while len(session.on(TOPIC)) == before and ticks_diff(ticks_ms(), started) < 7000:
        node.step()
    assert len(session.on(TOPIC)) == before + 1, "no device config within 7 s"
    while len(session.on("farm/n1/telemetry")) == readings and ticks_diff(ticks_ms(), started) < 9000:
        node.step()
    assert len(session.on("farm/n1/telemetry")) > readings  # its state: telemetry is not retained
    assert not session.on("farm/n1/command_response")  # not taken for a command


def test_the_replies_of_a_fleet_are_spread_not_at_once():
    delays = []
    chip, node, text = discovered()
    for _ in range(8):  # eight nodes hearing it: each draws its own delay
        node.on_message(b"homeassistant/status", b"online")
        delays.append(ticks_diff(node.ha_due, ticks_ms()))
    assert all(-50 <= d <= 5000 for d in delays) and max(delays) - min(delays) > 100, delays


def test_a_reset_to_defaults_removes_the_device_first():
    chip, node, text = discovered()
    assert text
    assert send(node, {"command": "reset_config"})["success"]
    assert node.link.session.retained[TOPIC] == b"", "no empty retained message: the device would stay"


def test_the_device_config_is_written_while_sent_never_held_whole():
    # Our client takes the payload object and streams it (lib/mqtt text_payload).
    from text_payload import TextPayload

    chip, node = make_node()
    payload = ha_discovery.payload(node)
    assert isinstance(payload, TextPayload)
    chunks = []
    payload.write_to(lambda view: chunks.append(bytes(view)), bytearray(64))
    written = b"".join(chunks)
    assert len(written) == len(payload) and json.loads(written) == json.loads(payload.text())
    assert max(len(c) for c in chunks) <= 64
    sleep_ms(0)
