"""The real Home Assistant (2025.1.x) and a simulated farmnode on one private broker.

Run by `make test-ha` only (host_tests/conftest.py leaves this folder out of `make test`).
Once per module: mosquitto on a free loopback port, Home Assistant headless (hakit.py)
onboarded and with MQTT set up through its config flow, a paho client recording the
node's topics, and `farmctl sim` running one node (node-01) against that broker. The node
announces itself (retained device discovery); nothing here publishes discovery for it.

Entities are matched to the node's readings through the node's own discovery message:
a component's value template names the telemetry field it shows (value_json.sensors.ec),
its unique_id names the entity in Home Assistant's registry. What Home Assistant then
shows (device class, unit, category, state) is read back from Home Assistant."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack

import paho.mqtt.client as mqtt
import pytest

from farmctl.broker import Mosquitto
from farmsim.runtime import stop_process
from hakit import HomeAssistant
from proctree import descendants, kill_all, names

DEVICE = "node-01"  # farmctl sim numbers its nodes
INTERVAL_S = 2  # the node's telemetry period
SIM_DURATION_S = 900  # the sim stops by itself after this, should the test's cleanup not run
DISCOVERY_TIMEOUT_S = 60  # node started -> its device and entities in Home Assistant
STATE_TIMEOUT_S = 20  # a command or a Will -> the state it brings, in Home Assistant
FAULT_TIMEOUT_S = 30  # a fault steered into the field model -> the node's telemetry shows it
DISCOVERY_TOPIC = f"homeassistant/device/{DEVICE}/config"

# telemetry field -> (device_class, unit) Home Assistant must show
SENSORS = {
    "sensors.moisture": ("moisture", "%"),
    "sensors.temp": ("temperature", "°C"),
    "sensors.humidity": ("humidity", "%"),
    "sensors.ph": ("ph", None),
    "sensors.ec": ("conductivity", "mS/cm"),
    "sensors.wind_speed": ("wind_speed", "km/h"),
    "sensors.n": (None, "mg/kg"),
    "sensors.p": (None, "mg/kg"),
    "sensors.k": (None, "mg/kg"),
}
WHEN_PUBLISHED = {"sensors.soil_temp": ("temperature", "°C")}  # required if the telemetry carries it
DIAGNOSTICS = ("meta.rssi", "meta.heap_free")  # entity_category diagnostic
FALLBACK_NAMES = ("MQTT Sensor", "MQTT Switch")  # what Home Assistant calls a component without a name


# -- the pieces


class Recorder:
    """Every message on the node's topics and its discovery topic, with its arrival time and QoS."""

    def __init__(self, broker):
        self.messages = []  # (monotonic time, topic, parsed JSON or None, qos, retain)
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha-test-recorder")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(f"farm/{DEVICE}/#", 1), (DISCOVERY_TOPIC, 1), ("homeassistant/status", 1)])
        self.client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        if not subscribed.wait(10):
            self.close()
            raise AssertionError(f"recorder: no SUBACK from {broker.address} within 10 s")

    def _on_message(self, client, userdata, message):
        try:
            data = json.loads(message.payload) if message.payload else None
        except ValueError:
            data = None
        with self.lock:
            self.messages.append((time.monotonic(), message.topic, data, message.qos, message.retain))

    def on(self, topic, since=0.0):
        with self.lock:
            return [m for m in self.messages if m[1] == topic and m[0] >= since]

    def telemetry(self, since=0.0):
        return [m[2] for m in self.on(f"farm/{DEVICE}/telemetry", since) if isinstance(m[2], dict)]

    def discovery(self):
        """The node's last discovery payload, or None."""
        found = [m[2] for m in self.on(DISCOVERY_TOPIC) if isinstance(m[2], dict)]
        return found[-1] if found else None

    def wait(self, found, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = found()
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"no {what} within {timeout_s} s; last messages: {self.summary()}")

    def summary(self, count=6):
        with self.lock:
            return "\n".join(f"  {topic} qos={qos} retain={int(retain)} {json.dumps(data)[:300]}"
                             for _, topic, data, qos, retain in self.messages[-count:]) or "  (none)"

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class Sim:
    """`farmctl sim` with one node on the test's broker, in its own session."""

    def __init__(self, broker, workdir):
        workdir.mkdir(parents=True, exist_ok=True)
        self.out_path = workdir / "sim.out"
        self.field_path = workdir / "field.json"
        self.steer({})
        # The DHT read every 2 s, not every 30 (sensors.dht.interval_s): a fault steered
        # in, and its clearing, show in the next readings.
        config_path = workdir / "config.json"
        config_path.write_text(json.dumps({"sensors": {"dht": {"interval_s": 2}}}))
        with open(self.out_path, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "farmctl", "sim", "--broker", broker.address, "--devices", "1",
                 "--interval", str(INTERVAL_S), "--duration", str(SIM_DURATION_S), "--field", str(self.field_path),
                 "--config", str(config_path)],
                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def steer(self, field):
        """The field model's steering file (README: The field model), replaced whole: the
        node re-reads it when it changes and never sees half of it."""
        part = self.field_path.with_suffix(".part")
        part.write_text(json.dumps(field))
        part.replace(self.field_path)

    def node_pid(self):
        """The node's process (the sim's child running the harness)."""
        found = [pid for pid, line in names(descendants(self.process.pid)).items() if "virtual_node" in line]
        assert len(found) == 1, f"looked for one node process under the sim, found {found}"
        return found[0]

    def output(self, lines=8):
        return "\n".join(self.out_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self):
        children = descendants(self.process.pid)
        if self.process.poll() is None:
            # SIGTERM before SIGCONT (a test may have left it stopped): it wakes up to stop,
            # not to restart the node it finds dead.
            self.process.terminate()
            self.process.send_signal(signal.SIGCONT)
        stop_process(self.process, 15)
        kill_all(children, signal.SIGKILL)  # its nodes end with it; this is for a sim that hung


