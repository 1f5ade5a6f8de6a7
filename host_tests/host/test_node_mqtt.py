"""The firmware against a real mosquitto, under both runtimes: telemetry, status and
Last Will, reconnection without losing readings, dead-connection detection, and clear
logs for a broker that cannot be reached. paho-mqtt plays the backend."""
import calendar
import json
import os
import re
import signal
import time

import pytest

from backend import Backend

RUNTIMES = ("micropython", "cpython")


def unix_seconds(iso):
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def is_status(status):
    return lambda topic, data, retain: topic == "farm/node-t1/status" and data and data.get("status") == status


def retained_status(broker):
    """What a backend that connects now is told: the retained status."""
    viewer = Backend(broker, ["farm/node-t1/status"], client_id="viewer")
    try:
        return viewer.wait_for(lambda t, d, r: r, timeout_s=5)
    finally:
        viewer.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_telemetry_and_online_status_per_protocol(broker, nodes, runtime):
    backend = Backend(broker, ["farm/#"])
    nodes(broker, runtime)
    online = backend.wait_for(is_status("online"))
    assert set(online) >= {"status", "device_id", "firmware_version", "boot_id", "reset_cause", "ip", "rssi", "ts"}
    assert online["device_id"] == "node-t1" and online["reset_cause"] == "power_on"
    first = backend.wait_for(lambda t, d, r: t == "farm/node-t1/telemetry")
    assert first["seq"] == 0 and first["uptime_s"] == 0
    # Taken at boot, before NTP: no made-up time. Null only if it left before the clock
    # was set; else the clock's time back-dated to the pass (in whole seconds of uptime:
    # up to a second late), never later than the online status sent once connected.
    if first["ts"] is not None:
        assert unix_seconds(first["ts"]) <= unix_seconds(online["ts"]) + 1, (first, online)
    reading = backend.wait_for(lambda t, d, r: t == "farm/node-t1/telemetry" and d["seq"] == 1)
    assert set(reading) == {"device_id", "farm_id", "boot_id", "seq", "ts", "uptime_s", "sensors",
                            "relays", "errors", "meta"}
    assert reading["boot_id"] == online["boot_id"] and reading["farm_id"] == "farm_001"
    assert reading["ts"].endswith("Z") and len(reading["ts"]) == 20
    assert set(reading["sensors"]) >= {"moisture", "temp", "humidity", "soil_temp", "n", "p", "k", "ec", "ph",
                                       "wind_speed"}
    assert reading["sensors"]["soil_temp"] is not None and "temp_comp" not in reading["meta"]
    assert 0 <= reading["sensors"]["moisture"] <= 100 and reading["errors"] == {}
    assert set(reading["meta"]) >= {"rssi", "heap_free", "firmware_version", "dropped"}
    assert retained_status(broker)["status"] == "online"
    backend.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_power_cut_gives_retained_will_and_restart_gives_online(broker, nodes, runtime):
    backend = Backend(broker, ["farm/node-t1/status"])
    node = nodes(broker, runtime, config={"mqtt": {"keepalive": 2}})
    first = backend.wait_for(is_status("online"))
    node.kill(signal.SIGKILL)
    will = backend.wait_for(is_status("offline"))
    assert will == {"status": "offline", "device_id": "node-t1", "reason": "lwt"}
    assert retained_status(broker)["status"] == "offline"
    node.start()
    again = backend.wait_for(is_status("online"))
    assert again["boot_id"] != first["boot_id"]
    assert retained_status(broker)["status"] == "online"
    backend.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_broker_restart_loses_no_reading(broker, nodes, runtime):
    backend = Backend(broker, ["farm/node-t1/telemetry"], client_id="backend-persistent", persistent=True)
    node = nodes(broker, runtime)
    backend.wait_for(lambda t, d, r: d and d["seq"] >= 2)
    broker.stop()
    time.sleep(4)  # the node keeps sampling: ~4 readings go to its queue
    broker.start()
    last = backend.wait_for(lambda t, d, r: d and d["seq"] >= 12, timeout_s=40)
    readings = [d for t, d, r in backend.seen if d]
    boots = {d["boot_id"] for d in readings}
    assert boots == {last["boot_id"]}
    seqs = sorted({d["seq"] for d in readings})  # (boot_id, seq) drops QoS 1 duplicates
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"gap in seq: {seqs}"
    assert seqs[0] == 0
    assert "mqtt: connection lost" in node.console() and node.console().count("mqtt: connected") >= 2
    backend.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_half_open_connection_is_detected_within_keepalive(broker, nodes, runtime):
    node = nodes(broker, runtime, config={"mqtt": {"keepalive": 2}, "interval_s": 60})
    deadline = time.monotonic() + 15
    while "mqtt: connected" not in node.console() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(broker.process.pid, signal.SIGSTOP)  # the broker stops answering; the socket stays open
    try:
        stopped = time.monotonic()
        while "PINGRESP" not in node.console() and time.monotonic() - stopped < 10:
            time.sleep(0.1)
        detected_after = time.monotonic() - stopped
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)
    assert "no PINGRESP: the connection is dead" in node.console()
    assert detected_after <= 2 * 2 + 1  # keepalive 2 s: ping after <= 2 s, dead after 2 s more


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", ["unreachable", "wrong_port", "bad_credentials"])
def test_unusable_broker_gives_clear_logs_and_backoff(broker, nodes, runtime, case, tmp_path):
    secrets = {"unreachable": {"mqtt": {"host": "127.0.0.1", "port": 1}},
               "wrong_port": {"mqtt": {"port": broker.port + 1 if broker.port < 65535 else 1024}},
               "bad_credentials": {"mqtt": {"user": "intruder", "password": "nope"}}}[case]
    if case == "bad_credentials":  # a broker that knows no user at all
        broker.stop()
        (tmp_path / "passwd").write_text("")
        broker.anonymous = False
        broker.extra_config = f"password_file {tmp_path / 'passwd'}\n"
        broker.start()
    node = nodes(broker, runtime, secrets=secrets)
    time.sleep(8)
    assert node.running(), node.console()  # no crash
    log = node.console()
    attempts = [line for line in log.splitlines() if "mqtt: cannot connect" in line]
    assert 2 <= len(attempts) <= 5, log  # 1 s, 2 s, 4 s ... apart: no tight loop
    if case == "bad_credentials":
        assert "bad user name or password" in attempts[0] or "not authorised" in attempts[0], attempts[0]
    else:
        assert "ECONNREFUSED" in attempts[0] or "111" in attempts[0] or "refused" in attempts[0].lower(), attempts[0]
    assert "next try in" in attempts[0]


