# Signed commands (firmware/signing.py) through the real node on the stubs: what is
# taken, what is refused and why, and that a refusal never moves a relay.
import json
from binascii import unhexlify

from firmware.signing import sign
from nodekit import make_node, send

KEY = "4f" * 32
OTHER_KEY = "a5" * 32
RELAY_ON = {"command_id": "s-1", "command": "relay", "parameters": {"relay": "irrigation", "state": "on"}}


def signed_node(patch=None):
    chip, node = make_node(dict({"signing": {"key": KEY, "window_s": 60}}, **(patch or {})))
    node.clock.synced = True  # as NTP leaves it (the stub's clock is the host's)
    return chip, node


def envelope(node, command, key=KEY, ts=None, kind="command", device_id=None):
    text = command if type(command) is str else json.dumps(command)
    ts = node.clock.unix() if ts is None else ts
    return {"signed": text, "ts": ts, "sig": sign(unhexlify(key), device_id or node.link.device_id, kind, ts, text)}


def refused(chip, answer, reason):
    assert answer["success"] is False and reason in answer["error"], answer
    assert answer["error"].startswith("signature: "), answer
    assert not chip.relay_on("irrigation")


def test_a_signed_command_is_executed():
    chip, node = signed_node()
    answer = send(node, envelope(node, RELAY_ON))
    assert answer["success"] is True and answer["command_id"] == "s-1", answer
    assert chip.relay_on("irrigation")


def test_an_unsigned_command_is_refused_and_its_id_stays_free():
    chip, node = signed_node()
    refused(chip, send(node, RELAY_ON), "missing")
    assert send(node, RELAY_ON)["command_id"] == "s-1"  # named, so the backend knows which
    answer = send(node, envelope(node, RELAY_ON))  # the refusal was not kept as s-1's answer
    assert answer["success"] is True and chip.relay_on("irrigation")
    assert any("signature: missing" in line for line in node.log.lines())


def test_a_wrong_signature_is_refused():
    chip, node = signed_node()
    good = envelope(node, RELAY_ON)
    tampered = dict(good, signed=good["signed"].replace('"on"', '"off"'))
    cases = [
        envelope(node, RELAY_ON, key=OTHER_KEY),  # a broker account without the key
        tampered,  # the command changed after signing
        dict(good, ts=good["ts"] + 1),  # the time changed after signing
        envelope(node, RELAY_ON, device_id="n2"),  # signed for another device
        envelope(node, RELAY_ON, kind="config"),  # signed for the config topic
        dict(good, sig=good["sig"][:-1] + ("0" if good["sig"][-1] != "0" else "1")),
    ]
    for message in cases:
        refused(chip, send(node, message), "bad")


def test_the_signature_may_be_upper_case_hex():
    chip, node = signed_node()
    message = envelope(node, RELAY_ON)
    message["sig"] = message["sig"].upper()
    assert send(node, message)["success"] is True


def test_malformed_envelopes_are_refused_with_the_reason():
    chip, node = signed_node()
    good = envelope(node, RELAY_ON)
    cases = [
        (dict(good, signed=RELAY_ON), "'signed' must be a string"),
        (dict(good, ts=float(good["ts"])), "'ts' must be a whole number"),
        (dict(good, ts=True), "'ts' must be a whole number"),
        (dict(good, ts=str(good["ts"])), "'ts' must be a whole number"),
        ({"signed": good["signed"], "ts": good["ts"]}, "'sig' must be 64 hex digits"),
        (dict(good, sig=good["sig"][:63]), "'sig' must be 64 hex digits"),
        (dict(good, sig=[good["sig"]]), "'sig' must be 64 hex digits"),
        (dict(good, sig="zz" * 32), "bad"),
        (dict(good, sig={"n2": good["sig"]}), "no signature for n1"),
        (envelope(node, '{"command": "ping", "parameters": {"who": "caf\u00e9"}}'), "must be ASCII"),
    ]
    for message, reason in cases:
        refused(chip, send(node, message), reason)


def test_the_signed_text_is_checked_like_any_command():
    chip, node = signed_node()
    assert "not JSON" in send(node, envelope(node, "{not json"))["error"]
    assert "unknown relay" in send(node, envelope(node, {"command": "relay", "parameters": {
        "relay": "sprinkler", "state": "on"}}))["error"]
    assert not chip.relay_on("irrigation")


