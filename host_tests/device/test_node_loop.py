# The node's loop on the stubs, without a broker: Wi-Fi is brought up and watched,
# and the socket is served often even while a sensor pass waits on a slow bus.
import json

import network
from fieldmodel import Field
from firmware import board, config
from firmware import device_id
from firmware.node import Node
from firmware.sensors.air import AirSensor
from firmware.sensors.reader import SensorReader
from firmware.wifi import WifiLink
from nodekit import RecordingSession, make_node
from ringbuf import RingBuffer
from simchip import new_chip, wiring_from_config
from testkit import tmpdir, write_text
from ticks import sleep_ms, ticks_diff, ticks_ms


def test_device_id_from_config_or_mac():
    assert device_id({"device_id": "pump-house"}, b"\x24\x0a\xc4\x5e\x11\x07") == "pump-house"
    assert device_id({"device_id": ""}, b"\x24\x0a\xc4\x5e\x11\x07") == "node-240ac45e1107"


def test_wifi_link_joins_notices_a_lost_ap_and_joins_again():
    chip = new_chip(Field())
    lines = []
    link = WifiLink(network.WLAN(network.STA_IF), [("farm", "farmpass")], lines.append)
    started = ticks_ms()
    while not link.poll() and ticks_diff(ticks_ms(), started) < 2000:
        sleep_ms(20)
    assert link.up and link.ip() != "0.0.0.0" and link.rssi() == -62
    chip.ap["up"] = False
    assert not link.poll() and "lost" in lines[-1]
    chip.ap["up"] = True
    started = ticks_ms()
    while not link.poll() and ticks_diff(ticks_ms(), started) < 8000:
        sleep_ms(20)
    assert link.up and link.joins == 2


def test_wifi_wrong_password_is_logged_and_retried_later():
    new_chip(Field())
    lines = []
    link = WifiLink(network.WLAN(network.STA_IF), [("farm", "wrong")], lines.append)
    started = ticks_ms()
    while ticks_diff(ticks_ms(), started) < 800:
        link.poll()
        sleep_ms(20)
    assert not link.up
    assert any("failed (status 202)" in line for line in lines), lines  # STAT_WRONG_PASSWORD


def _joined(link, limit_ms):
    started = ticks_ms()
    while not link.poll() and ticks_diff(ticks_ms(), started) < limit_ms:
        sleep_ms(20)
    return link.up


def test_wifi_link_joins_the_strongest_known_network_and_moves_when_it_vanishes():
    chip = new_chip(Field())
    chip.ap.update({"ssid": "barn", "password": "barn-pass", "rssi": -71})
    shed = {"ssid": "shed", "password": "shed-pass", "up": True, "rssi": -58}
    chip.more_aps = [shed, {"ssid": "neighbour", "password": "x" * 8, "up": True, "rssi": -40}]
    lines = []
    wlan = network.WLAN(network.STA_IF)
    link = WifiLink(wlan, [("barn", "barn-pass"), ("shed", "shed-pass")], lines.append)
    assert _joined(link, 2000) and wlan.config("ssid") == "shed" and link.rssi() == -58  # not the unknown -40
    assert "joined shed" in lines[-1]
    shed["up"] = False  # the shed's access point goes off the air
    assert not link.poll() and "link to shed lost" in lines[-1]
    assert _joined(link, 8000) and wlan.config("ssid") == "barn" and link.joins == 2
    chip.ap["up"] = False
    assert not link.poll()
    started = ticks_ms()
    while ticks_diff(ticks_ms(), started) < 300:  # neither in range: said so, tried again later
        link.poll()
        sleep_ms(20)
    assert not link.up and any("none of barn, shed in range" in line for line in lines), lines
    shed["up"] = True
    assert _joined(link, 8000) and wlan.config("ssid") == "shed"


def test_the_field_file_says_which_access_points_are_heard_and_how_strong():
    path = tmpdir() + "/field.json"
    write_text(path, json.dumps({"access_points": [{"ssid": "farm", "rssi": -80}, {"ssid": "shed", "rssi": -50}]}))
    chip = new_chip(Field(steer_path=path))
    chip.more_aps = [{"ssid": "shed", "password": "shed-pass", "up": True, "rssi": -60},
                     {"ssid": "barn", "password": "barn-pass", "up": True, "rssi": -40}]  # not listed: not heard
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    assert sorted((ssid, rssi) for ssid, _, _, rssi, _, _ in wlan.scan()) == [(b"farm", -80), (b"shed", -50)]


def test_a_node_links_over_the_networks_its_config_lists():
    chip, node = make_node({"wifi": [{"ssid": "farm", "password": "farmpass"},
                                     {"ssid": "shed", "password": "shed-pass"}]})
    assert node.cfg["wifi"] == {"ssid": "", "password": "", "networks": [
        {"ssid": "farm", "password": "farmpass"}, {"ssid": "shed", "password": "shed-pass"}]}
    chip.more_aps = [{"ssid": "shed", "password": "shed-pass", "up": True, "rssi": -50}]
    assert _joined(node.link.wifi, 2000) and node.link.wifi.rssi() == -50  # the stronger one


class CountingSession:
    """Stands in for the MQTT session: records when the loop served it."""

    def __init__(self):
        self.polls = 0
        self.last = None
        self.max_gap = 0  # kept as it goes: a list of every poll would fill the heap
        self.queue = RingBuffer(1)
        self.client = None
        self.connected = True
        self.connects = 1

    def poll(self, link_up):
        now = ticks_ms()
        if self.last is not None:
            self.max_gap = max(self.max_gap, ticks_diff(now, self.last))
        self.last = now
        self.polls += 1

    def wait(self, ms):
        sleep_ms(ms)

    def enqueue(self, topic, payload):
        pass

    def publish(self, topic, payload, retain=False, qos=1):
        return True

    def make_room(self, topic, payload):
        return 0


