# Remote config, reset_config, calibration, trims and alerts through the real node on
# the stubs (the broker switch with its way back is tested through mosquitto in
# host_tests/host/test_remote_config_mqtt.py).
import json
from binascii import unhexlify

from fieldmodel import Field
from firmware import config, messages
from firmware.alerts import Alerts
from firmware.signing import sign
from nodekit import calm, make_node, send
from testkit import read_text, write_text
from ticks import ticks_add, ticks_diff, ticks_ms


def config_command(node, patch, command_id=None):
    message = {"command": "config", "parameters": patch}
    if command_id:
        message["command_id"] = command_id
    return send(node, message)


def saved(node):
    return json.loads(read_text(node.root + "/config.json"))


def test_a_live_config_change_is_applied_and_saved_at_once():
    chip, node = make_node()
    answer = config_command(node, {"interval_s": 30, "relays": {"irrigation": {"max_on_s": 120}},
                                   "interlocks": {"spray_drift": {"max": 15.0}}})
    assert answer["success"] is True, answer
    assert sorted(answer["response"]["changed"]) == ["interlocks.spray_drift.max", "interval_s",
                                                     "relays.irrigation.max_on_s"]
    assert node.interval_ms == 30000 and node.relays.relays["irrigation"].max_on_s == 120
    assert node.relays.interlocks["spray_drift"]["max"] == 15.0
    assert saved(node)["interval_s"] == 30 and config.load(node.root)[0]["relays"]["irrigation"]["max_on_s"] == 120
    on = send(node, {"command": "relay", "parameters": {"relay": "irrigation", "state": "on", "duration_s": 600}})
    assert on["response"]["off_in_s"] == 120  # the new limit holds at once
    node.relays.observe({"wind_speed": 17.0, "ph": 6.5})
    refused = send(node, {"command": "relay", "parameters": {"relay": "fertigation", "state": "on"}})
    assert refused["success"] is False and "spray_drift" in refused["error"]


def test_a_link_change_that_cannot_even_start_leaves_the_node_on_its_link_and_says_so():
    import sys

    chip, node = make_node({"interval_s": 30})
    old_link, old_cfg = node.link, node.cfg

    def no_heap(cfg, queue=None):
        raise MemoryError("memory allocation failed, allocating 2048 bytes")

    node.new_link = no_heap  # the second link's buffers do not fit
    answer = config_command(node, {"mqtt": {"port": 1884}, "interval_s": 45})
    assert answer["success"] is True and answer["response"]["reconnect"] is True, answer
    for _ in range(3):
        node.step()  # tried once, not on every turn
    assert node.link is old_link and node.cfg is old_cfg and node.interval_ms == 30000
    assert node._trial is None and not node.link_change_pending()
    alerts = node.link.session.on("farm/n1/alert")
    assert len(alerts) == 1 and alerts[0]["severity"] == "warning" and alerts[0]["rule"] == "config", alerts
    assert "could not be tried (MemoryError" in alerts[0]["message"] and "back on the old config" in alerts[0]["message"]
    assert "firmware.link_trial" not in sys.modules and "firmware.schema" not in sys.modules
    assert config.load(node.root)[0]["mqtt"]["port"] == 1883  # nothing saved


def test_going_back_from_a_link_that_failed_happens_once_even_if_an_error_cuts_it_short():
    chip, node = make_node({"mqtt": {"fallback_s": 5}})
    old_link = node.link
    notices = []

    def notice_once_failing(node, severity, rule, message):
        notices.append(message)
        if len(notices) == 1:
            raise MemoryError("memory allocation failed, allocating 104 bytes")

    notice = messages.notice
    messages.notice = notice_once_failing
    try:
        node.on_message(b"farm/n1/commands",
                        json.dumps({"command": "config", "parameters": {"mqtt": {"port": 1}}}).encode())
        answer = old_link.session.on("farm/n1/command_response")[-1]  # nothing listens on port 1
        assert answer["success"] is True and answer["response"]["reconnect"] is True, answer
        started = ticks_ms()
        errors = 0
        while (node.link_change_pending() or node.link is not old_link) and ticks_diff(ticks_ms(), started) < 8000:
            try:
                node.step()
            except MemoryError:
                errors += 1  # the loop logs it and goes on (Node.run)
    finally:
        messages.notice = notice
    assert errors == 1 and node.link is old_link and not node.link_change_pending()
    assert len(notices) == 1 and "back on the old config" in notices[0]  # not a second time
    assert node.cfg["mqtt"]["port"] == 1883