SEED_TELEMETRY = {
    # profile: (topic, required keys, check)
    "farmnode": ("farm/node-t1/telemetry", {"device_id", "farm_id", "boot_id", "seq", "ts", "uptime_s",
                                             "sensors", "relays", "errors", "meta"}, None),
    "smartfarm": ("farm/telemetry", {"farm_id", "timestamp", "moisture", "temp", "humidity", "npk",
                                     "ec_salinity", "wind_speed", "soil_ph"},
                  lambda d: 0 <= d["moisture"] <= 100 and 0 <= d["humidity"] <= 100 and 0 <= d["npk"] <= 1023
                  and 0 <= d["ec_salinity"] <= 20 and 0 <= d["wind_speed"] <= 150 and 0 <= d["soil_ph"] <= 14
                  and d["farm_id"] == "farm_001"),
    "plantnanny": ("devices/node-t1/data", {"temperatureC", "humidityPct", "ts", "uptime"},
                   lambda d: isinstance(d["ts"], int) and d["ts"] > 1700000000),
    "harit": ("harit-samarth/sensor/data", {"timestamp", "publisher_id", "sensor_readings"},
              lambda d: set(d["sensor_readings"]) == {"N", "P", "K", "Temperature", "Moisture", "pH"}),
    "iotnode": ("iot/node/node-t1/telemetry", {"node_id", "timestamp", "sensors", "wifi_rssi", "uptime"},
                lambda d: d["node_id"] == "node-t1" and isinstance(d["timestamp"], int)),
    "dese": ("devices/org-9/node-t1/telemetry", {"device_id", "timestamp", "organization_id", "sensors", "metadata"},
             lambda d: {"ph", "chlorine", "temperature"} <= set(d["sensors"]) and d["organization_id"] == "org-9"
             and d["metadata"]["firmware_version"] and d["timestamp"].endswith("Z")),
}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("profile", sorted(SEED_TELEMETRY))
def test_each_profile_publishes_the_seed_schema(broker, nodes, runtime, profile):
    topic, keys, check = SEED_TELEMETRY[profile]
    backend = Backend(broker, ["#"])
    nodes(broker, runtime, config={"profile": profile, "org_id": "org-9"})
    arrived = []

    def second_reading(t, d, r):  # the first reading may be taken before NTP set the clock
        if t == topic and d is not None:
            arrived.append(d)
        return len(arrived) >= 2

    data = backend.wait_for(second_reading)
    assert keys <= set(data), f"{profile}: missing {keys - set(data)}"
    if check is not None:
        assert check(data), f"{profile}: {data}"
    backend.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_offline_outbox_is_bounded_and_counts_what_it_dropped(broker, nodes, runtime):
    backend = Backend(broker, ["farm/node-t1/telemetry"], client_id="backend-q", persistent=True)
    nodes(broker, runtime, config={"mqtt": {"spill_bytes": 2048}})
    backend.wait_for(lambda t, d, r: d and d["seq"] >= 1)
    broker.stop()
    time.sleep(7)  # ~7 readings of ~450 bytes, 4 fit on flash
    broker.start()
    first_after = backend.wait_for(lambda t, d, r: d and d["meta"]["dropped"] > 0, timeout_s=40)
    # readings taken after the reconnection carry the final count
    backend.wait_for(lambda t, d, r: d and d["seq"] >= first_after["seq"] + 6, timeout_s=20)
    seqs = sorted({d["seq"] for t, d, r in backend.seen if d})
    dropped = max(d["meta"]["dropped"] for t, d, r in backend.seen if d)
    missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))
    assert missing, "an outage longer than the queue must lose the oldest readings"
    assert len(missing) == dropped  # each lost reading is counted, nothing else is lost
    assert missing == list(range(missing[0], missing[-1] + 1))  # the oldest ones, together
    backend.close()


