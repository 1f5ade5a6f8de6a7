# lib/jsontext: JSON as json.dumps writes it, floats without a double's binary noise.
import json

from jsontext import Omitting, _dumps, dumps, pieces
from nodekit import make_node


def test_floats_are_written_as_rounded_not_as_a_doubles_repr():
    # MicroPython's json.dumps writes 70.90000000000001 and 8.800000000000001 for these.
    assert dumps([70.9, 8.8, 1.834]) == "[70.9, 8.8, 1.834]"
    assert dumps({"humidity": 70.9}) == '{"humidity": 70.9}'
    assert dumps([3.0, -0.5, 1e-07, 12, None, True, False]) == "[3.0, -0.5, 1e-07, 12, null, true, false]"


def test_everything_else_is_what_json_dumps_writes():
    # The encoder itself (on CPython, dumps is json.dumps: its floats are clean).
    value = {"s": 'a "quoted" \\ line\n', "nested": {"list": [1, [2, {"x": None}]], "t": (1, 2)}, "e": {}}
    assert json.loads(_dumps(value)) == json.loads(json.dumps(value))
    assert _dumps("é") == json.dumps("é") and _dumps([]) == "[]" and _dumps({}) == "{}"
    assert _dumps([70.9, 3.0, 1e-07]) == "[70.9, 3.0, 1e-07]"


def test_the_nodes_telemetry_carries_its_values_at_their_resolution():
    chip, node = make_node()
    node.publish_reading({"humidity": 70.9, "wind_speed": 8.8, "temp": 21.3}, {})
    topic, text = node.link.session.texts[-1]
    assert topic.endswith("/telemetry")
    assert '"humidity": 70.9,' in text and '"wind_speed": 8.8' in text and '"temp": 21.3' in text, text


def test_pieces_write_the_same_text_and_omit_what_they_are_told_without_a_copy():
    value = {"a": [70.9, 3.0, None, True], "wifi": {"ssid": "farm", "password": "x"}, "n": {"k": {"deep": 1}},
             "e": {}, "t": (1, "two")}
    assert "".join(pieces(value)) == dumps(value)
    cfg = {"wifi": {"ssid": "farm", "password": "secret"}, "mqtt": {"host": "h", "password": "p", "port": 1},
           "password": "top level, not under wifi: kept"}
    text = "".join(pieces({"command": "get_config", "response": Omitting(cfg, ("wifi.password", "mqtt.password"))}))
    assert json.loads(text) == {"command": "get_config", "response": {
        "wifi": {"ssid": "farm"}, "mqtt": {"host": "h", "port": 1}, "password": "top level, not under wifi: kept"}}
    assert cfg["wifi"]["password"] == "secret"  # left as it was
