# Soil temperature from a DS18B20 on OneWire (firmware/sensors/soil_temp.py), through the
# stubs' protocol-level probe (simchip.DS18B20 behind the onewire stub), and EC and pH
# compensated with it: the probes sit in the soil, not in the air.
from firmware import config
from firmware.board import build_sensors
from firmware.sensors.reader import SensorReader
from fieldmodel import Field
from simchip import DS18B20, crc8, new_chip, wiring_from_config
from testkit import raises, tmpdir, write_text
from ticks import sleep_ms, ticks_diff, ticks_ms

ONLY_SOIL_TEMP = {"sensors": {"soil": {"enabled": False}, "dht": {"enabled": False}, "npk": {"enabled": False},
                              "ec": {"enabled": False}, "ph": {"enabled": False}, "wind": {"enabled": False}}}
NO_WIND = {"sensors": {"wind": {"enabled": False}, "npk": {"enabled": False}}}


def node(patch=None, faults=None, **field_values):
    cfg = config.apply(config.defaults(), patch or NO_WIND)
    field = Field()
    for name in field_values:
        field.set(name, field_values[name])
    for sensor in faults or {}:
        field.fault(sensor, faults[sensor])
    chip = new_chip(field, wiring_from_config(cfg))
    drivers, problems = build_sensors(cfg)
    assert problems == []
    return chip, SensorReader(drivers)


def within(value, expected, fraction):
    return value is not None and abs(value - expected) <= abs(expected) * fraction


# --- the stub's probe, at protocol level ---

def crc8_by_division(data):
    """An independent CRC8: the bits in wire order (least significant first), shifted
    through x^8 + x^5 + x^4 + 1 most significant first, the remainder read back reversed."""
    remainder = 0
    for byte in data:
        for n in range(8):
            remainder = (remainder << 1) | ((byte >> n) & 1)
            if remainder & 0x100:
                remainder ^= 0x131
    for _ in range(8):  # the message times x^8
        remainder <<= 1
        if remainder & 0x100:
            remainder ^= 0x131
    crc = 0
    for n in range(8):  # x^7 first on the wire is the CRC byte's least significant bit
        crc |= ((remainder >> (7 - n)) & 1) << n
    return crc


def test_the_stub_crc8_is_the_dallas_maxim_crc():
    # Maxim application note 27's example ROM code (family 02, serial 00000001B81C): CRC A2.
    assert crc8(bytes((0x02, 0x1C, 0xB8, 0x01, 0x00, 0x00, 0x00))) == 0xA2
    assert crc8(b"123456789") == 0xA1  # CRC-8/MAXIM-DOW's check value in the CRC catalogue
    assert crc8_by_division(b"123456789") == 0xA1  # the independent computation agrees...
    for data in (b"\x28\xff\x4c\x8a\x11\x16\x04", bytes(DS18B20.POWER_ON), b"\x00", b"\xff" * 8):
        assert crc8(data) == crc8_by_division(data), data  # ...on other data too
        assert crc8(data + bytes((crc8(data),))) == 0  # data followed by its CRC: 0


def test_the_probe_answers_rom_commands_and_scan():
    import onewire
    from machine import Pin

    chip = new_chip(Field())
    bus = onewire.OneWire(Pin(18))
    assert bus.crc8(chip.ds18b20.rom) == 0 and chip.ds18b20.rom[0] == 0x28  # the DS18B20's family code
    assert bus.scan() == [chip.ds18b20.rom]  # Search ROM
    assert bus.reset() is True
    bus.writebyte(0x33)  # Read ROM
    rom = bytearray(8)
    bus.readinto(rom)
    assert bytes(rom) == chip.ds18b20.rom
    pad = bytearray(9)
    bus.select_rom(chip.ds18b20.rom)  # Match ROM, its own code: it listens
    bus.writebyte(0xBE)
    bus.readinto(pad)
    assert bytes(pad[:2]) == b"\x50\x05" and bus.crc8(pad) == 0  # 85.0 C: nothing converted since power-on
    bus.select_rom(b"\x28" + bytes(7))  # another probe's code: it stays silent
    bus.writebyte(0xBE)
    bus.readinto(pad)
    assert bytes(pad) == b"\xff" * 9
    nothing = onewire.OneWire(Pin(14))  # no device on that pin: the pull-up alone
    assert nothing.reset() is False and nothing.readbyte() == 0xFF and nothing.scan() == []
    raises(onewire.OneWireError, nothing.reset, True)  # required=True


def test_a_conversion_takes_750_ms_and_read_slots_say_when_it_is_done():
    import onewire
    from machine import Pin

    chip = new_chip(Field())
    chip.field.set("soil_temp", -10.125)
    bus = onewire.OneWire(Pin(18))
    bus.reset()
    bus.write(b"\xcc\x44")  # Skip ROM, Convert T
    started = ticks_ms()
    assert bus.readbit() == 0  # converting
    while not bus.readbit():
        sleep_ms(20)
    took = ticks_diff(ticks_ms(), started)
    assert 740 <= took <= 1000, took
    bus.reset()
    bus.write(b"\xcc\xbe")
    pad = bytearray(9)
    bus.readinto(pad)
    raw = pad[0] | pad[1] << 8
    assert bus.crc8(pad) == 0 and raw - 0x10000 == -162  # -10.125 C, two's complement in 1/16 C
    assert chip.ds18b20.commands == [0xCC, 0x44, 0xCC, 0xBE]