@pytest.fixture
def tls_broker(tmp_path):
    from farmctl.broker import Mosquitto
    from tls_certs import make_certs, tls_listener_config

    certs = make_certs(tmp_path / "pki")
    broker = Mosquitto(tmp_path / "tls-broker", extra_config=tls_listener_config(certs))
    broker.certs = certs
    with broker:
        yield broker


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_with_the_broker_ca(tls_broker, nodes, runtime, tmp_path):
    backend = Backend(tls_broker, ["farm/node-t1/telemetry"], tls_ca=tls_broker.certs["ca"])
    node = nodes(tls_broker, runtime, secrets={"mqtt": {"tls": True, "ca": str(tls_broker.certs["ca"])}})
    data = backend.wait_for(lambda t, d, r: d is not None, timeout_s=20)
    assert data["device_id"] == "node-t1"
    assert "mqtt: connected" in node.console()
    backend.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_refuses_a_broker_signed_by_another_ca(tls_broker, nodes, runtime, tmp_path):
    from tls_certs import make_certs

    stranger = make_certs(tmp_path / "other-pki", name="other")
    node = nodes(tls_broker, runtime, secrets={"mqtt": {"tls": True, "ca": str(stranger["ca"])}})
    time.sleep(5)
    assert node.running(), node.console()
    attempts = [line for line in node.console().splitlines() if "mqtt: cannot connect" in line]
    assert attempts and "mqtt: connected" not in node.console(), node.console()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_username_and_password(broker, nodes, runtime, tmp_path):
    import subprocess

    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "node-t1", "s3cret"], check=True, timeout=30)
    broker.stop()
    broker.anonymous = False
    broker.extra_config = f"password_file {passwd}\n"
    broker.start()
    node = nodes(broker, runtime, secrets={"mqtt": {"user": "node-t1", "password": "s3cret"}})
    deadline = time.monotonic() + 15
    while "mqtt: connected" not in node.console() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "mqtt: connected" in node.console(), node.console()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_umqtt_simple_client_switch(broker, nodes, runtime):
    """mqtt.client = "umqtt": the node with umqtt.simple's blocking API (a stand-in here:
    the real one is frozen into ESP32 firmware and not on PyPI)."""
    from pathlib import Path

    standin = Path(__file__).resolve().parents[1] / "umqtt_standin"
    backend = Backend(broker, ["farm/node-t1/#"], client_id="backend-umqtt", persistent=True)
    node = nodes(broker, runtime, config={"mqtt": {"client": "umqtt"}}, extra_path=[standin])
    backend.wait_for(is_status("online"))
    backend.wait_for(lambda t, d, r: t.endswith("telemetry") and d["seq"] >= 1)
    broker.stop()
    time.sleep(2)
    broker.start()
    backend.wait_for(lambda t, d, r: t.endswith("telemetry") and d["seq"] >= 6, timeout_s=40)
    seqs = sorted({d["seq"] for t, d, r in backend.seen if d and t.endswith("telemetry")})
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), seqs
    assert node.console().count("mqtt: connected") >= 2
    backend.close()