class Farm:
    def __init__(self, broker, ha, recorder, sim, mqtt_entry):
        self.broker = broker
        self.ha = ha
        self.recorder = recorder
        self.sim = sim
        self.mqtt_entry = mqtt_entry
        self.discovered = None  # Discovered, or why not (the `discovered` fixture)

    def diagnose(self):
        """What a failure message needs: the node's last messages, the sim's output, HA's log."""
        return (f"node's last messages:\n{self.recorder.summary()}\n"
                f"--- farmctl sim output (end)\n{self.sim.output()}\n{self.ha.log_tail(40)}")


def ha_python():
    python = os.environ.get("FARMNODE_HA_PYTHON")
    if not python:
        pytest.fail("FARMNODE_HA_PYTHON is not set: run `make test-ha`, which installs Home Assistant "
                    "2025.1 (tools/ha-venv.sh) and names its python", pytrace=False)
    if not os.access(python, os.X_OK):
        pytest.fail(f"FARMNODE_HA_PYTHON={python} is not an executable: run `make test-ha`", pytrace=False)
    return python


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    python = ha_python()
    workdir = tmp_path_factory.mktemp("ha-farm")
    with ExitStack() as cleanup:
        broker = cleanup.enter_context(Mosquitto(workdir / "broker"))
        ha = HomeAssistant(python, workdir / "home-assistant")
        cleanup.callback(ha.stop)
        ha.start().onboard()
        entry = ha.setup_mqtt(broker.host, broker.port)
        recorder = Recorder(broker)
        cleanup.callback(recorder.close)
        sim = Sim(broker, workdir / "sim")
        cleanup.callback(sim.stop)
        yield Farm(broker, ha, recorder, sim, entry)


def template_field(template):
    """The telemetry field a value template reads: "sensors.ec" from
    "{{ value_json.sensors.ec }}" or "{{ value_json['sensors']['ec'] }}"; None if none."""
    match = re.search(r"value_json((?:\.\w+|\[\s*['\"]\w+['\"]\s*\])+)", template or "")
    if not match:
        return None
    return ".".join(re.findall(r"\w+", match.group(1)))


MISSING = object()  # a field a reading does not have


def field_value(telemetry, field):
    value = telemetry
    for key in field.split("."):
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