def test_a_bad_config_is_refused_whole_with_every_key_and_reason_and_nothing_changes():
    chip, node = make_node()
    config_command(node, {"interval_s": 45})
    before = read_text(node.root + "/config.json")
    answer = config_command(node, {"interval_s": 20, "failsafe_s": 1, "relays": {"irrigation": {"pin": 35}},
                                   "sensors": {"ph": {"slope_mv": "steep"}}, "colour": "red"})
    assert answer["success"] is False
    for key, reason in (("failsafe_s", "must be between 10 and 86400"), ("relays.irrigation.pin", "input-only"),
                        ("sensors.ph.slope_mv", "must be a number"), ("colour", "unknown key")):
        assert key + ": " in answer["error"] and reason in answer["error"], answer["error"]
    assert node.cfg["interval_s"] == 45 and node.interval_ms == 45000  # the valid part was not applied
    assert read_text(node.root + "/config.json") == before
    assert not chip.relay_on("irrigation")
    for bad in (b'{"command": "config", "parameters": [1, 2]}', b'{"command": "config", "parameters": "x"}',
                b'{"command": "config", "parameters": {"interval_s": 2.5}}',
                b'{"command": "config", "parameters": {"alerts": {"ph": {"min": NaN}}}}',
                b'{"command": "config", "parameters": {"config": 7}}'):
        answer = send(node, bad)
        assert answer["success"] is False and len(answer["error"]) > 8, (bad, answer)
    assert node.cfg["interval_s"] == 45


def test_config_topic_messages_are_configs_in_both_forms():
    _, node = make_node()
    node.on_message(b"farm/n1/config", b'{"command_id": "cfg-1", "interval_s": 20}')
    answer = node.link.session.on("farm/n1/command_response")[-1]
    assert answer["command"] == "config" and answer["command_id"] == "cfg-1" and answer["success"] is True
    assert node.cfg["interval_s"] == 20


def test_seed_004_config_messages():
    chip, dese = make_node({"profile": "dese", "org_id": "org-123"})
    dese.on_message(b"devices/org-123/n1/config", json.dumps({  # seed 004's own example
        "device_id": "n1", "config": {"telemetry_interval": 30000, "mqtt_keepalive": 60,
                                      "sensor_calibration": {"ph": {"offset": 0.2, "scale": 1.0}},
                                      "alert_thresholds": {"ph": {"min": 6.0, "max": 7.2},
                                                           "temperature": {"max": 40.0}}},
        "timestamp": "2025-01-27T10:00:00Z"}).encode())
    answer = dese.link.session.on("devices/org-123/n1/command_response")[-1]
    assert answer["success"] is True and "timestamp" in answer, answer
    assert dese.cfg["interval_s"] == 30 and dese.cfg["trims"] == {"ph": {"scale": 1.0, "offset": 0.2}}
    assert dese.cfg["alerts"]["ph"]["min"] == 6.0 and dese.cfg["alerts"]["temp"]["max"] == 40.0
    assert dese.cfg["alerts"]["temp"]["sensor"] == "temp"
    dese.on_message(b"devices/org-123/n1/config", b'{"config": {"telemetry_interval": "fast"}}')
    answer = dese.link.session.on("devices/org-123/n1/command_response")[-1]
    assert answer["success"] is False and "telemetry_interval" in answer["error"]
    dese.on_message(b"devices/org-123/n1/config", b'{"config": {"alert_thresholds": {"chlorine": {"max": 4}}}}')
    answer = dese.link.session.on("devices/org-123/n1/command_response")[-1]
    assert answer["success"] is False and "alerts.chlorine.sensor" in answer["error"]