# Places after the point each value may carry on the wire: the sensor's resolution.
RESOLUTION = {"moisture": 1, "temp": 1, "humidity": 1, "soil_temp": 1, "wind_speed": 1, "wind_gust": 1, "ph": 2,
              "ec": 3, "n": 0, "p": 0, "k": 0}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_no_published_value_carries_more_digits_than_its_sensor_resolves(broker, nodes, runtime):
    backend = Backend(broker, ["farm/node-t1/telemetry"], client_id="backend-digits")
    nodes(broker, runtime)
    for _ in range(3):
        backend.wait_for(lambda t, d, r: True)
    backend.close()
    for payload in backend.raw:
        text = payload.decode()
        sensors = json.loads(text)["sensors"]
        assert set(RESOLUTION) >= {key for key in sensors if sensors[key] is not None}, sensors
        for key, number in re.findall(r'"(\w+)": (-?\d+(?:\.\d+)?)', text):
            if key in RESOLUTION:  # written with no more places than the sensor resolves
                places = len(number.split(".")[1]) if "." in number else 0
                assert places <= max(1, RESOLUTION[key]) and (RESOLUTION[key] or "." not in number), (key, number)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_quiet_umqtt_node_keeps_its_connection(broker, nodes, runtime):
    """umqtt.simple does not ping by itself: with readings far apart, the session pings
    or mosquitto would drop the node after 1.5 keepalives (3 s here)."""
    from pathlib import Path

    standin = Path(__file__).resolve().parents[1] / "umqtt_standin"
    backend = Backend(broker, ["farm/node-t1/status"], client_id="backend-quiet")
    node = nodes(broker, runtime, config={"interval_s": 60, "mqtt": {"client": "umqtt", "keepalive": 2}},
                 extra_path=[standin])
    backend.wait_for(is_status("online"))
    time.sleep(7)
    assert node.console().count("mqtt: connected") == 1 and "connection lost" not in node.console(), node.console()
    assert "exceeded timeout" not in broker.log(), broker.log()[-2000:]
    backend.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_relay_command_through_the_broker(broker, nodes, runtime):
    backend = Backend(broker, ["farm/node-t1/#"])
    nodes(broker, runtime, config={"interval_s": 60})
    backend.wait_for(is_status("online"))
    command = {"command_id": "c-42", "command": "relay",
               "parameters": {"relay": "irrigation", "state": "on", "duration_s": 2}}
    backend.client.publish("farm/node-t1/commands", json.dumps(command), qos=1)
    answer = backend.wait_for(lambda t, d, r: t.endswith("command_response"))
    assert answer["success"] and answer["command_id"] == "c-42" and answer["response"]["off_in_s"] == 2
    on = backend.wait_for(lambda t, d, r: t.endswith("telemetry") and d["relays"]["irrigation"] == 1)
    off = backend.wait_for(lambda t, d, r: t.endswith("telemetry") and d["relays"]["irrigation"] == 0, timeout_s=6)
    assert off["seq"] > on["seq"]  # switched off by itself, published at once
    backend.client.publish("farm/node-t1/commands", b"{not json", qos=1)
    refused = backend.wait_for(lambda t, d, r: t.endswith("command_response") and not d["success"])
    assert "not JSON" in refused["error"]
    backend.close()
