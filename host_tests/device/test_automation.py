# The node's own automation (firmware/automation.py): rules that irrigate by a reading,
# schedules at a local time, a command's hold, the failsafe that spares them, and their
# config. On the stubs with a recorded session; the broker-in-the-loop run (mosquitto
# stopped meanwhile) is host_tests/host/test_automation_mqtt.py.
import sys

from fieldmodel import Field
from firmware import config, messages, unload
from firmware.automation import NO_CLOCK, Automation
from firmware.errors import ConfigError
from firmware.relays import Relay, RelayBank
from nodekit import make_node, send
from simchip import new_chip
from testkit import raises
from ticks import sleep_ms, ticks_add, ticks_diff, ticks_ms
import machine

DRY = {"relay": "irrigation", "sensor": "moisture", "on_below": 25, "off_above": 40, "max_run_s": 600,
       "min_rest_s": 0}


def automated(rules=None, schedules=None, moisture=18.0, patch=None, **automation):
    field = Field()
    field.set("moisture", moisture)
    field.set("wind_speed", 4.0)  # calm, pH fine: fertigation's interlocks allow it
    field.set("ph", 6.5)
    cfg = dict({"interval_s": 1, "automation": dict({"rules": rules or {}, "schedules": schedules or {}},
                                                       **automation)}, **(patch or {}))
    chip, node = make_node(cfg, field)
    return field, chip, node


def run_until(node, condition, limit_ms=6000):
    started = ticks_ms()
    while not condition():
        assert ticks_diff(ticks_ms(), started) < limit_ms, node.log.lines()[-8:]
        node.step()
    return ticks_diff(ticks_ms(), started)


def info_alerts(node):
    """The messages of the alerts about relays (not a reading's)."""
    return [a["message"] for a in node.link.session.on(node.link.profile.topics["alert"]) if a["sensor"] is None]


def telemetry(node):
    return node.link.session.on(node.link.profile.topics["telemetry"])


def test_a_rule_irrigates_a_dry_field_and_stops_above_off_above():
    field, chip, node = automated({"dry": DRY})
    run_until(node, lambda: chip.relay_on("irrigation"))
    started = info_alerts(node)
    assert len(started) == 1 and started[0].startswith("irrigation started: dry: moisture 1"), started
    assert started[0].endswith(" < 25"), started
    last = telemetry(node)[-1]  # the new state, at once
    assert last["relays"]["irrigation"] == 1 and last["meta"]["automation"] == {"irrigation": "dry"}, last
    field.set("moisture", 44.0)
    run_until(node, lambda: not chip.relay_on("irrigation"))
    stopped = info_alerts(node)[1:]
    assert len(stopped) == 1 and stopped[0].startswith("irrigation stopped: dry: moisture 4"), stopped
    assert stopped[0].endswith(" > 40"), stopped
    last = telemetry(node)[-1]
    assert last["relays"]["irrigation"] == 0 and last["meta"]["automation"] == {}, last


def test_between_on_below_and_off_above_nothing_changes():
    field, chip, node = automated({"dry": DRY}, moisture=30.0)
    run_until(node, lambda: len(telemetry(node)) >= 2)
    assert not chip.relay_on("irrigation")  # not dry enough to start
    field.set("moisture", 18.0)
    run_until(node, lambda: chip.relay_on("irrigation"))
    field.set("moisture", 30.0)  # wetter, not wet enough to stop
    count = len(telemetry(node))
    run_until(node, lambda: len(telemetry(node)) >= count + 2)
    assert chip.relay_on("irrigation")


def test_a_rule_stops_at_max_run_s_then_rests_min_rest_s():
    field, chip, node = automated({"dry": dict(DRY, max_run_s=1, min_rest_s=2)})
    run_until(node, lambda: chip.relay_on("irrigation"))
    ran = run_until(node, lambda: not chip.relay_on("irrigation"))
    assert 800 <= ran <= 1500, ran
    assert info_alerts(node)[-1] == "irrigation stopped: dry: max_run_s reached"
    rested = run_until(node, lambda: chip.relay_on("irrigation"))  # still dry: again, after its rest
    assert 1900 <= rested <= 3500, rested