# --- the firmware's driver ---

def test_soil_temperature_is_read_through_the_protocol():
    chip, reader = node(ONLY_SOIL_TEMP, soil_temp=18.3)
    values, errors = reader.read()
    assert errors == {} and values["soil_temp"] == 18.3, (values, errors)
    # Skip ROM + Convert T, Skip ROM + Read Scratchpad, then the next pass's conversion
    assert chip.ds18b20.commands == [0xCC, 0x44, 0xCC, 0xBE, 0xCC, 0x44]
    chip.field.set("soil_temp", -7.4)
    sleep_ms(800)
    assert reader.read()[0]["soil_temp"] == 18.3  # the conversion the pass before started
    sleep_ms(800)
    assert reader.read()[0]["soil_temp"] == -7.4  # below zero: two's complement


def test_the_conversion_is_waited_for_by_yielding_never_by_holding_the_loop():
    chip, reader = node(ONLY_SOIL_TEMP, soil_temp=21.0)
    longest = 0
    yields = 0
    steps = reader.pass_steps()
    started = ticks_ms()
    try:
        while True:
            before = ticks_ms()
            next(steps)
            longest = max(longest, ticks_diff(ticks_ms(), before))
            yields += 1
            sleep_ms(2)  # what the loop does between steps: serve the network
    except StopIteration as done:
        values = done.value[0]
    took = ticks_diff(ticks_ms(), started)
    assert values["soil_temp"] == 21.0
    assert took >= 750 and yields > 50 and longest < 150, (took, yields, longest)  # waited, in short steps
    # The next conversion runs between passes: a pass an interval later does not wait...
    sleep_ms(800)
    chip.field.set("soil_temp", 22.5)
    started = ticks_ms()
    values, errors = reader.read()
    assert values["soil_temp"] == 21.0 and ticks_diff(ticks_ms(), started) < 300
    # ...nor does one asked for at once (a read command): the last value stands meanwhile.
    conversions = chip.ds18b20.commands.count(0x44)
    started = ticks_ms()
    values, errors = reader.read()
    assert values["soil_temp"] == 21.0 and errors == {} and ticks_diff(ticks_ms(), started) < 300
    assert chip.ds18b20.commands.count(0x44) == conversions  # the one in flight goes on
    sleep_ms(800)
    assert reader.read()[0]["soil_temp"] == 22.5


def test_faults_give_null_and_a_reason_never_a_number():
    for fault, reason in (("crc", "crc"), ("unplugged", "unplugged"), ("timeout", "unplugged")):
        chip, reader = node(soil_temp=18.0)
        chip.field.fault("soil_temp", fault)
        values, errors = reader.read()
        assert values["soil_temp"] is None and errors["soil_temp"] == reason, (fault, values, errors)
        assert values["ec"] is not None and values["temp"] is not None  # the others still read
    # A fault after a good reading: the next pass, even at once, has no value to give.
    chip, reader = node(ONLY_SOIL_TEMP, soil_temp=18.0)
    assert reader.read()[0]["soil_temp"] == 18.0
    chip.field.fault("soil_temp", "crc")
    sleep_ms(800)
    values, errors = reader.read()
    assert values["soil_temp"] is None and errors == {"soil_temp": "crc"}
    values, errors = reader.read()
    assert values["soil_temp"] is None and errors == {"soil_temp": "crc"}


def test_a_probe_that_lost_power_or_a_line_held_low_is_not_a_reading():
    for mode, reason in (("brownout", "reset"), ("shorted", "frame")):
        chip, reader = node(ONLY_SOIL_TEMP, soil_temp=18.0)
        chip.ds18b20.mode = mode
        values, errors = reader.read()
        assert values["soil_temp"] is None and errors["soil_temp"] == reason, (mode, values, errors)
    chip, reader = node(ONLY_SOIL_TEMP, soil_temp=85.0)  # a real 85.0 C is refused with the power-on value
    assert reader.read()[1]["soil_temp"] == "reset"
    chip, reader = node(ONLY_SOIL_TEMP, soil_temp=140.0)
    assert reader.read()[1]["soil_temp"] == "range"


def test_a_fault_from_the_field_file_reaches_the_probe():
    path = tmpdir() + "/field.json"
    write_text(path, '{"faults": {"soil_temp": "crc"}}')
    chip = new_chip(Field(steer_path=path))
    assert chip.field.fault_of("soil_temp") == "crc"


