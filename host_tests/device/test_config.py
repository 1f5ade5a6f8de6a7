# firmware.config on both interpreters: defaults, files, validation, atomic save.
import json
import os

from atomicfile import write_atomic
from firmware import config
from testkit import exists, raises, read_text, tmpdir, write_text


def _write_json(root, name, data):
    write_text(root + "/" + name, json.dumps(data))


def _read_json(root, name):
    return json.loads(read_text(root + "/" + name))


def test_no_files_gives_defaults_and_no_problems():
    cfg, problems = config.load(tmpdir())
    assert problems == []
    assert cfg == config.defaults()


def test_config_and_secrets_are_laid_over_defaults():
    root = tmpdir()
    _write_json(root, "config.json", {"interval_s": 30, "mqtt": {"prefix": "field7"}})
    _write_json(root, "secrets.json", {"wifi": {"ssid": "barn", "password": "hay"},
                                       "mqtt": {"host": "10.0.0.2", "password": "pw"}})
    cfg, problems = config.load(root)
    assert problems == []
    assert cfg["interval_s"] == 30
    assert cfg["mqtt"]["prefix"] == "field7"
    assert cfg["mqtt"]["host"] == "10.0.0.2" and cfg["mqtt"]["port"] == 1883
    assert cfg["wifi"] == {"ssid": "barn", "password": "hay", "networks": []}


def test_validation_names_key_and_reason():
    cfg = config.merge(config.defaults(), None)
    cfg["mqtt"]["port"] = 70000
    err = raises(config.ConfigError, config.validate, cfg)
    assert err.key == "mqtt.port"
    assert "between 1 and 65535" in err.reason and "70000" in err.reason
    assert "mqtt.port" in str(err)


def test_wrong_type_unknown_key_and_bad_choice_are_all_reported():
    problems = config.check(config.merge(config.defaults(), {
        "interval_s": "60", "colour": "red", "profile": "acme", "failsafe_s": True}))
    found = dict(problems)
    assert found["interval_s"] == "must be an integer, got a string"
    assert found["colour"] == "unknown key"
    assert "must be one of" in found["profile"] and "acme" in found["profile"]
    assert found["failsafe_s"] == "must be an integer, got true or false"


def test_dht_interval_is_at_least_what_the_sensor_type_allows():
    assert config.defaults()["sensors"]["dht"]["interval_s"] == 30

    def problems(spec):
        return dict(config.check(config.merge(config.defaults(), {"sensors": {"dht": spec}})))

    assert problems({"interval_s": 2}) == {} and problems({"type": "DHT11", "interval_s": 1}) == {}
    assert problems({"interval_s": 1}) == {"sensors.dht.interval_s": "must be at least 2: a DHT22 answers at most every 2 s"}
    assert "between 1 and 3600" in problems({"type": "DHT11", "interval_s": 0})["sensors.dht.interval_s"]
    assert "between 1 and 3600" in problems({"interval_s": 3601})["sensors.dht.interval_s"]
    assert problems({"interval_s": 2.5})["sensors.dht.interval_s"] == "must be an integer, got a number"


def test_float_setting_accepts_an_integer():
    cfg = config.apply(config.defaults(), {"sensors": {"wind": {"kmh_per_hz": 3}}})
    assert cfg["sensors"]["wind"]["kmh_per_hz"] == 3


def test_esp32_pin_rules():
    def reason(patch):
        return dict(config.check(config.merge(config.defaults(), patch)))

    assert "input-only" in reason({"relays": {"irrigation": {"pin": 35}}})["relays.irrigation.pin"]
    assert "does not exist" in reason({"relays": {"irrigation": {"pin": 24}}})["relays.irrigation.pin"]
    assert "SPI flash" in reason({"relays": {"irrigation": {"pin": 6}}})["relays.irrigation.pin"]
    assert "ADC1" in reason({"sensors": {"soil": {"pin": 4}}})["sensors.soil.pin"]
    assert "pull-up" in reason({"sensors": {"wind": {"pin": 39}}})["sensors.wind.pin"]


def test_one_pin_used_twice_names_both_uses():
    found = dict(config.check(config.merge(config.defaults(), {"sensors": {"wind": {"pin": 26}}})))
    assert "relays.irrigation.pin" in found["sensors.wind.pin"]
    assert "sensors.wind.pin" in found["relays.irrigation.pin"]


def test_disabled_sensor_frees_its_pin():
    cfg = config.apply(config.defaults(), {"sensors": {"wind": {"enabled": False, "pin": 26}}})
    assert cfg["sensors"]["wind"]["pin"] == 26


def test_relays_are_named_by_the_user_and_filled_from_template():
    err = raises(config.ConfigError, config.apply, config.defaults(), {"relays": {"fertigation": None}})
    assert err.key == "interlocks.spray_drift.relay"  # its interlocks would point at nothing
    cfg = config.apply(config.defaults(), {"relays": {"mister": {"pin": 13}, "fertigation": None},
                                  "interlocks": {"spray_drift": None, "nutrient_lockout": None}})
    assert sorted(cfg["relays"]) == ["irrigation", "mister"] and cfg["interlocks"] == {}
    assert cfg["relays"]["mister"] == {"pin": 13, "active_low": False, "max_on_s": 600,
                                       "pump_id": 0, "flow_ml_s": 0.0}
    err = raises(config.ConfigError, config.apply, config.defaults(), {"relays": {"bad/name": {"pin": 13}}})
    assert err.key == "relays.bad/name"
    err = raises(config.ConfigError, config.apply, config.defaults(), {"relays": {"x": 5}})
    assert err.key == "relays.x" and "object" in err.reason