class Discovered:
    """The node as Home Assistant has it: its device, its entities by unique_id, and the
    node's discovery components by the telemetry field they show."""

    def __init__(self, device, entities, components):
        self.device = device
        self.entities = entities  # unique_id -> entity registry entry
        self.components = components  # component id -> config (abbreviated keys as sent)

    def component_for(self, field, platform="sensor"):
        for config in self.components.values():
            if (config.get("p") or config.get("platform")) == platform and \
                    template_field(config.get("val_tpl") or config.get("value_template")) == field:
                return config
        return None

    def entity_for(self, field, platform="sensor"):
        """(entity registry entry, component config) of the component showing field."""
        config = self.component_for(field, platform)
        assert config is not None, (f"the node's discovery has no {platform} whose value template reads "
                                    f"value_json.{field}; its components: {sorted(self.components)}")
        unique_id = config.get("uniq_id") or config.get("unique_id")
        entry = self.entities.get(unique_id)
        assert entry is not None, (f"Home Assistant has no entity with unique_id {unique_id!r} ({field}) on "
                                   f"device {DEVICE}; it has {sorted(self.entities)}")
        return entry, config


def find_device(ha):
    devices, entities = ha.registries()
    for device in devices:
        if ["mqtt", DEVICE] in device["identifiers"]:
            mine = {e["unique_id"]: e for e in entities if e["device_id"] == device["id"]}
            return device, mine
    return None, {}


@pytest.fixture
def discovered(farm):
    """The node in Home Assistant: waited for once (DISCOVERY_TIMEOUT_S), by the first test
    that needs it, until its device has an entity for every component of the node's
    discovery payload. Its failure is told in full once; later tests fail in one line."""
    if farm.discovered is None:
        try:
            farm.discovered = wait_discovered(farm)
        except AssertionError as exc:
            farm.discovered = f"{str(exc).splitlines()[0][:300]} (the first failure shows the details)"
            pytest.fail(str(exc), pytrace=False)
    if isinstance(farm.discovered, str):
        pytest.fail(farm.discovered, pytrace=False)
    return farm.discovered


def wait_discovered(farm):
    """Until the device has as many entities as the discovery has components, all of
    them available (the retained online status may come after the discovery)."""
    deadline = time.monotonic() + DISCOVERY_TIMEOUT_S
    device, entities, payload, unavailable = None, {}, None, []
    while time.monotonic() < deadline:
        payload = farm.recorder.discovery()
        components = (payload or {}).get("cmps") or (payload or {}).get("components") or {}
        device, entities = find_device(farm.ha)
        if device and components and len(entities) >= len(components):
            states = farm.ha.states()
            unavailable = [e["entity_id"] for e in entities.values()
                           if states.get(e["entity_id"], {}).get("state", "unavailable") == "unavailable"]
            if not unavailable:
                return Discovered(device, entities, components)
        time.sleep(2)
    if unavailable:
        raise AssertionError(f"device {DEVICE} and its entities are in Home Assistant, but after "
                             f"{DISCOVERY_TIMEOUT_S} s these are unavailable (or have no state): {unavailable}\n"
                             f"{farm.diagnose()}")
    if device is None:
        seen = ("the node published nothing there" if payload is None
                else f"the node published {json.dumps(payload)[:1500]}")
        raise AssertionError(
            f"no device discovered: Home Assistant has no device {DEVICE} (identifiers [\"mqtt\", \"{DEVICE}\"]) "
            f"{DISCOVERY_TIMEOUT_S} s after the node started; on {DISCOVERY_TOPIC} {seen}\n{farm.diagnose()}")
    raise AssertionError(f"device {DEVICE} is in Home Assistant, but after {DISCOVERY_TIMEOUT_S} s with "
                         f"{len(entities)} entities {sorted(entities)} for the components of "
                         f"{json.dumps(payload)[:1500]}\n{farm.diagnose()}")


def fields_published(farm):
    """The sensor fields Home Assistant must show: SENSORS, and WHEN_PUBLISHED's that the
    node's telemetry carries."""
    latest = farm.recorder.wait(farm.recorder.telemetry, 15, f"telemetry from {DEVICE}")[-1]
    wanted = dict(SENSORS)
    wanted.update({f: spec for f, spec in WHEN_PUBLISHED.items() if field_value(latest, f) is not MISSING})
    return wanted


