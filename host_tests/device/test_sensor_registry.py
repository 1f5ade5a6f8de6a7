# firmware/sensors: each sensor's module owns its keys, settings and rules, and the
# registry's tables agree with them.
from firmware import sensors, schema


def test_the_registry_lists_every_module_and_their_keys():
    keys = []
    for name, _ in sensors.SENSORS:
        module = sensors.module(name)
        assert module.NAME == name
        assert len(module.UNITS) == len(module.KEYS) == len(module.DECIMALS)
        keys.extend(module.KEYS)
    # wind_gust is sent only when measured, the battery's only when fitted; every other
    # key is in every reading
    assert list(sensors.KEYS) == [key for key in keys if key not in sensors.OPTIONAL_KEYS]
    assert sorted(sensors.OPTIONAL_KEYS) == sorted(set(keys) - set(sensors.KEYS))


def test_every_rule_names_a_setting_and_is_a_rule_schema_knows():
    for name, _ in sensors.SENSORS:
        module = sensors.module(name)
        settings = dict(module.SETTINGS)
        assert settings["enabled"] is (name != "battery")  # a battery is an option
        for key, rule in module.RULES:
            assert key in settings, (name, key)
            assert schema.rule_check(rule, settings[key]) is None, (name, key)  # the default obeys it
    for key, rule in schema.RULES:
        assert type(rule) is str or len(rule) >= 2, key


def test_a_rule_is_a_range_a_choice_or_a_named_check():
    assert schema.rule_check((1, 64), 65) == "must be between 1 and 64, got 65"
    assert schema.rule_check((2400, 4800, 9600), 4800) is None
    assert "must be one of adc, i2c" in schema.rule_check(("adc", "i2c"), "spi")
    assert "input-only" in schema.rule_check("gpio_out", 35)
    assert "ADC1" in schema.rule_check("adc1", 4)


def test_an_unknown_sensor_is_refused():
    try:
        sensors.module("sonar")
    except ValueError as exc:
        assert "sonar" in str(exc)
    else:
        raise AssertionError("no error")