def test_apply_refuses_whole_patch_and_leaves_old_config():
    old = config.merge(config.defaults(), None)
    err = raises(config.ConfigError, config.apply, old, {"interval_s": 10, "mqtt": {"port": 0}})
    assert err.key == "mqtt.port"
    assert old == config.defaults()  # nothing applied, not even the good key
    assert raises(config.ConfigError, config.apply, old, [1, 2]).key == "config"


def test_bad_key_in_file_keeps_default_and_is_reported():
    root = tmpdir()
    _write_json(root, "config.json", {"interval_s": 0, "farm_id": "farm_7"})
    cfg, problems = config.load(root)
    assert cfg["interval_s"] == config.defaults()["interval_s"]
    assert cfg["farm_id"] == "farm_7"  # the good key still applies
    assert len(problems) == 1 and problems[0][0] == "interval_s"
    assert "config.json" in problems[0][1]


def test_unreadable_file_is_ignored_reported_and_left_alone():
    root = tmpdir()
    write_text(root + "/config.json", '{"interval_s": 30,')
    write_text(root + "/secrets.json", '["not", "an", "object"]')
    cfg, problems = config.load(root)
    assert cfg == config.defaults()
    keys = [key for key, _ in problems]
    assert keys == [root + "/config.json", root + "/secrets.json"]
    assert read_text(root + "/config.json") == '{"interval_s": 30,'  # kept for the technician


def test_save_writes_only_differences_and_secrets_apart():
    root = tmpdir()
    cfg = config.apply(config.defaults(), {"interval_s": 15, "wifi": {"ssid": "barn", "password": "hay"},
                                  "mqtt": {"host": "broker.local", "prefix": "f2"}})
    config.save(cfg, root)
    assert _read_json(root, "config.json") == {"interval_s": 15, "mqtt": {"prefix": "f2"}}
    assert _read_json(root, "secrets.json") == {"wifi": {"ssid": "barn", "password": "hay"},
                                                "mqtt": {"host": "broker.local"}}
    loaded, problems = config.load(root)
    assert problems == [] and loaded == cfg


def test_a_removed_default_entry_stays_removed_after_a_restart():
    root = tmpdir()
    cfg = config.apply(config.defaults(), {"alerts": {"frost": None}, "interlocks": {"spray_drift": None},
                                  "relays": {"pump3": {"pin": 32}}})
    config.save(cfg, root)
    loaded, problems = config.load(root)
    assert problems == [] and loaded == cfg
    assert "frost" not in loaded["alerts"] and "spray_drift" not in loaded["interlocks"]
    assert sorted(loaded["relays"]) == ["fertigation", "irrigation", "pump3"]


def test_save_refuses_invalid_config_and_writes_nothing():
    root = tmpdir()
    cfg = config.merge(config.defaults(), {"interval_s": -1})
    raises(config.ConfigError, config.save, cfg, root)
    assert not exists(root + "/config.json")


def test_unchanged_save_does_not_rewrite_the_file():
    root = tmpdir()
    cfg = config.apply(config.defaults(), {"interval_s": 15})
    config.save(cfg, root)
    write_text(root + "/config.json", '{"interval_s":15}')  # same content, other spelling
    config.save(cfg, root)
    assert read_text(root + "/config.json") == '{"interval_s":15}'


def _torn_writer(text, fail_after):
    # Yields the first fail_after characters, then "loses power".
    yield text[:fail_after]
    raise OSError(5, "power lost")


def test_interrupted_save_leaves_old_file_intact():
    root = tmpdir()
    config.save(config.apply(config.defaults(), {"interval_s": 15}), root)
    before = read_text(root + "/config.json")
    raises(OSError, write_atomic, root + "/config.json", _torn_writer('{"interval_s": 99}', 7))
    assert read_text(root + "/config.json") == before
    assert not exists(root + "/config.json.tmp")
    cfg, problems = config.load(root)
    assert problems == [] and cfg["interval_s"] == 15


def test_reset_in_the_middle_of_a_save_keeps_old_config():
    # A reset leaves the torn temporary file behind: load must ignore it.
    root = tmpdir()
    config.save(config.apply(config.defaults(), {"interval_s": 15}), root)
    write_text(root + "/config.json.tmp", '{"interval_s": 9')
    cfg, problems = config.load(root)
    assert problems == [] and cfg["interval_s"] == 15
    assert not exists(root + "/config.json.tmp")
    config.save(config.apply(cfg, {"interval_s": 20}), root)
    assert config.load(root)[0]["interval_s"] == 20