def test_what_a_change_needs():
    from firmware.config_message import patch_of
    from firmware.reconfig import changed, needs

    base = config.apply(config.defaults(), {})
    cases = [
        ({"interval_s": 5, "sensors": {"ph": {"offset_v": 1.4}}, "alerts": {"ph": None}}, (False, False)),
        ({"mqtt": {"host": "10.0.0.2"}}, (True, False)),
        ({"wifi": {"ssid": "barn"}, "profile": "dese"}, (True, False)),
        ({"relays": {"irrigation": {"pin": 13}}}, (False, True)),
        ({"relays": {"mister": {"pin": 13}}}, (False, True)),
        ({"sensors": {"npk": {"baud": 4800}}, "device_id": "x"}, (True, True)),
        ({"mqtt": {"queue_max": 10}}, (False, True)),
        ({"signing": {"window_s": 300}}, (False, False)),
        ({"sensors": {"dht": {"interval_s": 60}}}, (False, False)),
        ({"sensors": {"dht": {"type": "DHT11"}}}, (False, True)),
        ({"signing": {"key": "4f" * 32}}, (False, True)),
    ]
    for patch, expected in cases:
        assert needs(changed(base, config.apply(base, patch))) == expected, patch
    no_pump = config.apply(base, {"relays": {"fertigation": None},
                                  "interlocks": {"spray_drift": None, "nutrient_lockout": None}})
    assert sorted(changed(base, no_pump)) == ["interlocks.nutrient_lockout", "interlocks.spray_drift",
                                              "relays.fertigation"]
    assert patch_of({"command_id": "a", "timestamp": "t", "interval_s": 5}) == {"interval_s": 5}


def test_a_wiring_change_is_saved_then_the_node_restarts():
    chip, node = make_node()
    answer = config_command(node, {"relays": {"irrigation": {"pin": 13, "active_low": True}}})
    assert answer["success"] is True and answer["response"]["restart"] is True
    assert node.resets == [True]  # after the answer, with the offline status first
    assert config.load(node.root)[0]["relays"]["irrigation"]["pin"] == 13


def test_a_signing_window_applies_at_once_and_revives_no_forgotten_signature():
    key = "4f" * 32
    chip, node = make_node({"signing": {"key": key, "window_s": 60}})
    node.clock.synced = True
    node.uptime_ms = 3600000  # up an hour: what is signed below is of this boot
    clock = [node.clock.unix()]
    node.clock.unix = lambda: clock[0]

    def signed(command, ts=None):
        text = json.dumps(command)
        ts = clock[0] if ts is None else ts
        return {"signed": text, "ts": ts, "sig": sign(unhexlify(key), "n1", "command", ts, text)}

    relay_on = signed({"command": "relay", "parameters": {"relay": "irrigation", "state": "on"}})
    assert send(node, relay_on)["success"] is True
    assert send(node, signed({"command": "relay", "parameters": {"relay": "irrigation", "state": "off"}}))["success"]
    # 90 s on, relay_on is out of the 60 s window; the 32 messages after it (the config last)
    # push it out of the device's memory of 32 signatures.
    clock[0] += 90
    for i in range(30):
        assert send(node, signed({"command": "ping", "parameters": {"n": i}}))["success"] is True
    answer = send(node, signed({"command": "config", "parameters": {"signing": {"window_s": 300}}}))
    assert answer["success"] is True and answer["response"] == {"changed": ["signing.window_s"]}, answer
    assert node.resets == [] and saved(node)["signing"] == {"window_s": 300}
    # Within the new window, but forgotten under the old one: refused, not replayed.
    replay = send(node, relay_on)
    assert replay["success"] is False and "too many signed messages" in replay["error"], replay
    assert not chip.relay_on("irrigation")
    clock[0] += 100
    late = send(node, signed({"command": "ping"}, ts=clock[0] - 90))  # 90 s old: expired under 60 s
    assert late["success"] is True, late
    # A new key is applied by a restart.
    answer = send(node, signed({"command": "config", "parameters": {"signing": {"key": "a5" * 32}}}))
    assert answer["success"] is True and answer["response"]["restart"] is True and node.resets == [True]


def test_reset_config_goes_back_to_defaults_but_keeps_wifi_and_broker_secrets():
    _, node = make_node()
    secrets = {"wifi": {"ssid": "barn", "password": "hay"}, "mqtt": {"host": "10.0.0.9", "password": "pw"}}
    write_text(node.root + "/secrets.json", json.dumps(secrets))
    node.cfg = config.load(node.root)[0]
    config_command(node, {"interval_s": 17, "failsafe_s": 90})
    answer = send(node, {"command": "reset_config"})
    assert answer["success"] is True and node.resets == [True]
    cfg, problems = config.load(node.root)
    assert problems == [] and cfg["interval_s"] == config.defaults()["interval_s"] and cfg["failsafe_s"] == 300
    assert cfg["wifi"] == dict(secrets["wifi"], networks=[]) and cfg["mqtt"]["host"] == "10.0.0.9" and cfg["mqtt"]["password"] == "pw"


