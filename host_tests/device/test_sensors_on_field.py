# The sensor drivers end to end: firmware.board builds them on the stubs from the
# config, the field model sets the physical values, the reader returns telemetry.
from firmware import config
from firmware.board import build_sensors
from firmware.sensors.reader import SensorReader
from fieldmodel import Field
from simchip import new_chip, wiring_from_config


def node(patch=None, faults=None, **field_values):
    cfg = config.apply(config.defaults(), patch or {})
    field = Field()
    for name in field_values:
        field.set(name, field_values[name])
    for sensor in faults or {}:  # before the chip starts delivering anemometer edges
        field.fault(sensor, faults[sensor])
    chip = new_chip(field, wiring_from_config(cfg))
    # What the drivers make of the field, not how long the DHT holds the chip (test_stubs):
    # its ~270 ms per try are not waited for here.
    chip.on_hold = _not_held
    drivers, problems = build_sensors(cfg)
    assert problems == []
    return chip, SensorReader(drivers)


def _not_held(ms):
    pass


def near(value, expected, tolerance):
    return value is not None and abs(value - expected) <= tolerance


def test_every_sensor_reads_the_field_in_protocol_units():
    chip, reader = node(moisture=53.1, temp=26.1, humidity=41.9, n=38, p=15, k=300,
                        ec=1.06, ph=6.8, soil_temp=26.1)
    chip.pulse(27, 12, 80)  # a light breeze on the anemometer
    values, errors = reader.read()
    assert errors == {}
    assert near(values["moisture"], 53.1, 1.0)
    assert near(values["temp"], 26.1, 0.2) and near(values["humidity"], 41.9, 0.5)
    assert (values["n"], values["p"], values["k"]) == (38, 15, 300)  # 16-bit, not capped at 255
    assert near(values["ph"], 6.8, 0.05)
    assert near(values["ec"], 1.06, 0.02)
    assert values["wind_speed"] > 0


def test_ec_is_compensated_to_25c_with_the_soil_temperature():
    # The probe sees ec25 * (1 + 0.02 * (35 - 25)) = 1.2 * ec25; the driver divides it back.
    _, reader = node(ec=2.0, soil_temp=35.0, temp=35.0)
    assert near(reader.read()[0]["ec"], 2.0, 0.03)
    _, cold = node(ec=2.0, soil_temp=15.0, temp=35.0)  # air and soil disagree by 20 C
    assert near(cold.read()[0]["ec"], 2.0, 0.03)
    # Without the soil probe, the air's temperature: the probe in soil at 15 C reads low.
    _, air = node({"sensors": {"soil_temp": {"enabled": False}}}, ec=2.0, soil_temp=15.0, temp=35.0)
    assert near(air.read()[0]["ec"], 2.0 * 0.8 / 1.2, 0.03)


def test_soil_calibration_from_config_is_used():
    _, reader = node({"sensors": {"soil": {"dry": 3000, "wet": 1500}}}, moisture=50.0)
    # 50 % on the probe is ~2250 counts: (3000 - 2250) / (3000 - 1500) = 50 %.
    assert near(reader.read()[0]["moisture"], 50.0, 1.5)


def test_each_fault_gives_a_null_and_a_reason_never_a_number():
    expected = {
        ("soil", "unplugged"): ("moisture", "unplugged"),
        ("dht", "timeout"): ("temp", "timeout"),
        ("dht", "crc"): ("humidity", "crc"),
        ("dht", "unplugged"): ("temp", "timeout"),
        ("npk", "timeout"): ("n", "timeout"),
        ("npk", "unplugged"): ("k", "timeout"),
        ("npk", "crc"): ("p", "crc"),
        ("ec", "unplugged"): ("ec", "unplugged"),
        ("ph", "unplugged"): ("ph", "unplugged"),
    }
    for (sensor, fault), (key, reason) in expected.items():
        chip, reader = node()
        chip.field.fault(sensor, fault)
        values, errors = reader.read()
        assert values[key] is None, (sensor, fault, values)
        assert errors.get(sensor) == reason, (sensor, fault, errors)
        others = [k for k in ("moisture", "temp", "n", "ec", "ph") if k != key and
                  not (sensor == "dht" and k == "temp") and not (sensor == "npk" and k == "n")]
        for other in others:
            assert values[other] is not None, (sensor, fault, other)  # the others still read


def test_stuck_sensor_keeps_reporting_its_frozen_value():
    chip, reader = node(moisture=40.0)
    chip.field.fault("soil", "stuck")
    chip.field.set("moisture", 80.0)
    assert near(reader.read()[0]["moisture"], 40.0, 1.0)


def test_npk_protocol_faults():
    for mode, reason in (("late", "timeout"), ("wrong_addr", "frame"), ("garbage", "timeout"),
                         ("exception", "exception")):
        chip, reader = node()
        chip.npk.mode = mode
        values, errors = reader.read()
        assert values["n"] is None and errors["npk"] == reason, (mode, errors)


