# Battery nodes that sleep (firmware/sleep.py): a wake reads, sends, waits for what the
# broker kept, says "sleeping" and sleeps; RTC memory carries the boot across wakes; a
# node with relays cannot sleep; the battery's voltage. On the stubs with a recorded
# session; with mosquitto and the simulator waking the node: host_tests/host/test_power_mqtt.py.
import json

import machine
from bootguard import BootGuard
from fieldmodel import Field
from firmware import config, messages, startup
from firmware.errors import ConfigError
from firmware.sensors.battery import Battery
from nodekit import make_node
from simchip import new_chip
from testkit import drive, exists, raises, read_text, tmpdir, write_text
from ticks import ticks_add, ticks_diff, ticks_ms

SLEEPER = {"power": {"mode": "deepsleep", "sleep_s": 600, "awake_s": 20},
           "relays": {"irrigation": None, "fertigation": None},
           "interlocks": {"spray_drift": None, "nutrient_lockout": None}}


def until_asleep(node, limit_ms=5000):
    """Turns of the loop until the node calls deepsleep; (the ResetRequested, ms awake)."""
    started = ticks_ms()
    while ticks_diff(ticks_ms(), started) < limit_ms:
        try:
            node.step()
        except machine.ResetRequested as asleep:
            return asleep, ticks_diff(ticks_ms(), started)
    raise AssertionError("still awake after %d ms: %s" % (limit_ms, node.log.lines()[-5:]))


def readings(node):
    return node.link.session.on(node.link.profile.topics["telemetry"])


