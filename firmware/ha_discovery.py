# Home Assistant MQTT discovery (PROTOCOL.md; profile farmnode): one retained device
# config on <prefix>/device/<device_id>/config (device-based discovery, Home Assistant
# 2024.11 and later) describing the node, one component per fitted sensor, the two
# diagnostics and one switch per relay. Every entity reads the node's own telemetry, and
# a switch sends ordinary farmnode commands, so max-on times, interlocks and signing
# hold as for any backend. Loaded when the node (re)announces itself, unloaded after;
# the text is written while it is sent (lib/mqtt text_payload), never held whole.
import json

from firmware import VERSION
from micropython import const

# telemetry key: (entity name, device class or None, unit or None)
_SENSORS = const((
    ("moisture", "Soil moisture", "moisture", "%"),
    ("soil_temp", "Soil temperature", "temperature", "°C"),
    ("temp", "Air temperature", "temperature", "°C"),
    ("humidity", "Air humidity", "humidity", "%"),
    ("n", "Nitrogen", None, "mg/kg"),
    ("p", "Phosphorus", None, "mg/kg"),
    ("k", "Potassium", None, "mg/kg"),
    ("ec", "EC", "conductivity", "mS/cm"),
    ("ph", "pH", "ph", None),
    ("wind_speed", "Wind speed", "wind_speed", "km/h"),
))
AVAILABILITY = "{{ 'online' if value_json.status == 'online' else 'offline' }}"
# (key, entity name, device class, unit, where in the telemetry): entity_category diagnostic
_DIAGNOSTICS = const((
    ("rssi", "Wi-Fi signal", "signal_strength", "dBm", "meta.rssi"),
    ("heap_free", "Free heap", "data_size", "B", "meta.heap_free"),
))


def _sensor(device_id, key, name, device_class, unit, path, diagnostic):
    # qos in each component: Home Assistant does not pass a device-level one on to them
    yield '"%s_%s": {"p": "sensor", "name": "%s", "uniq_id": "%s_%s", "qos": 1' % (device_id, key, name, device_id, key)
    if device_class is not None:
        yield ', "dev_cla": "%s"' % device_class
    if unit is not None:
        yield ', "unit_of_meas": "%s"' % unit
    if diagnostic:
        yield ', "ent_cat": "diagnostic"'
    # a null in telemetry renders as None: Home Assistant shows the sensor unknown, not 0
    yield ', "stat_cla": "measurement", "val_tpl": "{{ value_json.%s }}"}' % path


def _relay(device_id, name, command_topic):
    shown = name.replace("_", " ")
    yield '"%s_%s": {"name": "%s%s", "uniq_id": "%s_%s", "qos": 1, "val_tpl": "{{ value_json.relays.%s }}"' % (
        device_id, name, shown[:1].upper(), shown[1:], device_id, name, name)
    if command_topic is None:
        # Commands must be signed: Home Assistant cannot sign, so it only shows the state.
        yield ', "p": "binary_sensor", "dev_cla": "running", "pl_on": "1", "pl_off": "0"}'
        return
    yield ', "p": "switch", "stat_on": "1", "stat_off": "0", "cmd_t": %s' % json.dumps(command_topic)
    for key, state in (("pl_on", "on"), ("pl_off", "off")):
        command = '{"command": "relay", "parameters": {"relay": "%s", "state": "%s"}}' % (name, state)
        yield ', "%s": %s' % (key, json.dumps(command))
    yield "}"


def pieces(device_id, mac, topics, keys, relays, signed):
    """The device config's text, piece by piece. topics: the profile's (status,
    telemetry, commands); keys: the telemetry names of the fitted sensors; relays: the
    relays' names; signed: commands must be signed (the relays are shown read-only)."""
    yield '{"dev": {"ids": ["%s"], "name": "%s", "mf": "farmnode", "mdl": "ESP32 farm node", "sw": "%s"' % (
        device_id, device_id, VERSION)
    yield ', "cns": [["mac", "%s"]]}' % ":".join("%02x" % b for b in mac)
    yield ', "o": {"name": "farmnode", "sw": "%s"}' % VERSION
    # Home Assistant takes only "online" and "offline"; a node in maintenance (safe mode)
    # or in error does not run its application: unavailable too.
    yield ', "avty_t": %s, "avty_tpl": "%s"' % (json.dumps(topics["status"]), AVAILABILITY)
    yield ', "stat_t": %s, "cmps": {' % json.dumps(topics["telemetry"])
    first = True
    for key, name, device_class, unit in _SENSORS:
        if key in keys:
            if not first:
                yield ", "
            first = False
            yield from _sensor(device_id, key, name, device_class, unit, "sensors." + key, False)
    for key, name, device_class, unit, path in _DIAGNOSTICS:
        yield ", "
        yield from _sensor(device_id, key, name, device_class, unit, path, True)
    for name in relays:
        yield ", "
        yield from _relay(device_id, name, None if signed else topics["commands"])
    yield "}}"


def payload(node):
    """The node's device config, as a payload its MQTT client writes while sending."""
    from text_payload import TextPayload

    link = node.link
    keys = []
    for driver in node.reader.drivers:
        keys.extend(driver.keys)
    args = (link.device_id, link.mac, link.profile.topics, keys, sorted(node.relays.relays),
            bool(node.cfg["signing"]["key"]))
    return TextPayload(lambda: pieces(*args))


def describe(node):
    """Send the node's device config, retained. A device config this node sent before on
    another topic (a new prefix, device id) or no longer wants (discovery turned off) is
    removed: an empty retained message."""
    link = node.link
    topic = link.discovery_topic
    if node.discovered != topic:
        forget(node)
    if topic is None:
        return
    # QoS 0: sent again on every connection anyway, and not kept for a PUBACK, so this
    # code leaves the heap at once (a config command may follow "online" closely).
    # Home Assistant takes a config it already has as a no-op.
    if link.session.publish(topic, payload(node), True, 0):
        node.discovered = topic


def forget(node):
    """Remove the device config this node sent (a reset to the defaults, a new topic)."""
    if node.discovered is not None and node.link.session.publish(node.discovered, b"", True, 1):
        node.discovered = None
