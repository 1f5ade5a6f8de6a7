# The node's loop on the stubs, without a broker: Wi-Fi is brought up and watched,
# and the socket is served often even while a sensor pass waits on a slow bus.
import network
from fieldmodel import Field
from firmware import board, config
from firmware import device_id
from firmware.node import Node
from firmware.wifi import WifiLink
from ringbuf import RingBuffer
from simchip import new_chip, wiring_from_config
from ticks import sleep_ms, ticks_diff, ticks_ms


def test_device_id_from_config_or_mac():
    assert device_id({"device_id": "pump-house"}, b"\x24\x0a\xc4\x5e\x11\x07") == "pump-house"
    assert device_id({"device_id": ""}, b"\x24\x0a\xc4\x5e\x11\x07") == "node-240ac45e1107"


def test_wifi_link_joins_notices_a_lost_ap_and_joins_again():
    chip = new_chip(Field())
    lines = []
    link = WifiLink(network.WLAN(network.STA_IF), "farm", "farmpass", lines.append)
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
    link = WifiLink(network.WLAN(network.STA_IF), "farm", "wrong", lines.append)
    started = ticks_ms()
    while ticks_diff(ticks_ms(), started) < 800:
        link.poll()
        sleep_ms(20)
    assert not link.up
    assert any("failed (status 202)" in line for line in lines), lines  # STAT_WRONG_PASSWORD


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
    cfg = config.apply(config.defaults(), {"interval_s": 1, "wifi": {"ssid": "farm", "password": "farmpass"},
                                  "mqtt": {"host": "127.0.0.1"}})
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
