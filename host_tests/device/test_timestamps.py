# Times of messages made before the clock was set: placeholders filled in as they leave
# (firmware/clock.py), back-dated from the uptime (PROTOCOL.md, Telemetry).
import json
import time

from firmware import messages
from firmware.clock import Clock
from firmware.session import Session
from nodekit import make_node
from outbox import Outbox
from sessionkit import FakeClient
from testkit import tmpdir
from ticks import ticks_ms


def synced_clock():
    clock = Clock()
    clock.synced = True  # the host's clock is right: what NTP would have set
    return clock


def test_a_placeholder_becomes_null_while_the_clock_was_never_set():
    clock = Clock()
    ts, unix = clock.pending("b00001", 5)
    text = json.dumps({"ts": ts, "unix": unix, "seq": 1})
    assert json.loads(clock.fill(text, "b00001", 65)) == {"ts": None, "unix": None, "seq": 1}


def test_a_placeholder_becomes_the_time_it_was_made_once_the_clock_is_set():
    clock = synced_clock()
    ts, unix = clock.pending("b00001", 5)
    text = json.dumps({"ts": ts, "unix": unix, "sensors": {"moisture": 41.5}})
    filled = json.loads(clock.fill(text, "b00001", 65))  # made 60 s ago
    assert filled["sensors"] == {"moisture": 41.5}
    expected_iso, expected_unix = clock.stamp(60)
    # a second may tick between the two stamps
    assert abs(filled["unix"] - expected_unix) <= 1, (filled, expected_unix)
    assert filled["ts"] in (expected_iso, clock.stamp(61)[0], clock.stamp(59)[0]), filled
    assert filled["ts"].endswith("Z") and len(filled["ts"]) == 20


def test_an_earlier_boots_placeholder_becomes_null_its_uptime_says_nothing_of_now():
    clock = synced_clock()
    ts, _ = Clock().pending("0ld000", 5)
    assert json.loads(clock.fill(json.dumps({"ts": ts}), "n3w000", 65)) == {"ts": None}


def test_fill_takes_bytes_from_flash_and_leaves_other_text_alone():
    clock = synced_clock()
    plain = '{"device_id": "@@farm", "seq": 3}'
    assert clock.fill(plain, "b00001", 9) is plain  # nothing to fill: not even copied
    ts, _ = clock.pending("b00001", 9)
    line = json.dumps({"id": "@@x:y:z", "ts": ts}).encode()
    filled = json.loads(clock.fill(line, "b00001", 9))
    assert filled["id"] == "@@x:y:z" and filled["ts"] in (clock.stamp(0)[0], clock.stamp(1)[0]), filled


def queued_offline_then_sent(outbox, patch=None, stamp="ts"):
    """Two readings (farmnode profile, or patch's) taken while neither NTP nor the broker
    answers, two minutes and one minute into the boot; five minutes in, the clock is set
    and the broker reached: what the broker gets, and their ages in seconds (from their
    field stamp: ISO 8601, or Unix seconds)."""
    chip, node = make_node(patch)
    client = FakeClient()
    client.up = False
    session = Session(client, "farm/n1/status", "offline", [], None, node.log, outbox=outbox)
    session.online_payload = lambda: "online"
    session.outgoing = node.fill_times
    node.link.session = session
    node.clock.synced = False
    for taken_s, moisture in ((120, 41.5), (180, 40.0)):
        node._pass_uptime_s = taken_s
        node.publish_reading({"moisture": moisture}, {})
    assert client.delivered == []
    node.clock.synced = True  # NTP answered
    node.uptime_ms = 300000
    node._last_tick = ticks_ms()
    client.up = True
    session.poll(True)
    topic = node.link.topic("telemetry")
    telemetry = [json.loads(msg) for sent, msg in client.delivered if sent == topic]
    now = int(time.time())
    return telemetry, [now - (r[stamp] if type(r[stamp]) is int else _unix(r[stamp])) for r in telemetry]


def test_readings_queued_in_ram_before_ntp_leave_with_their_own_back_dated_time():
    telemetry, ages = queued_offline_then_sent(None)
    assert [r["sensors"]["moisture"] for r in telemetry] == [41.5, 40.0], telemetry
    assert 179 <= ages[0] <= 182 and 119 <= ages[1] <= 122, (ages, telemetry)


def test_readings_spilled_to_flash_before_ntp_leave_with_their_own_back_dated_time():
    outbox = Outbox(tmpdir() + "/outbox.txt", 4096)
    telemetry, ages = queued_offline_then_sent(outbox)
    assert outbox.size == 0 or len(outbox) == 0
    assert [r["sensors"]["moisture"] for r in telemetry] == [41.5, 40.0], telemetry
    assert 179 <= ages[0] <= 182 and 119 <= ages[1] <= 122, (ages, telemetry)


def test_a_seed_profile_that_sends_unix_seconds_gets_them_back_dated_too():
    # iotnode (seed 003): "timestamp" in Unix seconds; its backend takes readings without one
    telemetry, ages = queued_offline_then_sent(None, {"profile": "iotnode"}, "timestamp")
    assert [r["sensors"]["moisture"] for r in telemetry] == [41.5, 40.0], telemetry
    assert 179 <= ages[0] <= 182 and 119 <= ages[1] <= 122, (ages, telemetry)


def _unix(iso):
    # "2026-12-07T10:00:00Z" -> Unix seconds (UTC), on both runtimes
    year, month, day = int(iso[0:4]), int(iso[5:7]), int(iso[8:10])
    days = _days_from_civil(year, month, day)
    return days * 86400 + int(iso[11:13]) * 3600 + int(iso[14:16]) * 60 + int(iso[17:19])


def _days_from_civil(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def test_an_alert_raised_before_ntp_leaves_stamped_when_the_clock_is_set_by_then():
    chip, node = make_node()
    node.clock.synced = False
    session = node.link.session
    session.outgoing = None  # the recorder keeps what the node queued, as it was queued
    messages.send_alert(node, {"severity": "info", "sensor": None, "value": None, "threshold": None,
                               "rule": "r", "message": "m"})
    topic, text = session.texts[-1]
    assert '"@@t:' in text
    node.clock.synced = True
    filled = json.loads(node.fill_times(text))
    assert filled["ts"] in (node.clock.iso(), node.clock.stamp(1)[0]), filled