def test_npk_registers_and_address_from_config():
    chip, reader = node({"sensors": {"npk": {"reg_n": 0x1E, "reg_p": 0x20, "reg_k": 0x1F}}},
                        n=10, p=20, k=30)
    values = reader.read()[0]
    assert (values["n"], values["p"], values["k"]) == (10, 30, 20)  # P and K swapped by config
    assert len(chip.npk.requests) == 3  # not adjacent: one request per register


def test_npk_probe_over_range_is_an_error():
    _, reader = node(n=2500)
    values, errors = reader.read()
    assert values["n"] is None and errors["npk"] == "range"


def test_dht11_from_config():
    _, reader = node({"sensors": {"dht": {"type": "DHT11"}}}, temp=21.4, humidity=48.0)
    values = reader.read()[0]
    assert values["temp"] == 21 and values["humidity"] == 48


def test_ezo_circuits_on_i2c():
    patch = {"sensors": {"ec": {"bus": "i2c"}, "ph": {"bus": "i2c"}}}
    chip, reader = node(patch, ec=1.413, ph=6.5, temp=30.0, soil_temp=22.0)  # told the soil's temperature
    values, errors = reader.read()
    assert errors == {}
    assert values["ph"] == 6.5 and values["ec"] == 1.413
    ph_circuit = chip.i2c_devices[0x63]
    assert ph_circuit.commands == ["T,22.0", "R"] and ph_circuit.temp_c == 22.0
    reader.read()
    assert ph_circuit.commands[-1] == "R" and ph_circuit.commands.count("T,22.0") == 1  # not resent


def test_ezo_faults():
    patch = {"sensors": {"ec": {"bus": "i2c"}, "ph": {"bus": "i2c"}}}
    for fault, reason in (("unplugged", "unplugged"), ("timeout", "timeout"), ("crc", "syntax")):
        chip, reader = node(patch)
        chip.field.fault("ph", fault)
        values, errors = reader.read()
        assert values["ph"] is None and errors["ph"] == reason, (fault, errors)
        assert values["ec"] is not None


def test_disabled_sensors_are_null_without_an_error():
    _, reader = node({"sensors": {"npk": {"enabled": False}, "wind": {"enabled": False}}})
    values, errors = reader.read()
    assert values["n"] is None and values["wind_speed"] is None
    assert "npk" not in errors and "wind" not in errors


def test_hardware_the_chip_refuses_is_reported_not_raised():
    cfg = config.apply(config.defaults(), {})
    cfg["sensors"]["soil"]["pin"] = 5  # not an ADC pin (config validation would refuse it too)
    new_chip(Field(), wiring_from_config(cfg))
    drivers, problems = build_sensors(cfg)
    assert problems[0][0] == "sensors.soil" and "ADC" in problems[0][1]
    values, errors = SensorReader(drivers).read()
    assert values["moisture"] is None and errors["soil"] == "setup"


def test_a_slow_sensor_does_not_delay_the_others_beyond_its_bound():
    from ticks import sleep_ms, ticks_diff, ticks_ms

    chip, reader = node()
    chip.field.fault("npk", "timeout")
    reader.read()  # the soil probe's first conversion (750 ms); later passes find one ready
    sleep_ms(750)
    started = ticks_ms()
    values, errors = reader.read()
    elapsed = ticks_diff(ticks_ms(), started)
    assert errors["npk"] == "timeout" and values["moisture"] is not None
    assert elapsed < 500 + 400  # the Modbus bound (500 ms) plus the other sensors


def _read_wind_over(reader, ms):
    from ticks import sleep_ms, ticks_diff, ticks_ms

    reader.read()  # starts the interval
    started = ticks_ms()
    while ticks_diff(ticks_ms(), started) < ms:
        reader.poll()
        sleep_ms(10)  # scheduled anemometer IRQs run here, between bytecodes
    return reader.read()


def test_anemometer_counts_the_field_wind_through_its_irq():
    chip, reader = node({"sensors": {"npk": {"enabled": False}}}, wind_speed=24.0)  # 10 Hz
    values, errors = _read_wind_over(reader, 1500)
    chip.close()
    assert errors == {}
    assert near(values["wind_speed"], 24.0, 5.0), values["wind_speed"]


def test_anemometer_faults_read_as_calm():
    # A reed switch that never closes (unplugged) or stays closed (stuck) gives no edges.
    for fault in ("unplugged", "stuck"):
        chip, reader = node({"sensors": {"npk": {"enabled": False}}}, {"wind": fault}, wind_speed=24.0)
        values, errors = _read_wind_over(reader, 600)
        chip.close()
        assert values["wind_speed"] == 0.0 and "wind" not in errors, (fault, values)


def test_analog_faults_that_have_no_meaning_on_a_wire_read_as_unplugged():
    for sensor, key in (("soil", "moisture"), ("ph", "ph"), ("ec", "ec")):
        for fault in ("timeout", "crc"):
            chip, reader = node({"sensors": {"npk": {"enabled": False}}})
            chip.field.fault(sensor, fault)
            values, errors = reader.read()
            assert values[key] is None and errors[sensor] == "unplugged", (sensor, fault)