def test_the_pin_is_checked_like_the_others():
    cfg = config.apply(config.defaults(), {})
    assert cfg["sensors"]["soil_temp"] == {"enabled": True, "pin": 18}
    err = raises(config.ConfigError, config.apply, config.defaults(), {"sensors": {"soil_temp": {"pin": 35}}})
    assert err.problems == [("sensors.soil_temp.pin", "GPIO 35 is input-only (34-39 cannot drive an output)")]
    err = raises(config.ConfigError, config.apply, config.defaults(), {"sensors": {"soil_temp": {"pin": 4}}})
    assert ("sensors.soil_temp.pin", "GPIO 4 is also used by sensors.dht.pin") in err.problems, err.problems
    moved = config.apply(config.defaults(), {"sensors": {"soil_temp": {"pin": 13}}})
    assert moved["sensors"]["soil_temp"]["pin"] == 13


# --- compensation ---

def test_ec_comes_back_within_3_percent_whatever_the_air_temperature():
    # The case (air 31.5 C, the soil cooler), the reverse, and the extremes.
    for air, soil in ((31.5, 18.0), (8.0, 30.0), (40.0, 5.0), (-5.0, 35.0), (25.0, 25.0)):
        _, reader = node(ec=2.35, temp=air, soil_temp=soil)
        values, errors = reader.read()
        assert errors == {} and values["soil_temp"] == soil, (air, soil, values, errors)
        assert within(values["ec"], 2.35, 0.03), (air, soil, values["ec"])
        assert reader.temp_source == "soil_temp"


def test_ph_slope_is_scaled_with_the_soil_temperature():
    # pH 4 in soil at 10 C under air at 35 C: the air's temperature would read 4.24.
    _, reader = node(ph=4.0, temp=35.0, soil_temp=10.0)
    assert abs(reader.read()[0]["ph"] - 4.0) <= 0.03
    _, reader = node(ph=9.5, temp=5.0, soil_temp=32.0)
    assert abs(reader.read()[0]["ph"] - 9.5) <= 0.03


def test_without_a_soil_temperature_the_air_is_used_and_said():
    # A failed probe (crc) or none fitted: compensated with the air's temperature.
    for patch, faults in ((None, {"soil_temp": "crc"}), ({"sensors": {"soil_temp": {"enabled": False}}}, None)):
        _, reader = node(patch, faults, ec=2.35, temp=31.5, soil_temp=31.5)
        values, errors = reader.read()
        assert values["soil_temp"] is None and within(values["ec"], 2.35, 0.03), values
        assert reader.temp_source == "temp"
    # ...and when the soil is not at the air's temperature, the fallback shows its error.
    _, reader = node(None, {"soil_temp": "unplugged"}, ec=2.35, temp=31.5, soil_temp=18.0)
    values, errors = reader.read()
    assert errors == {"soil_temp": "unplugged"} and not within(values["ec"], 2.35, 0.1), values
    # Neither: no compensation at all (as at 25 C).
    _, reader = node(None, {"soil_temp": "unplugged", "dht": "timeout"}, ec=2.35, temp=31.5, soil_temp=25.0)
    values, errors = reader.read()
    assert within(values["ec"], 2.35, 0.03) and reader.temp_source == ""


def test_telemetry_says_which_temperature_compensated():
    from nodekit import make_node

    # the DHT read every 2 s (not the default 30 s): its failure shows in the next pass
    chip, node_ = make_node({"sensors": dict(NO_WIND["sensors"], dht={"interval_s": 2})})
    chip.field.set("soil_temp", 18.0)
    chip.field.set("temp", 31.5)
    chip.field.set("ec", 2.35)
    node_.read_now()
    readings = _next_reading(node_)
    assert readings["sensors"]["soil_temp"] == 18.0 and within(readings["sensors"]["ec"], 2.35, 0.03)
    assert "temp_comp" not in readings["meta"]  # the soil's: the usual case says nothing
    chip.field.fault("soil_temp", "crc")
    sleep_ms(800)  # the conversion started after the first reading is done
    node_.read_now()
    readings = _next_reading(node_)
    assert readings["sensors"]["soil_temp"] is None and readings["errors"]["soil_temp"] == "crc"
    assert readings["meta"]["temp_comp"] == "air"
    assert node_.relays.states() == {"irrigation": 0, "fertigation": 0} and node_.loop_errors == 0
    chip.field.fault("dht", "timeout")
    sleep_ms(2100)  # the DHT is asked at most every dht.interval_s: until then its last values stand
    node_.read_now()
    assert _next_reading(node_)["meta"]["temp_comp"] == "none"
    chip.close()


def _next_reading(node_):
    telemetry = node_.link.session.on("farm/n1/telemetry")
    taken = len(telemetry)
    started = ticks_ms()
    while len(node_.link.session.on("farm/n1/telemetry")) == taken and ticks_diff(ticks_ms(), started) < 5000:
        node_.step()
    readings = node_.link.session.on("farm/n1/telemetry")
    assert len(readings) > taken, "no reading"
    return readings[-1]