def test_a_run_never_lasts_past_the_relays_max_on_s():
    field, chip, node = automated({"dry": dict(DRY, max_run_s=600, min_rest_s=60)},
                                  patch={"relays": {"irrigation": {"max_on_s": 1}}})
    run_until(node, lambda: chip.relay_on("irrigation"))
    ran = run_until(node, lambda: not chip.relay_on("irrigation"))
    assert ran <= 1500, ran
    assert info_alerts(node)[-1] == "irrigation stopped: dry: max_on_s reached"


def test_a_run_whose_end_and_its_relays_timer_fall_in_one_turn_stops_with_the_rules_reason():
    """The relay's own timer is set a moment after the run's end: judged at one instant,
    the rule's stop comes first (on a loaded machine the timer had won, and the stop went
    out as a bare "timer" with no alert)."""
    field, chip, node = automated({"dry": dict(DRY, max_run_s=1, min_rest_s=60)})
    run_until(node, lambda: chip.relay_on("irrigation"))
    node.relays.take_changes()
    node._safety(ticks_add(ticks_ms(), 1500))  # one turn, both past due
    assert not chip.relay_on("irrigation")
    assert info_alerts(node)[-1] == "irrigation stopped: dry: max_run_s reached", info_alerts(node)
    console = node.log.lines()
    assert any(line.endswith("relay irrigation off (dry: max_run_s reached)") for line in console), console[-4:]
    assert not any("(timer)" in line for line in console), console


def test_a_missing_reading_stops_the_rule_and_a_stale_one_does_not_start_it():
    field, chip, node = automated({"dry": DRY})
    run_until(node, lambda: chip.relay_on("irrigation"))
    field.fault("soil", "unplugged")
    run_until(node, lambda: not chip.relay_on("irrigation"))
    assert info_alerts(node)[-1] == "irrigation stopped: dry: no recent moisture reading"
    field.clear()
    field.set("moisture", 18.0)
    run_until(node, lambda: chip.relay_on("irrigation"))
    node.relays._read_at = ticks_add(ticks_ms(), -2001)  # the last reading, older than two intervals
    node.automation.poll(node.log, ticks_ms())
    assert not chip.relay_on("irrigation")
    assert node.relays.changes[-1] == ("irrigation", False, "dry: no recent moisture reading", "dry")
    node.automation.look_now()
    node.automation.poll(node.log, ticks_ms())
    assert not chip.relay_on("irrigation")  # dry, but not known to be


def test_a_command_holds_the_automation_off_its_relay_for_manual_hold_s():
    field, chip, node = automated({"dry": DRY}, manual_hold_s=2)
    run_until(node, lambda: chip.relay_on("irrigation"))
    assert send(node, {"command": "relay", "parameters": {"relay": "irrigation", "state": "off"}})["success"]
    assert not chip.relay_on("irrigation")
    held = run_until(node, lambda: chip.relay_on("irrigation"))  # still dry: back once the hold is over
    assert 1700 <= held <= 3500, held
    # A command that switches it on takes it over: the rule does not stop it at off_above.
    assert send(node, {"command": "relay", "parameters": {"relay": "irrigation", "state": "on", "duration_s": 30}})
    field.set("moisture", 44.0)
    count = len(telemetry(node))
    run_until(node, lambda: len(telemetry(node)) >= count + 2)
    assert chip.relay_on("irrigation") and telemetry(node)[-1]["meta"]["automation"] == {}


def test_interlocks_and_groups_apply_to_the_automation_as_to_a_command():
    field, chip, node = automated({"feed": {"relay": "fertigation", "sensor": "moisture", "on_below": 25,
                                            "off_above": 40, "max_run_s": 60, "min_rest_s": 0}},
                                  patch={"relay_groups": {"pumps": ["irrigation", "fertigation"]}})
    field.set("ph", 4.5)  # nutrient lockout
    count = len(telemetry(node))
    run_until(node, lambda: len(telemetry(node)) >= count + 3)
    assert not chip.relay_on("fertigation")
    refused = [line for line in node.log.lines() if "automation feed: fertigation refused: interlock" in line]
    assert len(refused) == 1, node.log.lines()  # said once, not at every look
    field.set("ph", 6.5)
    assert send(node, {"command": "relay", "parameters": {"relay": "irrigation", "state": "on", "duration_s": 60}})
    run_until(node, lambda: chip.relay_on("fertigation"))
    assert not chip.relay_on("irrigation")  # its group: one at a time


