# The field model: physics, faults, speed, and steering through a JSON file.
import json

from fieldmodel import Field
from testkit import raises, tmpdir, write_text
from ticks import sleep_ms


def steer(path, data):
    write_text(path, data if isinstance(data, str) else json.dumps(data))
    sleep_ms(220)  # the model looks at the file at most every 200 ms


def test_soil_dries_over_time_and_rises_while_irrigating():
    field = Field(speed=3600.0, start_hour=12.0)  # one simulated hour per real second
    before = field.value("moisture")
    sleep_ms(300)
    dried = field.value("moisture")
    assert before - 0.5 < dried < before  # ~0.6 %/h, a bit faster when warm
    field.set_actuator("irrigation", True)
    sleep_ms(300)
    wet = field.value("moisture")
    assert wet > dried + 5  # ~30 %/h while the valve is open
    field.set_actuator("irrigation", False)
    sleep_ms(200)
    assert field.value("moisture") < wet


def test_moisture_stays_within_physical_limits():
    field = Field(speed=360000.0, moisture=90.0)
    field.set_actuator("irrigation", True)
    sleep_ms(200)
    assert field.value("moisture") <= 97.0


def test_air_temperature_follows_the_day_and_humidity_opposes_it():
    dawn = Field(start_hour=5.0)
    afternoon = Field(start_hour=15.0)
    assert afternoon.value("temp") - dawn.value("temp") > 10
    assert afternoon.value("humidity") < dawn.value("humidity")


def test_speed_factor_runs_simulated_time_faster():
    field = Field(speed=600.0)
    sleep_ms(100)
    assert 50 <= field.sim_seconds() <= 90
    field.set_speed(1.0)
    banked = field.sim_seconds()
    sleep_ms(100)
    assert 0.05 <= field.sim_seconds() - banked < 0.5


def test_wind_has_gusts():
    field = Field(speed=10.0)
    speeds = []
    for _ in range(40):
        speeds.append(field.value("wind_speed"))
        sleep_ms(25)  # 10 simulated seconds in all
    assert min(speeds) >= 0 and max(speeds) - min(speeds) > 1.0


def test_programmatic_overrides_and_faults():
    field = Field()
    field.set("ph", 5.1)
    assert field.value("ph") == 5.1
    field.set("ph", None)
    assert field.value("ph") == 6.8
    field.fault("dht", "crc")
    assert field.fault_of("dht") == "crc"
    raises(ValueError, field.fault, "dht", "melted")
    raises(ValueError, field.fault, "radar", "crc")
    raises(ValueError, field.set, "colour", 1)


def test_stuck_sensor_repeats_its_value():
    field = Field(speed=36000.0)
    field.fault("soil", "stuck")
    frozen = field.value("moisture")
    field.set_actuator("irrigation", True)
    sleep_ms(100)
    assert field.value("moisture") == frozen
    field.fault("soil", None)
    assert field.value("moisture") > frozen


def test_steering_file_overrides_values_and_sets_faults():
    path = tmpdir() + "/field.json"
    field = Field(steer_path=path)
    steer(path, {"moisture": 12.5, "wind_speed": 30, "faults": {"dht": "timeout"}})
    assert field.value("moisture") == 12.5 and field.value("wind_speed") == 30.0
    assert field.fault_of("dht") == "timeout" and field.steer_error is None
    steer(path, {"wind_speed": 30})  # moisture and the fault removed: the model resumes
    assert field.value("moisture") != 12.5 and field.fault_of("dht") is None


def test_steering_change_within_the_same_second_is_seen():
    path = tmpdir() + "/field.json"
    field = Field(steer_path=path)
    steer(path, {"ph": 5.0})
    assert field.value("ph") == 5.0
    steer(path, {"ph": 6.0})  # same size, same mtime second: the content tells
    assert field.value("ph") == 6.0


def test_malformed_steering_is_reported_and_ignored():
    path = tmpdir() + "/field.json"
    field = Field(steer_path=path)
    steer(path, {"ph": 5.0})
    assert field.value("ph") == 5.0
    for bad in ('{"ph": ', '[1, 2]', '{"ph": "acid"}', '{"faults": {"dht": "melted"}}', '{"colour": 1}'):
        steer(path, bad)
        assert field.value("ph") == 5.0  # the last good steering stays
        assert field.steer_error is not None and "field.json" in field.steer_error, bad
    steer(path, {"ph": 7.5})
    assert field.value("ph") == 7.5 and field.steer_error is None


def test_steering_speed():
    path = tmpdir() + "/field.json"
    field = Field(steer_path=path)
    steer(path, {"speed": 120})
    field.value("temp")  # any read looks at the file
    assert field.speed == 120.0


def test_missing_steering_file_steers_nothing():
    field = Field(steer_path=tmpdir() + "/absent.json")
    assert field.value("ph") == 6.8 and field.steer_error is None


def after(field, hours):
    """The same field, hours later (as a node's sleep file resumes it)."""
    field.resume(field.state(), hours * 3600)
    return field


def test_battery_drains_by_night_and_charges_by_day():
    night = after(Field(start_hour=19.0), 8)  # 19:00 to 03:00: the drain alone
    assert abs(night.value("battery_v") - (3.95 - 8 * 0.005)) < 0.002, night.value("battery_v")
    day = after(Field(start_hour=8.0), 8)  # 08:00 to 16:00: the panel outdoes the drain
    assert 4.03 < day.value("battery_v") < 4.06, day.value("battery_v")
    assert 15.9 < day.hour() < 16.1


def test_battery_stays_within_a_cells_limits():
    assert after(Field(start_hour=8.0, battery_v=4.19), 8).value("battery_v") == 4.2
    assert after(Field(start_hour=19.0, battery_v=3.02), 8).value("battery_v") == 3.0


def test_a_field_resumed_after_a_sleep_goes_on_where_it_was():
    slept = after(Field(start_hour=7.0, moisture=60.0, battery_v=3.7), 3)  # to 10:00
    state = json.loads(json.dumps(slept.state()))  # as the sleep file keeps it
    woken = Field(start_hour=7.0)  # a new process's field...
    woken.resume(state, 2 * 3600)  # ...the same one, two hours of sleep on
    assert 11.9 < woken.hour() < 12.1, woken.hour()
    moisture = woken.value("moisture")
    assert state["moisture"] - 1.6 < moisture < state["moisture"] - 1.2, (state, moisture)  # ~0.7 %/h at 29 C
    battery_v = woken.value("battery_v")
    assert state["battery_v"] + 0.01 < battery_v < state["battery_v"] + 0.03, (state, battery_v)  # the morning sun


def test_battery_is_steered_like_the_other_values():
    path = tmpdir() + "/field.json"
    field = Field(steer_path=path)
    assert abs(field.value("battery_v") - 3.95) < 0.001  # a new cell, by default
    steer(path, {"battery_v": 3.5, "faults": {"battery": "unplugged"}})
    assert field.value("battery_v") == 3.5 and field.fault_of("battery") == "unplugged"
    field.set("battery_v", 3.3)  # a program's override comes first
    assert field.value("battery_v") == 3.3
    field.fault("battery", "stuck")
    field.set("battery_v", None)
    assert field.value("battery_v") == 3.3  # stuck at what it read
    assert field.snapshot()["battery_v"] == 3.3
