# A real node on the stubs whose MQTT session is a recorder: what the device tests of
# commands, config and calibration drive (the broker-in-the-loop tests use mosquitto).
import json

from fieldmodel import Field
from firmware import board, config
from firmware.node import Node
from firmware.startup import collect_often
from ringbuf import RingBuffer
from simchip import new_chip, wiring_from_config
from testkit import tmpdir
from ticks import sleep_ms


class RecordingSession:
    def __init__(self):
        self.sent = []  # (topic, payload dict)
        self.texts = []  # (topic, payload text) of the same
        self.connected = True
        self.connects = 1
        self.queue = RingBuffer(10)
        self.client = None
        self.retained = {}  # topic -> the last retained payload sent on it
        self.outgoing = None  # the node's: times filled in as a queued message leaves
        self.outbox = None
        self.clean = True  # a clean MQTT session at each connection (False: a node that sleeps)
        self.parked = 0  # times the node moved what was unsent to flash (it sleeps)

    def poll(self, link_up):
        pass

    def wait(self, ms):
        sleep_ms(min(ms, 2))

    def publish(self, topic, payload, retain=False, qos=1):
        if hasattr(payload, "text"):  # a TextPayload (a large answer, streamed by the real client)
            payload = payload.text()
        self.texts.append((topic, payload))
        self.sent.append((topic, json.loads(payload) if payload else None))  # b"": a retained one removed
        if retain:
            self.retained[topic] = payload
        return True

    def enqueue(self, topic, payload):
        self.publish(topic, payload if self.outgoing is None else self.outgoing(payload))

    def make_room(self, topic, payload):
        return 0  # sent at once: nothing waits, nothing is dropped

    def park(self):
        self.parked += 1

    def close(self, payload):
        if self.connected:  # as the real one: said only to a broker that is there
            self.sent.append(("closed", json.loads(payload)))

    def on(self, topic):
        return [p for t, p in self.sent if t == topic]


def make_node(patch=None, field=None, chip=None, root=None):
    """A node on a new chip (chip: on that one, booting again: its RTC memory and reset
    cause as they are), in a new folder (root: in that one)."""
    collect_often()  # as a booted device does
    cfg = config.apply(config.defaults(), dict({"device_id": "n1", "farm_id": "farm_001", "interval_s": 60},
                                      **(patch or {})))
    if chip is None:
        chip = new_chip(field or Field(), wiring_from_config(cfg))
    hw, _ = board.build(cfg)
    resets = []
    hw["reset"] = lambda: resets.append(True)
    hw["console_keep"] = 1024  # the tests read what the node logged
    node = Node(cfg, hw, root=root or tmpdir())
    recording = RecordingSession()
    recording.clean = node.link.session.clean
    recording.queue.dropped = node.link.session.queue.dropped  # a wake from deep sleep restored it
    node.link.session = recording
    node.link.session.outgoing = node.fill_times
    node.resets = resets
    return chip, node


def send(node, payload):
    node.on_message(b"farm/n1/commands", payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    node.step()  # relay changes are published by the loop
    answers = node.link.session.on(node.link.profile.topics["command_response"])
    return answers[-1] if answers else None


def calm(node):
    node.relays.observe({"wind_speed": 4.0, "ph": 6.5})
