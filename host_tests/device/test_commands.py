# Commands through the real node on the stubs, every dialect; the MQTT session is a
# recorder (the broker-in-the-loop tests are in host_tests/host/test_node_mqtt.py).
import builtins
import gc
import json
import sys

from firmware import config
from fieldmodel import Field
from firmware.commands import Answered
from nodekit import calm, make_node, send
from testkit import read_text
from ticks import sleep_ms, ticks_add, ticks_diff, ticks_ms


def test_relay_command_switches_answers_and_publishes_the_new_state_at_once():
    chip, node = make_node()
    answer = send(node, {"command_id": "c1", "command": "relay",
                         "parameters": {"relay": "irrigation", "state": "on", "duration_s": 600}})
    assert answer["success"] is True and answer["error"] is None
    assert answer["response"] == {"relay": "irrigation", "state": 1, "off_in_s": 600}
    assert answer["command_id"] == "c1" and answer["device_id"] == "n1" and answer["command"] == "relay"
    assert chip.relay_on("irrigation")
    telemetry = node.link.session.on("farm/n1/telemetry")
    assert telemetry and telemetry[-1]["relays"] == {"irrigation": 1, "fertigation": 0}


def test_a_redelivered_command_id_is_answered_again_not_run_again():
    chip, node = make_node()
    first = send(node, {"command_id": "c7", "command": "relay",
                        "parameters": {"relay": "irrigation", "state": 1}})
    send(node, {"command": "relay", "parameters": {"relay": "irrigation", "state": "off"}})
    assert not chip.relay_on("irrigation")
    writes = len(chip.writes(26))
    again = send(node, {"command_id": "c7", "command": "relay", "parameters": {"relay": "irrigation", "state": 1}})
    assert again == first
    assert not chip.relay_on("irrigation") and len(chip.writes(26)) == writes


def test_an_older_redelivery_is_answered_from_its_outcome_and_still_not_run_again():
    chip, node = make_node()
    first = send(node, {"command_id": "c0", "command": "relay", "parameters": {"relay": "irrigation", "state": 1}})
    refused = send(node, {"command_id": "f0", "command": "relay", "parameters": {"relay": "fertigation", "state": 1}})
    for i in range(1, 12):  # more than the answers kept whole: c0 and f0 keep their outcome only
        send(node, {"command_id": "c%d" % i, "command": "relay",
                    "parameters": {"relay": "irrigation", "state": i % 2}})
    assert chip.relay_on("irrigation")
    writes = len(chip.writes(26))
    again = send(node, {"command_id": "c0", "command": "relay", "parameters": {"relay": "irrigation", "state": 0}})
    assert again["success"] and again["response"] == {"repeat": True} and again["command"] == "relay"
    assert again["command_id"] == first["command_id"] and chip.relay_on("irrigation")
    assert len(chip.writes(26)) == writes
    again = send(node, {"command_id": "f0", "command": "relay", "parameters": {"relay": "fertigation", "state": 1}})
    assert not again["success"] and not refused["success"] and again["error"] == "refused the first time it came"


def test_answers_are_kept_whole_only_while_they_fit_their_slot():
    answered = Answered()
    answered.remember("short", "relay", True, '{"a": 1}')
    answered.remember("long", "config", False, '{"b": "%s"}' % ("x" * 400))
    assert answered.find("short") == ("relay", True, b'{"a": 1}')
    assert answered.find("long") == ("config", False, None)
    assert answered.find("other") is None


def test_a_redelivered_command_that_changes_nothing_runs_again():
    # Its answer (a whole config, for get_config) is not kept in RAM for redeliveries.
    chip, node = make_node()
    first = send(node, {"command_id": "g1", "command": "get_config"})
    send(node, {"command": "set_interval", "parameters": {"interval_s": 120}})
    again = send(node, {"command_id": "g1", "command": "get_config"})
    assert first["response"]["interval_s"] == 60 and again["response"]["interval_s"] == 120