def test_the_time_window():
    chip, node = signed_node()
    now = node.clock.unix()
    node.clock.unix = lambda: now  # held: a second ticking mid-test would move the edges
    refused(chip, send(node, envelope(node, RELAY_ON, ts=now - 61)), "expired: signed 61 s ago (window 60 s)")
    refused(chip, send(node, envelope(node, RELAY_ON, ts=now + 61)), "in the future")
    # Within the window but before this boot began: the previous boot may have taken it.
    # Whole seconds on both clocks: 2 s of slack.
    node.uptime_ms = 5000
    refused(chip, send(node, envelope(node, RELAY_ON, ts=now - 12)), "before this device started")
    assert send(node, envelope(node, RELAY_ON, ts=now - 7))["success"] is True


def test_without_a_clock_the_age_cannot_be_checked():
    chip, node = signed_node()
    message = envelope(node, RELAY_ON)
    node.clock.synced = False
    refused(chip, send(node, message), "clock is not set")


def test_a_replay_is_refused_a_redelivery_gets_the_first_answer():
    chip, node = signed_node()
    message = envelope(node, RELAY_ON)
    first = send(node, message)
    send(node, envelope(node, {"command_id": "off-1", "command": "relay",
                               "parameters": {"relay": "irrigation", "state": "off"}}))
    assert not chip.relay_on("irrigation")
    writes = len(chip.writes(26))
    assert send(node, message) == first  # a QoS 1 redelivery: answered again, not run again
    assert not chip.relay_on("irrigation") and len(chip.writes(26)) == writes
    no_id = envelope(node, {"command": "relay", "parameters": {"relay": "irrigation", "state": "on"}})
    assert send(node, no_id)["success"] is True
    send(node, envelope(node, {"command_id": "off-2", "command": "relay",
                               "parameters": {"relay": "irrigation", "state": "off"}}))
    refused(chip, send(node, no_id), "replayed")  # nothing tells it from a new command but the signature


def test_a_forgotten_signature_cannot_be_replayed():
    chip, node = signed_node()
    node.uptime_ms = 100000  # up for a while: messages signed seconds ago are of this boot
    now = node.clock.unix()
    node.clock.unix = lambda: now  # held: the first message must stay within the window
    first = envelope(node, {"command": "relay", "parameters": {"relay": "irrigation", "state": "on"}}, ts=now - 50)
    assert send(node, first)["success"] is True
    send(node, envelope(node, {"command": "relay", "parameters": {"relay": "irrigation", "state": "off"}}, ts=now - 50))
    for i in range(40):  # more than the device remembers, each a second later
        assert send(node, envelope(node, {"command": "ping"}, ts=now - 45 + i))["success"]
    refused(chip, send(node, first), "too many signed messages")
    assert send(node, envelope(node, {"command": "ping"}, ts=now))["success"] is True


def test_a_broadcast_carries_one_signature_per_device():
    chip, node = signed_node()
    text = json.dumps(RELAY_ON)
    ts = node.clock.unix()
    sigs = {"n1": sign(unhexlify(KEY), "n1", "command", ts, text),
            "n2": sign(unhexlify(OTHER_KEY), "n2", "command", ts, text)}
    node.on_message(b"farm/all/commands", json.dumps({"signed": text, "ts": ts, "sig": sigs}).encode())
    node.step()
    assert node.link.session.on("farm/n1/command_response")[-1]["success"] is True
    assert chip.relay_on("irrigation")


def test_the_config_topic_needs_a_signature_too():
    chip, node = signed_node()
    patch = {"command_id": "cfg-1", "interval_s": 30}
    node.on_message(b"farm/n1/config", json.dumps(patch).encode())
    answer = node.link.session.on("farm/n1/command_response")[-1]
    assert answer["success"] is False and "signature: missing" in answer["error"]
    assert node.cfg["interval_s"] == 60
    command_signed = envelope(node, patch)  # a command's signature is not a config's
    node.on_message(b"farm/n1/config", json.dumps(command_signed).encode())
    assert "signature: bad" in node.link.session.on("farm/n1/command_response")[-1]["error"]
    node.on_message(b"farm/n1/config", json.dumps(envelope(node, patch, kind="config")).encode())
    answer = node.link.session.on("farm/n1/command_response")[-1]
    assert answer["success"] is True and node.cfg["interval_s"] == 30, answer


def test_without_a_key_an_envelope_is_opened_unchecked():
    chip, node = make_node()
    message = envelope(node, RELAY_ON, key=OTHER_KEY, ts=12345)
    assert send(node, message)["success"] is True and chip.relay_on("irrigation")


def test_the_key_is_never_shown():
    chip, node = signed_node()
    shown = json.dumps(send(node, envelope(node, {"command": "get_config"}))["response"])
    assert KEY not in shown and "signing" in shown and "window_s" in shown
    shown = json.dumps(send(node, envelope(node, {"command": "status"}))["response"])
    assert KEY not in shown
    assert KEY not in json.dumps(node.link.session.sent) and KEY not in "\n".join(node.log.lines())