def relays_published(farm):
    latest = farm.recorder.wait(farm.recorder.telemetry, 15, f"telemetry from {DEVICE}")[-1]
    return sorted(latest.get("relays") or {})


def switch_entity(discovered, relay):
    entry, config = discovered.entity_for(f"relays.{relay}", platform="switch")
    return entry["entity_id"], config


def wait_state(farm, entity_id, wanted, timeout_s=STATE_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        state = farm.ha.states().get(entity_id, {}).get("state")
        if state == wanted:
            return
        time.sleep(0.5)
    raise AssertionError(f"{entity_id} is {state!r}, not {wanted!r}, {timeout_s} s on\n{farm.diagnose()}")


# -- the tests, in order: the last one kills the node


def test_the_node_appears_as_a_device_with_its_sensors_and_switches(farm, discovered):
    device = discovered.device
    assert device["name"] and device["manufacturer"] and device["model"] and device["sw_version"], device
    assert any(kind == "mac" for kind, _ in device["connections"]), device["connections"]
    states = farm.ha.states()
    problems = []
    for field, (device_class, unit) in fields_published(farm).items():
        entry, _ = discovered.entity_for(field)
        attributes = states[entry["entity_id"]]["attributes"]
        shown = (attributes.get("device_class"), attributes.get("unit_of_measurement"))
        if shown != (device_class, unit):
            problems.append(f"{field}: {entry['entity_id']} has device_class, unit {shown}, "
                            f"not {(device_class, unit)}")
        if attributes.get("state_class") != "measurement":
            problems.append(f"{field}: state_class {attributes.get('state_class')!r}, not 'measurement'")
        if entry["entity_category"] is not None:
            problems.append(f"{field}: entity_category {entry['entity_category']!r}; a reading is no diagnostic")
    for field in DIAGNOSTICS:
        entry, _ = discovered.entity_for(field)
        if entry["entity_category"] != "diagnostic":
            problems.append(f"{field}: entity_category {entry['entity_category']!r}, not 'diagnostic'")
    rssi_unit = states[discovered.entity_for("meta.rssi")[0]["entity_id"]]["attributes"].get("unit_of_measurement")
    if rssi_unit != "dBm":
        problems.append(f"meta.rssi: unit {rssi_unit!r}, not 'dBm'")
    for relay in relays_published(farm):
        entity_id, _ = switch_entity(discovered, relay)
        if states[entity_id]["state"] not in ("on", "off"):
            problems.append(f"relays.{relay}: {entity_id} is {states[entity_id]['state']!r}")
    assert not problems, "\n".join(problems)


def test_every_entity_has_a_name_of_its_own(farm, discovered):
    """Without a `name` in its component, Home Assistant names an entity after its device
    class, or "MQTT Sensor" / "MQTT Switch" without one: N, P, K and the heap would all be
    "MQTT Sensor", air and soil temperature both "Temperature"."""
    states = farm.ha.states()
    named = {}
    for unique_id, entry in discovered.entities.items():
        name = states[entry["entity_id"]]["attributes"].get("friendly_name")
        named.setdefault(name, []).append(unique_id)
    shared = {name: ids for name, ids in named.items() if len(ids) > 1}
    fallback = {name: ids for name, ids in named.items() if any(name.endswith(f) for f in FALLBACK_NAMES)}
    assert not shared and not fallback, (
        f"entity names shared: {shared}; Home Assistant's fallback names: {fallback}. "
        "Give each discovery component a \"name\" (e.g. \"Nitrogen\", \"Soil temperature\", \"Irrigation\")")


def test_sensor_states_are_the_numbers_the_node_publishes(farm, discovered):
    """Each state is the field's value in one of the last readings (Home Assistant may be
    one reading behind the recorder, or one ahead); a null reading shows as unknown."""
    fields = list(fields_published(farm)) + list(DIAGNOSTICS)
    entity_ids = {field: discovered.entity_for(field)[0]["entity_id"] for field in fields}
    deadline = time.monotonic() + STATE_TIMEOUT_S
    while True:
        since = time.monotonic() - 4 * INTERVAL_S
        states = farm.ha.states()
        readings = farm.recorder.telemetry(since)
        mismatched = {}
        for field, entity_id in entity_ids.items():
            published = [field_value(reading, field) for reading in readings]
            shown = states[entity_id]["state"]
            if not any(matches(shown, value) for value in published):
                mismatched[field] = (entity_id, shown, published)
        if not mismatched:
            return
        if time.monotonic() > deadline:
            raise AssertionError("states that are no recent reading (field: entity, state, readings): "
                                 f"{mismatched}\n{farm.diagnose()}")
        time.sleep(1)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def matches(shown, value):
    if value is None:
        return shown == "unknown"
    if not is_number(value):
        return False
    try:
        return abs(float(shown) - value) <= 1e-6 * max(1.0, abs(value))
    except ValueError:
        return False


def switch_irrigation(farm, entity_id, state):
    """switch/turn_<state> in Home Assistant; the node's telemetry and the entity follow.
    Returns the commands the recorder saw after the call."""
    asked = time.monotonic()
    farm.ha.service("switch", f"turn_{state}", entity_id=entity_id)
    level = 1 if state == "on" else 0
    farm.recorder.wait(lambda: [t for t in farm.recorder.telemetry(asked)
                                if (t.get("relays") or {}).get("irrigation") == level],
                       STATE_TIMEOUT_S, f"telemetry with relays.irrigation {level} after switch/turn_{state}")
    wait_state(farm, entity_id, state)
    return farm.recorder.on(f"farm/{DEVICE}/commands", asked)


def test_turning_a_switch_on_moves_the_relay(farm, discovered):
    entity_id, _ = switch_entity(discovered, "irrigation")
    wait_state(farm, entity_id, "off")  # every relay is off at boot
    commands = switch_irrigation(farm, entity_id, "on")
    assert commands and commands[0][2].get("command") == "relay", commands


def test_turning_it_off_sends_a_qos_1_command_and_the_relay_follows(farm, discovered):
    """The protocol's commands are QoS 1. Home Assistant 2025.1 passes a device-level
    `qos` to no component (its SHARED_OPTIONS are availability, state and command topics):
    each component must carry its own."""
    entity_id, _ = switch_entity(discovered, "irrigation")
    commands = switch_irrigation(farm, entity_id, "off")
    assert commands, "the recorder saw no command"
    _, _, command, qos, _ = commands[0]
    assert command == {"command": "relay", "parameters": {"relay": "irrigation", "state": "off"}}, command
    assert qos == 1, (f"Home Assistant published the command at QoS {qos}: put \"qos\": 1 in each "
                      "component of the discovery payload (a device-level qos is not inherited)")


def test_an_interlock_refuses_a_switch_and_home_assistant_keeps_showing_it_off(farm, discovered):
    """A switch sends an ordinary command, so the node's interlocks hold: fertigation is
    refused while pH is outside 5.5 - 7.5 (PROTOCOL.md), and Home Assistant, which takes
    the state from telemetry, does not show it on."""
    entity_id, _ = switch_entity(discovered, "fertigation")
    steered = time.monotonic()
    farm.sim.steer({"ph": 4.5})
    try:
        farm.recorder.wait(lambda: [t for t in farm.recorder.telemetry(steered)
                                    if is_number(field_value(t, "sensors.ph")) and t["sensors"]["ph"] < 5.0],
                           FAULT_TIMEOUT_S, "telemetry with pH below 5 after pH 4.5 was steered in")
        asked = time.monotonic()
        farm.ha.service("switch", "turn_on", entity_id=entity_id)
        response = farm.recorder.wait(
            lambda: [m[2] for m in farm.recorder.on(f"farm/{DEVICE}/command_response", asked)
                     if (m[2] or {}).get("command") == "relay"],
            STATE_TIMEOUT_S, "the node's response to Home Assistant's fertigation command")[0]
        assert response["success"] is False and "ph" in str(response["error"]).lower(), response
        later = farm.recorder.wait(lambda: farm.recorder.telemetry(asked)[1:], STATE_TIMEOUT_S,
                                   "two readings after the refused command")
        assert all(t["relays"]["fertigation"] == 0 for t in later), later
        state = farm.ha.states()[entity_id]["state"]
        assert state == "off", f"{entity_id} is {state!r} after the node refused to switch it on"
    finally:
        farm.sim.steer({})


def test_a_sensor_that_fails_shows_unknown_then_its_value_again(farm, discovered):
    """A reading the node cannot take is null in its telemetry: Home Assistant shows
    unknown, not 0 and not the last value, and the number again once the sensor answers."""
    entity_id = discovered.entity_for("sensors.temp")[0]["entity_id"]
    failed = time.monotonic()
    farm.sim.steer({"faults": {"dht": "timeout"}})
    try:
        farm.recorder.wait(lambda: [t for t in farm.recorder.telemetry(failed) if field_value(t, "sensors.temp") is None],
                           FAULT_TIMEOUT_S, "telemetry with sensors.temp null after a DHT timeout was steered in")
        wait_state(farm, entity_id, "unknown")
    finally:
        farm.sim.steer({})
    healed = time.monotonic()
    reading = farm.recorder.wait(
        lambda: [t for t in farm.recorder.telemetry(healed) if is_number(field_value(t, "sensors.temp"))],
        FAULT_TIMEOUT_S, "telemetry with a number in sensors.temp after the DHT fault was cleared")
    deadline = time.monotonic() + STATE_TIMEOUT_S
    while farm.ha.states()[entity_id]["state"] in ("unknown", "unavailable"):
        assert time.monotonic() < deadline, (f"{entity_id} still shows no number {STATE_TIMEOUT_S} s after "
                                             f"{reading[0]['sensors']}\n{farm.diagnose()}")
        time.sleep(0.5)


def test_home_assistant_coming_back_online_gets_the_node_to_announce_itself_again(farm, discovered):
    """Reloading the MQTT entry reconnects Home Assistant, which publishes its birth
    message (`online` on homeassistant/status): the node answers with its discovery."""
    asked = time.monotonic()
    farm.ha.call("POST", f"/api/config/config_entries/entry/{farm.mqtt_entry['entry_id']}/reload")
    farm.recorder.wait(lambda: [m for m in farm.recorder.on("homeassistant/status", asked)],
                       STATE_TIMEOUT_S, "birth message from Home Assistant on homeassistant/status")
    farm.recorder.wait(lambda: [m for m in farm.recorder.on(DISCOVERY_TOPIC, asked) if not m[4]],
                       STATE_TIMEOUT_S, f"discovery on {DISCOVERY_TOPIC} after Home Assistant's birth message")
    moisture = discovered.entity_for("sensors.moisture")[0]["entity_id"]
    deadline = time.monotonic() + STATE_TIMEOUT_S
    while farm.ha.states()[moisture]["state"] in ("unavailable", "unknown"):
        assert time.monotonic() < deadline, f"{moisture} stays unavailable after the reload\n{farm.diagnose()}"
        time.sleep(0.5)


def test_a_killed_node_shows_unavailable(farm, discovered):
    """SIGKILL, as a power cut: the broker publishes the node's retained Will (offline,
    reason lwt) and Home Assistant marks every entity of the device unavailable. The sim
    is stopped (SIGSTOP) first, or it would restart the node, as a watchdog does."""
    os.kill(farm.sim.process.pid, signal.SIGSTOP)
    node = farm.sim.node_pid()
    killed = time.monotonic()
    os.kill(node, signal.SIGKILL)
    farm.recorder.wait(lambda: [m for m in farm.recorder.on(f"farm/{DEVICE}/status", killed)
                                if (m[2] or {}).get("status") == "offline"],
                       STATE_TIMEOUT_S, f"offline on farm/{DEVICE}/status after SIGKILL")
    will = [m for m in farm.recorder.on(f"farm/{DEVICE}/status", killed)][-1][2]
    assert will.get("reason") == "lwt", f"expected the broker's Will, got {will}"
    deadline = time.monotonic() + STATE_TIMEOUT_S
    while True:
        states = farm.ha.states()
        available = {e["entity_id"]: states[e["entity_id"]]["state"] for e in discovered.entities.values()
                     if states[e["entity_id"]]["state"] != "unavailable"}
        if not available:
            return
        assert time.monotonic() < deadline, (f"still available {STATE_TIMEOUT_S} s after the Will: {available}\n"
                                             f"{farm.diagnose()}")
        time.sleep(0.5)