def failsafe(node):
    node.link.session.connected = False
    node.step()
    node._offline_since = ticks_add(ticks_ms(), -301000)  # as if 301 s had passed
    node.step()


def test_the_failsafe_stops_what_commands_started_not_what_the_automation_runs():
    field, chip, node = automated({"dry": DRY})
    run_until(node, lambda: chip.relay_on("irrigation"))
    assert send(node, {"command": "relay", "parameters": {"relay": "fertigation", "state": "on"}})["success"]
    failsafe(node)
    assert chip.relay_on("irrigation") and not chip.relay_on("fertigation")
    assert any("every relay off but the automation's" in line for line in node.log.lines())
    field.set("moisture", 44.0)  # offline, the rule still stops it
    run_until(node, lambda: not chip.relay_on("irrigation"))
    field.set("moisture", 18.0)  # and starts it
    run_until(node, lambda: chip.relay_on("irrigation"))


def test_with_offline_false_the_failsafe_stops_the_automation_too_until_the_broker_is_back():
    field, chip, node = automated({"dry": DRY}, offline=False)
    run_until(node, lambda: chip.relay_on("irrigation"))
    failsafe(node)
    assert not chip.relay_on("irrigation")
    count = len(telemetry(node))
    run_until(node, lambda: len(telemetry(node)) >= count + 2)
    assert not chip.relay_on("irrigation")  # dry, but paused while the broker is gone
    node.link.session.connected = True
    run_until(node, lambda: chip.relay_on("irrigation"))


class FixedClock:
    def __init__(self, unix):
        self.synced = unix is not None
        self.time = unix

    def unix(self):
        return self.time


MONDAY_0600_UTC = 1767571200 + 6 * 3600  # 2026-01-05, a Monday


def schedule_bank(clock, schedule, utc_offset_min=0):
    new_chip(Field())
    relays = {"irrigation": Relay("irrigation", machine.Pin(26, machine.Pin.OUT), max_on_s=1800)}
    bank = RelayBank(relays, {}, {}, 2000)
    cfg = {"automation": {"rules": {}, "schedules": {"morning": schedule}, "manual_hold_s": 3600, "offline": True},
           "clock": {"utc_offset_min": utc_offset_min}}
    return bank, Automation(cfg, bank, clock)


def look(automation):
    automation.look_now()
    automation.poll(lambda line: None, ticks_ms())


def test_a_schedule_runs_at_its_local_time_on_its_days_once_a_day():
    morning = {"relay": "irrigation", "at": "07:00", "run_s": 600, "days": [0, 2]}
    clock = FixedClock(MONDAY_0600_UTC - 1)  # Monday 06:59:59 local (UTC+1)
    bank, automation = schedule_bank(clock, morning, utc_offset_min=60)
    look(automation)
    assert not bank.relays["irrigation"].on
    clock.time += 1  # 07:00:00
    look(automation)
    assert bank.relays["irrigation"].on and automation.holding() == {"irrigation": "morning"}
    assert bank.take_changes() == [("irrigation", True, "morning: 07:00 for 600 s", "morning")]
    assert 599 <= bank.relays["irrigation"].off_in_s() <= 600
    bank.stop("irrigation", "test", None)
    look(automation)
    assert not bank.relays["irrigation"].on  # once a day
    clock.time += 86400  # Tuesday: not one of its days
    look(automation)
    assert not bank.relays["irrigation"].on
    clock.time += 86400 + 300  # Wednesday 07:05: the rest of its run
    look(automation)
    assert bank.relays["irrigation"].on and 299 <= bank.relays["irrigation"].off_in_s() <= 300
    bank.stop("irrigation", "test", None)
    clock.time += 6 * 86400 - 300 + 600  # Monday 07:10: its run is over
    look(automation)
    assert not bank.relays["irrigation"].on


def test_a_schedule_across_midnight_belongs_to_the_day_it_began():
    late = {"relay": "irrigation", "at": "23:55", "run_s": 600, "days": [6]}  # Sunday
    clock = FixedClock(MONDAY_0600_UTC - 6 * 3600 + 120)  # Monday 00:02 UTC: Sunday's run, 3 min in
    bank, automation = schedule_bank(clock, late)
    look(automation)
    assert bank.relays["irrigation"].on and 178 <= bank.relays["irrigation"].off_in_s() <= 180