def test_the_socket_is_served_while_a_sensor_waits_on_its_bus():
    # Not the DHT: its measure() holds the chip by design (the tests below and test_stubs).
    cfg = config.apply(config.defaults(), {"interval_s": 1, "wifi": {"ssid": "farm", "password": "farmpass"},
                                  "mqtt": {"host": "127.0.0.1"}, "sensors": {"dht": {"enabled": False}}})
    chip = new_chip(Field(), wiring_from_config(cfg))
    chip.field.fault("npk", "timeout")  # each pass waits 500 ms for the probe
    hw, _ = board.build(cfg)
    node = Node(cfg, hw)
    node.link.session = CountingSession()
    started = ticks_ms()
    while ticks_diff(ticks_ms(), started) < 1500:
        node.step()
    assert node.seq >= 1  # a pass completed, the NPK timeout included
    # The 500 ms wait is spread over many turns, each serving the socket; no turn holds
    # the loop for the wait (how short each turn is goes in bench/, not in a test).
    assert node.link.session.polls > 30 and node.link.session.max_gap < 250, (node.link.session.polls, node.link.session.max_gap)
    chip.close()


class LoggingDHT:
    """A DHT22 that notes each measure() in the shared log (no time held: the order is
    what these tests check; how long a measure holds the chip is the stub's, test_stubs)."""

    def __init__(self, log):
        self.log = log
        self.calls = 0

    def measure(self):
        self.calls += 1
        self.log.append("measure")

    def temperature(self):
        return 21.0

    def humidity(self):
        return 50.0


class InboxSession(RecordingSession):
    """Hands the node one waiting message per poll, as the client's check_msg reads one
    packet; with storm set, a new one arrives on every poll. Notes answers in the log."""

    def __init__(self, node, log):
        RecordingSession.__init__(self)
        self.node = node
        self.log = log
        self.inbox = []
        self.storm = False
        self.polls = 0

    def poll(self, link_up):
        self.polls += 1
        if self.storm:
            self.inbox.append(json.dumps({"command_id": "s%d" % self.polls, "command": "ping"}).encode())
        if self.inbox:
            self.node.on_message(b"farm/n1/commands", self.inbox.pop(0))

    def publish(self, topic, payload, retain=False, qos=1):
        if hasattr(payload, "text"):  # a streamed one (Home Assistant's device config)
            payload = payload.text()
        data = json.loads(payload)
        command_id = data.get("command_id") or ""
        if command_id.startswith("s"):  # the storm's: only noted (hundreds of them)
            self.log.append("s")
            return True
        RecordingSession.publish(self, topic, payload, retain, qos)
        self.log.append(command_id or ("telemetry" if "seq" in data else "other"))
        return True


def dht_node(interval_s=1, dht_interval_s=2, kind="DHT22"):
    """A node whose one sensor is a DHT noting its measures; (node, log, session)."""
    # (no Home Assistant: the log is of commands, measures and readings)
    _, node = make_node({"interval_s": interval_s, "homeassistant": {"discovery": False}})
    log = []
    node.reader = SensorReader([AirSensor(LoggingDHT(log), kind, interval_s=dht_interval_s)])
    node.link.session = session = InboxSession(node, log)
    return node, log, session


def turns_until(node, done, limit_ms):
    started = ticks_ms()
    while not done() and ticks_diff(ticks_ms(), started) < limit_ms:
        node.step()


def test_commands_waiting_in_the_socket_are_answered_before_the_dht_is_read():
    node, log, session = dht_node()
    node.step()  # the first pass starts: the DHT asks for a turn of its own
    assert log == []
    session.inbox = [json.dumps({"command_id": "c%d" % i, "command": "ping"}).encode() for i in range(3)]
    turns_until(node, lambda: "telemetry" in log, 2000)
    # Each command came in a turn of its own; the measure waited for a turn without one.
    assert log == ["c0", "c1", "c2", "measure", "telemetry"], log


def test_a_stream_of_messages_defers_the_dht_a_bounded_time_only():
    node, log, session = dht_node()
    node.step()
    session.storm = True  # a new message on every turn, for good
    turns_until(node, lambda: "telemetry" in log, 3000)
    assert "measure" in log and "telemetry" in log, log  # not starved
    first = log.index("measure")
    assert first > 5, log  # deferred while they came, and then read among them
    assert log[first - 1] == "s" and log[first + 1] == "telemetry", log  # the pass ends in its turn


def test_the_node_reads_the_dht_at_most_every_dht_interval_s():
    node, log, session = dht_node(interval_s=1, dht_interval_s=3, kind="DHT11")  # it could answer every 1 s
    started = ticks_ms()
    while ticks_diff(ticks_ms(), started) < 5500:
        node.step()
    # A pass every second; the DHT at the first and at the 3 or 4 s one (its interval runs
    # from its last measure, a turn after its pass began), not again before 6 s; the
    # passes between carry its values.
    assert node.seq >= 5 and log.count("measure") == 2, (node.seq, log)
    readings = node.link.session.on(node.link.profile.topics["telemetry"])
    assert readings and all(r["sensors"]["temp"] == 21.0 for r in readings), readings