def test_moisture_calibration_measures_dry_and_wet_and_persists():
    field = Field()
    chip, node = make_node(field=field)
    field.set("moisture", 0.0)
    dry = send(node, {"command": "calibrate", "parameters": {"sensor": "moisture", "point": "dry"}})
    field.set("moisture", 100.0)
    wet = send(node, {"command": "calibrate_sensor", "parameters": {"sensor": "moisture", "point": "wet"}})
    assert dry["success"] and wet["success"], (dry, wet)
    assert abs(dry["response"]["dry"] - 3200) < 30 and abs(wet["response"]["wet"] - 1300) < 30
    assert config.load(node.root)[0]["sensors"]["soil"]["dry"] == dry["response"]["dry"]
    field.set("moisture", 40.0)
    assert abs(node.reader.read()[0]["moisture"] - 40.0) < 1.5
    field.fault("soil", "unplugged")
    refused = send(node, {"command": "calibrate", "parameters": {"sensor": "moisture", "point": "dry"}})
    assert refused["success"] is False and "not connected" in refused["error"]
    assert config.load(node.root)[0]["sensors"]["soil"]["dry"] == dry["response"]["dry"]


def test_ph_calibration_with_three_buffers_corrects_a_wrong_probe_calibration():
    field = Field()
    field.set("soil_temp", 25.0)
    _, node = make_node({"sensors": {"ph": {"slope_mv": -50.0, "offset_v": 1.62}}}, field=field)
    field.set("ph", 6.0)
    assert abs(node.reader.read()[0]["ph"] - 6.0) > 0.3  # miscalibrated
    answers = []
    for point, ph in (("mid", 7.0), ("low", 4.0), ("high", 10.0)):
        field.set("ph", ph)
        answers.append(send(node, {"command": "calibrate", "parameters": {"sensor": "ph", "point": point,
                                                                          "temp_c": 25}}))
    assert all(a["success"] for a in answers), answers
    assert answers[0]["response"]["points"] == 1 and "offset_v" in answers[0]["response"]
    assert 97 <= answers[2]["response"]["efficiency_pct"] <= 103
    field.set("ph", 6.0)
    assert abs(node.reader.read()[0]["ph"] - 6.0) < 0.05
    stored = config.load(node.root)[0]["sensors"]["ph"]
    assert abs(stored["slope_mv"] + 59.16) < 1.0 and abs(stored["offset_v"] - 1.5) < 0.01
    field.set("ph", 7.0)  # a low buffer that is really a mid one: the slope is refused
    bad = send(node, {"command": "calibrate", "parameters": {"sensor": "ph", "point": "low", "temp_c": 25}})
    assert bad["success"] is False and "slope" in bad["error"]
    assert config.load(node.root)[0]["sensors"]["ph"] == stored
    cleared = send(node, {"command": "calibrate", "parameters": {"sensor": "ph", "point": "clear"}})
    assert cleared["success"] and config.load(node.root)[0]["sensors"]["ph"]["offset_v"] == 1.5


def test_ec_single_point_calibration():
    field = Field()
    field.set("soil_temp", 25.0)
    field.set("temp", 25.0)  # the air temperature compensates the reading
    _, node = make_node({"sensors": {"ec": {"k": 3.1}}}, field=field)
    field.set("ec", 1.413)
    answer = send(node, {"command": "calibrate", "parameters": {"sensor": "ec", "point": "one", "value": 1.413,
                                                                "temp_c": 25}})
    assert answer["success"] is True and abs(answer["response"]["k"] - 2.0) < 0.05, answer
    field.set("ec", 2.5)
    assert abs(node.reader.read()[0]["ec"] - 2.5) < 0.05