def test_reset_between_remove_and_rename_recovers_the_new_file():
    # On FAT the old file is removed before the rename; a reset there leaves only the new one.
    root = tmpdir()
    write_text(root + "/config.json.tmp", json.dumps({"interval_s": 42}))
    cfg, problems = config.load(root)
    assert problems == [] and cfg["interval_s"] == 42
    assert exists(root + "/config.json") and not exists(root + "/config.json.tmp")


def test_reset_keeps_wifi_and_broker_secrets():
    cfg = config.apply(config.defaults(), {"interval_s": 15, "farm_id": "f1",
                                  "wifi": {"ssid": "barn", "password": "hay"},
                                  "mqtt": {"host": "b", "user": "u", "password": "p", "prefix": "x"}})
    fresh = config.reset(cfg)
    assert fresh["interval_s"] == config.defaults()["interval_s"] and fresh["farm_id"] == ""
    assert fresh["mqtt"]["prefix"] == "farm"
    assert fresh["wifi"] == {"ssid": "barn", "password": "hay", "networks": []}
    assert (fresh["mqtt"]["host"], fresh["mqtt"]["user"], fresh["mqtt"]["password"]) == ("b", "u", "p")


def test_public_copy_has_no_passwords():
    cfg = config.apply(config.defaults(), {"wifi": {"ssid": "barn", "password": "hay"},
                                  "mqtt": {"password": "pw"}})
    shown = config.public(cfg)
    assert "password" not in shown["wifi"] and "password" not in shown["mqtt"]
    assert shown["wifi"]["ssid"] == "barn"
    assert cfg["wifi"]["password"] == "hay"  # the original is untouched
    assert "hay" not in json.dumps(shown) and "pw" not in json.dumps(shown)


def test_root_path_forms():
    root = tmpdir()
    config.save(config.apply(config.defaults(), {"interval_s": 5}), root + "/")
    assert exists(root + "/config.json")
    here = os.getcwd()
    os.chdir(root)
    try:
        assert config.load()[0]["interval_s"] == 5  # the device's default: current folder
    finally:
        os.chdir(here)


def test_interlocks_and_relay_groups_are_checked():
    cfg = config.apply(config.defaults(), {"relay_groups": {"one_pump": ["irrigation", "fertigation"]},
                                  "interlocks": {"frost": {"relay": "irrigation", "sensor": "temp",
                                                           "min": 2, "max": 60}}})
    assert cfg["relay_groups"]["one_pump"] == ["irrigation", "fertigation"]
    assert cfg["interlocks"]["frost"]["min"] == 2
    found = dict(config.check(config.merge(config.defaults(), {
        "relay_groups": {"g": ["irrigation", "sprinkler"], "h": "irrigation"},
        "interlocks": {"x": {"relay": "irrigation", "sensor": "radiation"}}})))
    assert "must be a list" in found["relay_groups.h"] or "a list" in found["relay_groups.h"]
    assert "radiation" in found["interlocks.x.sensor"]
    found = dict(config.check(config.merge(config.defaults(), {
        "relay_groups": {"g": ["irrigation", "sprinkler"]},
        "interlocks": {"y": {"relay": "valve", "sensor": "ph", "min": 8, "max": 6}}})))
    assert "sprinkler" in found["relay_groups.g"] and "valve" in found["interlocks.y.relay"]
    assert found["interlocks.y.min"] == "must not be above max"


def test_wifi_may_list_several_networks_kept_as_secrets_and_never_shown():
    root = tmpdir()
    networks = [{"ssid": "barn", "password": "barn-pass"}, {"ssid": "shed", "password": ""}]
    _write_json(root, "secrets.json", {"wifi": networks})  # the list alone: networks
    cfg, problems = config.load(root)
    assert problems == [] and cfg["wifi"] == {"ssid": "", "password": "", "networks": networks}
    config.save(config.apply(cfg, {"interval_s": 30}), root)
    assert _read_json(root, "secrets.json")["wifi"] == {"networks": networks}
    assert "wifi" not in _read_json(root, "config.json")
    assert config.load(root)[0]["wifi"]["networks"] == networks
    assert "networks" not in config.public(cfg)["wifi"]  # get_config leaves them out, as passwords


def test_bad_wifi_networks_are_refused_with_the_reason():
    base = config.defaults()
    cases = [
        ([{"ssid": "", "password": ""}], "ssid: the network's name, 1 to 32 characters"),
        ([{"ssid": "x" * 33, "password": ""}], "1 to 32 characters"),
        ([{"ssid": "barn", "password": "short"}], "password of barn: 8 to 64 characters"),
        ([{"ssid": "barn"}], '{"ssid": ..., "password": ...}'),
        (["barn"], '{"ssid": ..., "password": ...}'),
        ([{"ssid": "n%d" % i, "password": ""} for i in range(9)], "at most 8 networks"),
    ]
    for networks, reason in cases:
        try:
            config.apply(base, {"wifi": networks})
            raise AssertionError("accepted: %r" % networks)
        except config.ConfigError as exc:
            assert exc.problems == [("wifi.networks", reason)] or reason in exc.problems[0][1], exc.problems
            assert "short" not in str(exc.problems)  # a password is never echoed