def test_no_schedule_runs_without_a_set_clock_and_the_status_says_why():
    morning = {"relay": "irrigation", "at": "00:00", "run_s": 60, "days": [0, 1, 2, 3, 4, 5, 6]}
    field, chip, node = automated(schedules={"morning": morning})
    node.clock.synced = False
    node.clock._ntptime = None  # NTP never answers
    count = len(telemetry(node))
    run_until(node, lambda: len(telemetry(node)) >= count + 2)
    assert not chip.relay_on("irrigation")
    assert telemetry(node)[-1]["meta"]["schedules"] == NO_CLOCK
    assert messages.status(node, node.link, "online", {})["schedules"] == NO_CLOCK
    # Set, with local time at the start of the schedule: it runs.
    now = node.clock
    now.synced = True
    offset = -((now.unix() % 86400) // 60)  # minutes back to local midnight...
    offset += 1440 if offset < -720 else 0  # ...or on to it, within UTC-12..UTC+14
    answer = send(node, {"command": "config", "parameters": {"clock": {"utc_offset_min": offset}}})
    assert answer["success"], answer
    run_until(node, lambda: chip.relay_on("irrigation"))
    assert "schedules" not in messages.status(node, node.link, "online", {}) and info_alerts(node)[-1].startswith("irrigation started: morning")


def test_the_automation_config_is_checked_whole_and_its_code_loaded_only_while_it_has_work():
    bad = {"automation": {
        "rules": {"odd": dict(DRY, sensor="rain"), "": DRY},
        "schedules": {"dawn": {"relay": "irrigation", "at": "24:00", "days": [7]},
                      "never": {"relay": "irrigation", "at": "6:00", "days": []},
                      "twice": {"relay": "irrigation", "days": [1, 1]}},
        "manual_hold_s": -1}, "clock": {"utc_offset_min": 900}}
    found = dict(raises(ConfigError, config.apply, config.defaults(), bad).problems)
    assert found["automation.rules.odd.sensor"].startswith("must be one of moisture"), found
    assert found["automation.rules."] == "must not be empty"
    assert found["automation.schedules.dawn.at"] == 'must be a local time "HH:MM" (00:00 to 23:59), got \'24:00\''
    assert found["automation.schedules.never.at"].startswith('must be a local time "HH:MM"')
    for name in ("dawn", "never", "twice"):
        assert found["automation.schedules.%s.days" % name] == \
            "must list weekdays 0 (Monday) to 6 (Sunday), each once, at least one"
    assert found["automation.manual_hold_s"] == "must be between 0 and 604800, got -1"
    assert found["clock.utc_offset_min"] == "must be between -720 and 840, got 900"
    across = {"automation": {"rules": {"dry": dict(DRY, relay="sprinkler"), "wet": dict(DRY, on_below=50)},
                             "schedules": {"long": {"relay": "fertigation", "run_s": 900}}}}
    found = dict(raises(ConfigError, config.apply, config.defaults(), across).problems)
    assert found == {"automation.rules.dry.relay": "no relay named 'sprinkler'",
                     "automation.rules.wet.on_below": "must be below off_above",
                     "automation.schedules.long.run_s": "must not be above relays.fertigation.max_on_s (600)"}
    unload("firmware.automation_config")
    config.apply(config.defaults(), {"automation": {"manual_hold_s": 60}})
    assert "firmware.automation_config" not in sys.modules  # its entries' rules: only for entries
    field, chip, node = automated()
    assert node.automation is None and "firmware.automation" not in sys.modules
    assert send(node, {"command": "config", "parameters": {"automation": {"rules": {"dry": DRY}}}})["success"]
    assert node.automation is not None
    run_until(node, lambda: chip.relay_on("irrigation"))
    assert send(node, {"command": "config", "parameters": {"automation": {"rules": {"dry": None}}}})["success"]
    assert node.automation is None and "firmware.automation" not in sys.modules
    assert not chip.relay_on("irrigation")  # a run does not outlive its rule
    assert info_alerts(node)[-1] == "irrigation stopped: dry: no longer in the config"
