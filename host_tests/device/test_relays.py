# Relays and the safety rules the device enforces, on the stub pins and the field.
from fieldmodel import Field
from firmware import config
from firmware.board import build_relays
from firmware.relays import RelayBank, Refused
from simchip import new_chip, wiring_from_config
from testkit import raises
from ticks import sleep_ms

CALM = {"wind_speed": 5.0, "ph": 6.5}


def bank(patch=None, max_age_ms=120000):
    cfg = config.apply(config.defaults(), patch or {})
    chip = new_chip(Field(), wiring_from_config(cfg))
    relays = build_relays(cfg)
    return chip, RelayBank(relays, cfg["interlocks"], cfg["relay_groups"], max_age_ms)


def test_every_relay_is_off_at_boot_active_low_included():
    chip, relays = bank({"relays": {"irrigation": {"active_low": True}}})
    assert chip.writes(26)[0][1] == 1  # active low: off is high, written before anything else
    assert chip.writes(25)[0][1] == 0
    assert not chip.relay_on("irrigation") and not chip.relay_on("fertigation")
    assert relays.states() == {"irrigation": 0, "fertigation": 0}


def test_relay_drives_its_pin_and_the_field():
    chip, relays = bank()
    assert relays.set("irrigation", True, 60) == 60
    assert chip.relay_on("irrigation") and chip.field.actuators["irrigation"]
    relays.set("irrigation", False)
    assert not chip.relay_on("irrigation")
    assert [c[:2] for c in relays.take_changes()] == [("irrigation", True), ("irrigation", False)]


def test_duration_switches_off_by_itself():
    chip, relays = bank()
    relays.set("irrigation", True, 0.3)
    relays.poll()
    assert chip.relay_on("irrigation")
    sleep_ms(350)
    relays.poll()
    assert not chip.relay_on("irrigation")
    assert relays.take_changes()[-1] == ("irrigation", False, "timer", None)


def test_a_stop_at_max_on_s_says_so_and_a_requested_duration_says_timer():
    chip, relays = bank({"relays": {"irrigation": {"max_on_s": 1}}})
    for asked in (None, 5):  # none, or more than allowed: the safety limit stops it
        relays.set("irrigation", True, asked)
        sleep_ms(1050)
        relays.poll()
        assert not chip.relay_on("irrigation")
        assert relays.take_changes()[-1] == ("irrigation", False, "max_on_s", "max_on_s"), asked


def test_max_on_s_holds_when_a_command_forgets_or_asks_for_more():
    chip, relays = bank({"relays": {"irrigation": {"max_on_s": 1}}})
    assert relays.set("irrigation", True) == 1  # no duration: max_on_s
    assert relays.set("irrigation", True, 3600) == 1  # more than allowed: max_on_s
    sleep_ms(1050)
    relays.poll()
    assert not chip.relay_on("irrigation")


def test_unknown_relay_is_a_key_error():
    _, relays = bank()
    raises(KeyError, relays.set, "sprinkler", True)


def test_fertigation_refused_in_wind_and_bad_ph_naming_the_rule():
    chip, relays = bank()
    relays.observe(dict(CALM, wind_speed=24.0))
    err = raises(Refused, relays.set, "fertigation", True, 60)
    assert "spray_drift" in str(err) and "wind_speed 24.0" in str(err)
    relays.observe(dict(CALM, ph=5.1))
    assert "nutrient_lockout" in str(raises(Refused, relays.set, "fertigation", True, 60))
    assert not chip.relay_on("fertigation")
    relays.observe(CALM)
    relays.set("fertigation", True, 60)
    assert chip.relay_on("fertigation")
    relays.set("irrigation", True, 60)  # irrigation has no interlock
    assert chip.relay_on("irrigation")


def test_missing_or_stale_reading_refuses_fertigation():
    chip, relays = bank(max_age_ms=200)
    assert "no recent wind_speed" in str(raises(Refused, relays.set, "fertigation", True))
    relays.observe({"wind_speed": None, "ph": 6.5})
    assert "no recent wind_speed" in str(raises(Refused, relays.set, "fertigation", True))
    relays.observe(CALM)
    sleep_ms(250)
    assert "no recent" in str(raises(Refused, relays.set, "fertigation", True))


def test_running_fertigation_stops_when_the_wind_rises():
    chip, relays = bank()
    relays.observe(CALM)
    relays.set("fertigation", True, 300)
    relays.observe(dict(CALM, wind_speed=31.0))
    assert not chip.relay_on("fertigation")
    assert relays.take_changes()[-1][2].startswith("interlock spray_drift")


def test_relays_in_a_group_exclude_each_other():
    chip, relays = bank({"relay_groups": {"one_pump": ["irrigation", "fertigation"]}})
    relays.observe(CALM)
    relays.set("irrigation", True, 60)
    relays.set("fertigation", True, 60)
    assert chip.relay_on("fertigation") and not chip.relay_on("irrigation")


def test_all_off():
    chip, relays = bank()
    relays.observe(CALM)
    relays.set("irrigation", True)
    relays.set("fertigation", True)
    relays.all_off("failsafe")
    assert not chip.relay_on("irrigation") and not chip.relay_on("fertigation")
    assert {c[2] for c in relays.take_changes() if not c[1]} == {"failsafe"}