def test_calibrate_refuses_bad_requests_with_reasons():
    _, node = make_node({"sensors": {"wind": {"enabled": False}}})
    for params, reason in (({"sensor": "wind"}, "'sensor' must be"), ({"sensor": "ph", "point": "middle"}, "mid, low"),
                           ({"sensor": "ec", "point": "one"}, "'value'"), ({"sensor": "ph", "point": "mid",
                                                                           "value": "seven"}, "number"),
                           ({"sensor": "moisture", "point": "dry", "value": 5}, "not connected"),
                           ({"sensor": "ph", "point": "mid", "temp_c": 500}, "temp_c")):
        answer = send(node, {"command": "calibrate", "parameters": params})
        assert answer["success"] is False and reason in answer["error"], (params, answer)
    _, off = make_node({"sensors": {"ph": {"enabled": False}}})
    answer = send(off, {"command": "calibrate", "parameters": {"sensor": "ph", "point": "mid"}})
    assert "no ph sensor" in answer["error"]


def test_an_ezo_calibration_runs_as_a_job_over_the_loop_and_is_answered_at_the_end():
    chip, node = make_node({"sensors": {"ph": {"bus": "i2c"}}})
    circuit = chip.i2c_devices[0x63]
    send(node, {"command_id": "cal-1", "command": "calibrate", "parameters": {"sensor": "ph", "point": "mid"}})
    assert node.dispatcher.job is not None  # nothing answered yet: the circuit takes 900 ms
    node.on_message(b"farm/n1/commands", b'{"command_id": "cal-1", "command": "calibrate", '
                                         b'"parameters": {"sensor": "ph", "point": "mid"}}')
    busy = node.dispatcher.handle(b'{"command": "calibrate", "parameters": {"sensor": "ph", "point": "low"}}')
    assert busy["success"] is False and "busy" in busy["error"]
    deadline = ticks_add(ticks_ms(), 5000)
    while node.dispatcher.job is not None and ticks_diff(deadline, ticks_ms()) > 0:
        node.step()
    answers = [a for a in node.link.session.on("farm/n1/command_response") if a["command_id"] == "cal-1"]
    assert len(answers) == 1 and answers[0]["success"] is True, answers
    assert answers[0]["response"]["sensor"] == "ph" and answers[0]["response"]["point"] == "mid"
    assert "Cal,mid" in circuit.commands


def test_trims_correct_a_reading():
    field = Field()
    field.set("ph", 6.0)
    _, node = make_node(field=field)
    config_command(node, {"trims": {"ph": {"offset": 0.2}}})
    assert abs(node.reader.read()[0]["ph"] - 6.2) < 0.05


def test_alerts_fire_once_per_crossing_and_clear_once_with_hysteresis():
    alerts = Alerts({"ph": {"sensor": "ph", "min": 5.5, "max": 7.5, "hysteresis": 0.1, "severity": "warning"}})
    seen = []
    for ph in (6.0, 5.4, 5.3, 5.55, 5.45, 5.58, 5.61, 6.5, 7.6, 7.7, None, 7.45, 7.39, 5.0):
        seen += [(a["severity"], a["threshold"], a["value"]) for a in alerts.check({"ph": ph})]
    assert seen == [("warning", 5.5, 5.4), ("info", 5.5, 5.61), ("warning", 7.5, 7.6), ("info", 7.5, 7.39),
                    ("warning", 5.5, 5.0)]
    assert alerts.raised() == ["ph"]


def test_the_node_publishes_alerts_on_the_alert_topic_from_its_readings():
    field = Field()
    field.set("ph", 5.0)
    chip, node = make_node(field=field)
    calm(node)
    node.read_now()
    started = ticks_ms()  # the first pass waits for the soil probe's first conversion (750 ms)
    while not node.link.session.on("farm/n1/alert") and ticks_diff(ticks_ms(), started) < 3000:
        node.step()
    alert = node.link.session.on("farm/n1/alert")[0]
    assert alert["sensor"] == "ph" and alert["severity"] == "warning" and alert["threshold"] == 5.5
    assert alert["device_id"] == "n1" and "ts" in alert and "below" in alert["message"]
    count = len(node.link.session.on("farm/n1/alert"))
    for _ in range(3):  # more readings below the threshold: no more alerts
        taken = len(node.link.session.on("farm/n1/telemetry"))
        node.read_now()
        started = ticks_ms()
        while len(node.link.session.on("farm/n1/telemetry")) == taken and ticks_diff(ticks_ms(), started) < 3000:
            node.step()
        assert len(node.link.session.on("farm/n1/telemetry")) > taken
    assert len([a for a in node.link.session.on("farm/n1/alert") if a["sensor"] == "ph"]) == count