def test_bad_input_is_refused_with_a_reason_and_moves_nothing():
    chip, node = make_node()
    cases = [
        (b"not json at all", "not JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b'{"parameters": {}}', "missing 'command'"),
        ({"command": "launch"}, "unknown command"),
        ({"command": "relay", "parameters": {"relay": "sprinkler", "state": "on"}}, "unknown relay"),
        ({"command": "relay", "parameters": {"relay": "irrigation", "state": "maybe"}}, "'state'"),
        ({"command": "relay", "parameters": {"relay": "irrigation", "state": "on", "duration_s": -5}}, "between"),
        ({"command": "relay", "parameters": {"relay": "irrigation", "state": "on", "duration_s": "10"}}, "number"),
        ({"command": "relay", "parameters": {"relay": "irrigation", "state": "on", "duration_s": True}}, "number"),
        ({"command": "relay", "parameters": "on"}, "'parameters' must be an object"),
        ({"command": "relay", "command_id": 7}, "command_id"),
        (b'{"command": "ping", "command_id": "caf\\u00e9"}', "printable ASCII"),
        ({"command": "x" * 3000}, "unknown command 'xxxxxxxx"),
        (b'{"command": "relay", "parameters": {"relay": ' + b"[" * 400 + b"]" * 400 + b', "state": 1}}',
         "unknown relay a list of 1"),
        ({"command": "set_interval", "parameters": {"interval_s": 0}}, "between 1 and 86400"),
        (b'{"command": "relay", "parameters": {"relay": "irrig\\u00e4tion", "state": 1}}', "unknown relay"),
    ]
    for payload, reason in cases:
        answer = send(node, payload)
        assert answer["success"] is False and reason in answer["error"], (payload, answer)
    assert {level for _, level in chip.writes(26) + chip.writes(25)} == {0}  # never on


def test_made_up_command_names_leave_nothing_behind_in_the_heap():
    # MicroPython interns a name given to getattr() for good: a command name must not
    # reach it unless it is one the node has, or a stream of made-up ones fills the heap.
    _, node = make_node()
    session = node.link.session

    def held():
        gc.collect()
        return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0

    send(node, {"command": "launch"})
    del session.sent[:], session.texts[:]  # the recorder's, not the node's
    before = held()
    for n in range(200):
        answer = send(node, {"command": "launch-%d-%s" % (n, "x" * 40)})
        assert answer["error"].startswith("unknown command")
        del session.sent[:], session.texts[:]
    grown = held() - before
    assert grown < 4096, grown  # 200 names of ~50 characters interned: ~12 KiB


def test_interlock_refusal_names_the_rule():
    chip, node = make_node()
    node.relays.observe({"wind_speed": 31.0, "ph": 6.5})
    answer = send(node, {"command": "relay", "parameters": {"relay": "fertigation", "state": "on"}})
    assert answer["success"] is False and "spray_drift" in answer["error"]
    assert not chip.relay_on("fertigation")


def test_seed_000_actuate_is_acknowledged_with_a_status_message():
    chip, node = make_node({"profile": "smartfarm"})
    node.on_message(b"farm/farm_001/commands", json.dumps(
        {"type": "ACTUATE", "device": "irrigation", "state": 1, "timestamp": "2026-01-24T22:30:00Z"}).encode())
    acks = [p for t, p in node.link.session.sent if t == "farm/telemetry" and p.get("type") == "STATUS"]
    assert acks[-1]["irrigation"] == "ON" and acks[-1]["farm_id"] == "farm_001"
    assert chip.relay_on("irrigation")
    node.on_message(b"farm/farm_001/commands", b'{"type": "ACTUATE", "device": "mister", "state": 1}')
    acks = [p for t, p in node.link.session.sent if t == "farm/telemetry" and p.get("type") == "STATUS"]
    assert "unknown relay" in acks[-1]["error"]


def test_seed_001_actions():
    chip, node = make_node({"profile": "plantnanny"})
    node.on_message(b"devices/n1/command", b'{"action": "pump_water", "durationMs": 300}')
    assert chip.relay_on("irrigation")
    sleep_ms(350)
    node.step()
    assert not chip.relay_on("irrigation")
    node.on_message(b"devices/n1/command", b'{"action": "pump_water", "amountMl": 250}')
    assert not chip.relay_on("irrigation")  # no flow rate configured: refused
    node.on_message(b"devices/n1/command", b'{"action": "set_interval", "intervalMs": 30000}')
    assert node.cfg["interval_s"] == 30


def test_seed_001_amount_through_the_configured_flow_rate():
    _, flowing = make_node({"profile": "plantnanny", "relays": {"irrigation": {"flow_ml_s": 50.0}}})
    assert flowing.dispatcher.handle(b'{"action": "pump_water", "amountMl": 250}')["response"]["off_in_s"] == 5


def test_seed_003_params_and_seed_004_set_pump():
    chip, node = make_node({"profile": "iotnode"})
    answer = node.dispatcher.handle(b'{"command": "relay", "params": {"relay": "irrigation", "state": "on"}}')
    assert answer["success"] and chip.relay_on("irrigation")
    chip, node = make_node({"profile": "dese", "org_id": "org-9"})
    calm(node)
    answer = node.dispatcher.handle(json.dumps({"command_id": "cmd-1", "device_id": "n1", "command": "set_pump",
                                                "parameters": {"pump_id": 2, "state": "on", "duration": 60},
                                                "timestamp": "2025-01-27T10:00:00Z"}).encode())
    assert answer["success"] and answer["response"]["relay"] == "fertigation" and chip.relay_on("fertigation")
    responses = node.link.session.on("devices/org-9/n1/command_response")
    assert responses[-1]["command_id"] == "cmd-1" and responses[-1]["success"] is True
    assert "timestamp" in responses[-1] and "ts" not in responses[-1]  # seed 004's field name


def test_set_interval_is_persisted():
    _, node = make_node()
    answer = send(node, {"command": "set_interval", "parameters": {"interval_s": 15}})
    assert answer["response"] == {"interval_s": 15}
    assert json.loads(read_text(node.root + "/config.json"))["interval_s"] == 15
    assert config.load(node.root)[0]["interval_s"] == 15


def test_set_interval_saves_without_the_whole_config_check():
    """A number in range cannot break a valid config: set_interval skips the check (its
    garbage is the highest a running node's heap goes), and never loads the rules."""
    _, node = make_node()
    imported = []
    original = builtins.__import__

    def recording(name, *args):
        imported.append((name, args[2] if len(args) > 2 else None))
        return original(name, *args)

    builtins.__import__ = recording
    try:
        answer = send(node, {"command": "set_interval", "parameters": {"interval_s": 45}})
    finally:
        builtins.__import__ = original
    assert ("firmware.schema", None) not in imported and not any(
        name == "firmware" and fromlist and "schema" in fromlist for name, fromlist in imported), imported
    assert ("firmware", ("reconfig",)) in imported or ("firmware.reconfig", None) in imported, imported
    assert answer["success"] and answer["response"] == {"interval_s": 45}, answer
    assert node.interval_ms == 45000 and node.relays.max_age_ms == 90000
    assert config.load(node.root)[0]["interval_s"] == 45


def test_a_read_then_a_new_interval_still_gives_the_reading():
    _, node = make_node()
    telemetry = node.link.profile.topics["telemetry"]
    while not node.link.session.on(telemetry):  # the boot's first reading
        node.step()
    taken = len(node.link.session.on(telemetry))
    for command in ({"command": "read"}, {"command": "set_interval", "parameters": {"interval_s": 120}}):
        node.on_message(b"farm/n1/commands", json.dumps(command).encode())
    started = ticks_ms()
    while len(node.link.session.on(telemetry)) == taken and ticks_diff(ticks_ms(), started) < 3000:
        node.step()
    assert len(node.link.session.on(telemetry)) == taken + 1


def test_ping_status_and_get_config_without_secrets():
    _, node = make_node({"wifi": {"ssid": "barn", "password": "hay"}, "mqtt": {"password": "pw"}})
    assert send(node, {"command": "ping"})["response"]["pong"] is True
    assert send(node, {"command": "status"})["response"]["status"] == "online"
    shown = send(node, {"command": "get_config"})["response"]
    assert shown["wifi"]["ssid"] == "barn" and "password" not in shown["wifi"]
    assert "hay" not in json.dumps(shown) and "pw" not in json.dumps(shown["mqtt"])


def test_restart_answers_first_then_says_offline_then_resets():
    _, node = make_node()
    answer = send(node, {"command": "reboot"})
    assert answer["success"] and answer["command"] == "restart"
    assert node.resets == [True]
    closed = [p for t, p in node.link.session.sent if t == "closed"]
    assert closed == [{"status": "offline", "device_id": "n1", "reason": "restart"}]


def test_failsafe_turns_every_relay_off_without_the_broker():
    chip, node = make_node()
    calm(node)
    send(node, {"command": "relay", "parameters": {"relay": "irrigation", "state": "on"}})
    node.link.session.connected = False
    node.step()
    assert chip.relay_on("irrigation")  # a short outage changes nothing
    node._offline_since = ticks_add(ticks_ms(), -301000)  # as if 301 s had passed
    node.step()
    assert not chip.relay_on("irrigation")
    assert any("failsafe" in line for line in node.log.lines())
    alerts = node.link.session.on(node.link.profile.topics["alert"])
    assert [(a["severity"], a["rule"], a["message"]) for a in alerts] == [
        ("info", "failsafe", "irrigation stopped: failsafe")]


def test_an_interlock_stop_is_logged_and_published_as_an_info_alert_naming_the_rule():
    field = Field()
    field.set("wind_speed", 0)
    field.set("ph", 4.5)  # nutrient lockout: fertigation may not run below 5.5
    chip, node = make_node({"interval_s": 1}, field)
    calm(node)  # the last readings the interlocks know of are fine: the command is taken
    assert send(node, {"command": "relay", "parameters": {"relay": "fertigation", "state": "on"}})["success"]
    started = ticks_ms()
    while chip.relay_on("fertigation") and ticks_diff(ticks_ms(), started) < 10000:
        node.step()  # the sensor pass reads pH 4.5
    assert not chip.relay_on("fertigation")
    stop = [line for line in node.log.lines() if "relay fertigation off" in line]
    assert stop and "(interlock nutrient_lockout: ph 4." in stop[0] and "outside 5.5..7.5)" in stop[0], stop
    alerts = [a for a in node.link.session.on(node.link.profile.topics["alert"]) if a["severity"] == "info"]
    assert [a["rule"] for a in alerts] == ["nutrient_lockout"], alerts
    assert alerts[0]["message"] == "fertigation stopped: " + stop[0].split("(", 1)[1][:-1]
    readings = node.link.session.on(node.link.profile.topics["telemetry"])
    assert readings[-1]["relays"]["fertigation"] == 0 and readings[-1]["sensors"]["ph"] < 5.5


def test_an_unexpected_failure_in_a_command_is_answered_and_the_loop_goes_on():
    chip, node = make_node()

    def no_memory(name, on, duration_s=None):
        raise MemoryError("memory allocation failed")

    node.relays.set = no_memory
    answer = send(node, {"command_id": "m1", "command": "relay", "parameters": {"relay": "irrigation", "state": "on"}})
    assert answer["success"] is False and answer["error"].startswith("internal error: MemoryError")
    assert send(node, {"command": "ping"})["success"] is True


def test_a_profile_that_needs_a_time_holds_readings_until_the_clock_is_set():
    chip, node = make_node({"profile": "dese", "org_id": "org1", "wifi": {"ssid": "farm", "password": "farmpass"}})
    chip.ap["up"] = False  # no Wi-Fi: no NTP
    node.step()
    node.publish_reading({"moisture": 41.5}, {})
    telemetry = node.link.session.on(node.link.profile.topics["telemetry"])
    assert not node.clock.synced and telemetry == []  # held: seed 004 requires a timestamp
    sleep_ms(2100)
    chip.ap["up"] = True
    started = ticks_ms()
    while not telemetry and ticks_diff(ticks_ms(), started) < 10000:
        node.step()
        telemetry = node.link.session.on(node.link.profile.topics["telemetry"])
    first = telemetry[0]
    assert first["sensors"]["moisture"] == 41.5 and first["timestamp"] is not None, telemetry
    # back-dated to when it was taken, not when it was sent (2 s later)
    assert first["timestamp"] <= node.clock.stamp(2)[0], (first["timestamp"], node.clock.iso())


def test_a_command_id_that_looks_like_a_time_placeholder_comes_back_as_it_was_sent():
    # Queued behind a full in-flight window, or spilled to flash with the link, an answer
    # leaves through the node's fill_times: what looks like a placeholder would be filled.
    _, node = make_node()
    answers = node.link.profile.topics["command_response"]

    def answers_as_they_leave():
        return [json.loads(node.fill_times(text)) for topic, text in node.link.session.texts if topic == answers]

    for command_id in ("@@t:%s:0" % node.boot_id, "@@u:x:12", "a@@t:x:1"):
        send(node, {"command_id": command_id, "command": "relay",
                    "parameters": {"relay": "irrigation", "state": "off"}})
        send(node, {"command_id": command_id, "command": "relay"})  # a redelivery: answered again
        first, again = answers_as_they_leave()[-2:]
        assert first["command_id"] == again["command_id"] == command_id and again["success"] is True, again
    assert len(answers_as_they_leave()) == 6
