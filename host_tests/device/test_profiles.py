# Profiles as data: each seed backend's topics and payload shapes from one canonical message.
from firmware.profiles import NAMES, Profile
from testkit import raises

IDENTITY = {"prefix": "farm", "device_id": "node-a1", "farm_id": "farm_001", "org_id": "org-9"}
SENSORS = {"moisture": 53.1, "temp": 26.1, "humidity": 41.9, "soil_temp": 18.4, "n": 38, "p": 15, "k": 152,
           "ec": 1.06, "ph": 6.8, "wind_speed": 20.6}
READING = {"device_id": "node-a1", "farm_id": "farm_001", "org_id": "org-9", "boot_id": "5f1c",
           "seq": 42, "ts": "2026-01-24T22:30:00Z", "unix": 1769293800, "uptime_s": 3600,
           "uptime_ms": 3600000, "npk_total": 205, "sensors": SENSORS, "relays": {"irrigation": 0},
           "errors": {}, "meta": {"rssi": -65, "heap_free": 61234, "firmware_version": "1.0.0", "dropped": 0}}
EXTRA = {"firmware_version": "1.0.0", "ts": "2026-01-24T22:30:00Z", "unix": 1769293800,
         "uptime_s": 3600, "rssi": -65, "message": "node-a1 online"}


def telemetry(name, reading=READING):
    return Profile(name, IDENTITY).telemetry(reading)


def test_every_profile_of_the_protocol_table_exists():
    assert sorted(NAMES) == ["dese", "farmnode", "harit", "iotnode", "plantnanny", "smartfarm"]
    assert str(raises(ValueError, Profile, "acme", IDENTITY)) == "unknown profile 'acme'"


def test_farmnode_topics_and_canonical_payload():
    profile = Profile("farmnode", IDENTITY)
    assert profile.topics["telemetry"] == "farm/node-a1/telemetry"
    assert profile.subscriptions() == ["farm/node-a1/commands", "farm/all/commands", "farm/node-a1/config"]
    assert telemetry("farmnode") == {k: READING[k] for k in ("device_id", "farm_id", "boot_id", "seq", "ts",
                                                            "uptime_s", "sensors", "relays", "errors", "meta")}
    info = {"status": "offline", "device_id": "node-a1", "reason": "lwt"}
    assert profile.status(info, EXTRA) == info  # exactly the protocol's Will


def test_smartfarm_flat_payload_within_the_seed_ranges():
    profile = Profile("smartfarm", IDENTITY)
    assert profile.topics["telemetry"] == "farm/telemetry" and profile.topics["status"] == "farm/farm_001/status"
    assert profile.subscriptions() == ["farm/farm_001/commands"]
    assert telemetry("smartfarm") == {"farm_id": "farm_001", "timestamp": "2026-01-24T22:30:00Z",
                                      "moisture": 53.1, "temp": 26.1, "soil_temp": 18.4, "humidity": 41.9, "npk": 205,
                                      "ec_salinity": 1.06, "wind_speed": 20.6, "soil_ph": 6.8}
    wild = dict(READING, npk_total=2400, sensors=dict(SENSORS, ec=25.0, wind_speed=151.0))
    out = telemetry("smartfarm", wild)
    assert out["npk"] is None and out["ec_salinity"] is None and out["wind_speed"] is None


def test_plantnanny_camel_case_epoch_and_millis():
    profile = Profile("plantnanny", IDENTITY)
    assert profile.topics["telemetry"] == "devices/node-a1/data"
    assert profile.topics["command_response"] is None
    out = telemetry("plantnanny")
    assert out["temperatureC"] == 26.1 and out["humidityPct"] == 41.9
    assert out["ts"] == 1769293800 and out["uptime"] == 3600000 and out["moisture"] == 53.1
    assert out["soil_temp"] == 18.4
    assert profile.status({"status": "online", "device_id": "node-a1"}, EXTRA) == {"status": "online"}


def test_harit_sensor_readings_with_the_seed_casing():
    profile = Profile("harit", IDENTITY)
    assert profile.topics["telemetry"] == "harit-samarth/sensor/data" and profile.subscriptions() == []
    out = telemetry("harit")
    assert out["publisher_id"] == "node-a1" and out["timestamp"] == "2026-01-24T22:30:00Z"
    assert out["sensor_readings"] == {"N": 38, "P": 15, "K": 152, "Temperature": 26.1,
                                      "Moisture": 53.1, "pH": 6.8}
    status = profile.status({"status": "online", "device_id": "node-a1"}, EXTRA)
    assert status == {"status": "online", "message": "node-a1 online", "timestamp": "2026-01-24T22:30:00Z",
                      "publisher_id": "node-a1"}


def test_iotnode_node_payload():
    profile = Profile("iotnode", IDENTITY)
    assert profile.topics["commands"] == "iot/node/node-a1/command"
    out = telemetry("iotnode")
    assert out["node_id"] == "node-a1" and out["timestamp"] == 1769293800
    assert out["sensors"]["temperature"] == 26.1 and out["sensors"]["humidity"] == 41.9
    assert out["sensors"]["soil_temp"] == 18.4
    assert out["wifi_rssi"] == -65 and out["uptime"] == 3600


def test_dese_tenant_topics_and_required_fields():
    profile = Profile("dese", IDENTITY)
    assert profile.topics["telemetry"] == "devices/org-9/node-a1/telemetry"
    assert profile.subscriptions() == ["devices/org-9/node-a1/commands", "devices/org-9/node-a1/config"]
    out = telemetry("dese")
    assert set(out) == {"device_id", "timestamp", "organization_id", "sensors", "metadata"}
    assert out["organization_id"] == "org-9"
    assert out["sensors"]["ph"] == 6.8 and out["sensors"]["temperature"] == 26.1
    assert out["sensors"]["soil_temp"] == 18.4  # an extra sensor, as moisture and N/P/K are
    assert "chlorine" in out["sensors"] and out["sensors"]["chlorine"] is None  # not measured
    assert out["metadata"] == {"battery": None, "signal_strength": -65, "firmware_version": "1.0.0"}
    assert telemetry("dese", dict(READING, sensors=dict(SENSORS, ph=15.0)))["sensors"]["ph"] is None
    status = profile.status({"status": "offline", "device_id": "node-a1", "reason": "lwt"}, EXTRA)
    assert status["status"] == "offline" and status["firmware_version"] == "1.0.0"
    assert status["timestamp"] == "2026-01-24T22:30:00Z"


def test_failed_sensor_stays_null_in_every_profile():
    failed = dict(READING, sensors=dict(SENSORS, temp=None))
    assert telemetry("smartfarm", failed)["temp"] is None
    assert telemetry("plantnanny", failed)["temperatureC"] is None
    assert telemetry("harit", failed)["sensor_readings"]["Temperature"] is None
    assert telemetry("iotnode", failed)["sensors"]["temperature"] is None
    assert telemetry("dese", failed)["sensors"]["temperature"] is None
    no_soil = dict(READING, sensors=dict(SENSORS, soil_temp=None))
    assert telemetry("smartfarm", no_soil)["soil_temp"] is None
    assert telemetry("dese", no_soil)["sensors"]["soil_temp"] is None
    assert "soil_temp" not in str(telemetry("harit"))  # seed 002's readings are a fixed set