def test_a_wake_reads_sends_says_sleeping_and_sleeps_the_rest_of_sleep_s():
    chip, node = make_node(SLEEPER)
    session = node.link.session
    assert session.clean is False  # what comes while it sleeps waits at the broker
    asleep, awake_ms = until_asleep(node)
    assert asleep.kind == "deepsleep" and 600000 - awake_ms - 100 <= asleep.sleep_ms <= 600000, asleep.sleep_ms
    assert 1000 <= awake_ms <= 2500, awake_ms  # its reading, then a second of quiet for what the broker kept
    assert [r["seq"] for r in readings(node)] == [0]
    closed = [p for t, p in session.sent if t == "closed"]
    assert closed == [{"status": "sleeping", "device_id": "n1", "next_wake_s": (asleep.sleep_ms + 999) // 1000}]
    assert session.parked == 1
    assert BootGuard(machine.RTC()).count() == 0  # a wake that did its work is no failed boot
    chip, node = make_node(SLEEPER, chip=chip)
    node.clock.synced = True  # with a set clock, its status says when it was sent
    until_asleep(node)
    closed = [p for t, p in node.link.session.sent if t == "closed"]
    assert len(closed) == 1 and closed[0]["ts"].endswith("Z") and closed[0]["next_wake_s"] > 0, closed


def test_a_wake_from_deep_sleep_continues_the_boot_and_a_reset_starts_a_new_one():
    chip, node = make_node(SLEEPER)
    node.clock.synced = True
    node.link.session.queue.dropped = 3
    until_asleep(node)
    first_boot = node.boot_id
    chip.reset_cause = machine.DEEPSLEEP_RESET
    chip, woken = make_node(SLEEPER, chip=chip)
    assert woken.boot_id == first_boot and woken.seq == 1 and woken.clock.synced
    assert woken.uptime_ms >= 600000  # its uptime counts the sleep: the boot goes on
    until_asleep(woken)
    reading = readings(woken)[0]
    assert reading["seq"] == 1 and reading["boot_id"] == first_boot and reading["meta"]["dropped"] == 3
    assert reading["uptime_s"] >= 600 and reading["ts"] is not None  # the RTC kept the time
    chip.reset_cause = machine.HARD_RESET
    chip, again = make_node(SLEEPER, chip=chip)
    assert again.boot_id != first_boot and again.seq == 0 and again.uptime_ms < 1000


def test_the_boot_guard_and_the_sleep_record_share_rtc_memory():
    chip, node = make_node(SLEEPER)
    guard = BootGuard(machine.RTC())
    guard.boot()
    until_asleep(node)
    record = machine.RTC().memory()[5:]
    assert len(record) > 10
    guard.boot()  # the wake counts itself, leaving the record as it is
    assert guard.count() == 2 and machine.RTC().memory()[5:] == record
    guard.healthy()
    assert guard.count() == 0 and machine.RTC().memory()[5:] == record


def test_a_broker_not_reached_within_awake_s_leaves_the_reading_on_flash_and_sleeps_anyway():
    chip, node = make_node(SLEEPER)
    session = node.link.session
    session.connected = False
    session.connects = 0
    node.sleeper._deadline = ticks_add(ticks_ms(), 400)  # awake_s, shortened
    asleep, awake_ms = until_asleep(node)
    assert 350 <= awake_ms <= 1500, awake_ms
    assert session.parked == 1 and not [p for t, p in session.sent if t == "closed"]  # nobody to tell
    assert any("broker not reached" in line for line in node.log.lines())


def test_a_message_keeps_the_wake_going_until_it_is_answered_and_quiet_again():
    chip, node = make_node(SLEEPER)
    started = ticks_ms()
    while ticks_diff(ticks_ms(), started) < 800:
        node.step()
    node.on_message(b"farm/n1/commands", b'{"command": "ping", "command_id": "p1"}')
    asleep, awake_ms = until_asleep(node)
    assert awake_ms >= 950, awake_ms  # a second of quiet after the message
    answers = node.link.session.on(node.link.profile.topics["command_response"])
    assert [a["command_id"] for a in answers] == ["p1"]


def test_a_node_with_relays_cannot_be_configured_to_sleep():
    err = raises(ConfigError, config.apply, config.defaults(), {"power": {"mode": "deepsleep"}})
    assert dict(err.problems)["power.mode"].startswith(
        "a node with relays (fertigation, irrigation) cannot deep-sleep: a sleeping chip cannot time them")
    err = raises(ConfigError, config.apply, config.defaults(), dict(SLEEPER, mqtt={"spill_bytes": 0}))
    assert dict(err.problems)["mqtt.spill_bytes"].startswith("must not be 0 with power.mode deepsleep")
    err = raises(ConfigError, config.apply, config.defaults(), {"power": {"mode": "nap", "sleep_s": 1}})
    assert dict(err.problems) == {"power.mode": "must be one of always_on, deepsleep, got 'nap'",
                                  "power.sleep_s": "must be between 10 and 86400, got 1"}
    assert config.apply(config.defaults(), SLEEPER)["power"]["mode"] == "deepsleep"


class FixedADC:
    def __init__(self, micro):
        self.micro = micro

    def read_uv(self):
        return self.micro


def test_the_battery_reads_volts_through_its_divider_and_a_share_between_empty_and_full():
    cases = ((1950000, 3.9, 67), (2150000, 4.3, 100), (1500000, 3.0, 0), (10000, None, None))
    for micro, volts, pct in cases:
        values, errors = {}, {}
        drive(Battery(FixedADC(micro), ratio=2.0, empty_v=3.3, full_v=4.2).read_steps(values, errors))
        assert values == {"battery_v": volts, "battery_pct": pct}, (micro, values)
        assert errors == ({} if volts is not None else {"battery": "unplugged"})
    err = raises(ConfigError, config.apply, config.defaults(), {"sensors": {"battery": {"empty_v": 4.2}}})
    assert dict(err.problems) == {"sensors.battery.empty_v": "must be below full_v"}


def test_a_wake_writes_nothing_to_the_flash_log_a_reset_does():
    root = tmpdir()
    write_text(root + "/config.json", json.dumps(dict(SLEEPER, device_id="n1")))
    chip = new_chip()
    chip.reset_cause = machine.DEEPSLEEP_RESET
    node = startup.run(root)
    node.sleeper._deadline = ticks_add(ticks_ms(), 300)  # awake_s, shortened: no Wi-Fi here
    until_asleep(node)
    assert not exists(startup.flash_log_path(root)), read_text(startup.flash_log_path(root))
    chip.reset_cause = machine.HARD_RESET
    startup.run(root)
    assert "boot: reset cause 2, 0 failed before, application" in startup.flash_log(root).tail(1)[0]


def test_a_fitted_battery_is_in_telemetry_and_in_seed_004s_metadata():
    readings_of = {}
    for profile in ("farmnode", "dese"):
        chip, node = make_node({"profile": profile, "org_id": "o1", "sensors": {"battery": {"enabled": True}}})
        node.clock.synced = True  # seed 004 wants a time
        topic = node.link.profile.topics["telemetry"]
        started = ticks_ms()
        while not node.link.session.on(topic) and ticks_diff(ticks_ms(), started) < 3000:
            node.step()
        readings_of[profile] = node.link.session.on(topic)[0]
    sensors = readings_of["farmnode"]["sensors"]
    assert 3.0 <= sensors["battery_v"] <= 4.2 and type(sensors["battery_pct"]) is int, sensors
    assert readings_of["dese"]["metadata"]["battery"] == sensors["battery_pct"], readings_of["dese"]
    chip, node = make_node()
    assert "battery_v" not in messages.reading(node, {"moisture": 40.0}, {}, (None, None), 0)["sensors"]
