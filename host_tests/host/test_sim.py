"""`farmctl sim`, the README's first command: three nodes' telemetry within seconds."""
import argparse
import io
import re
import subprocess
import sys
import time
from pathlib import Path

from farmctl.sim import Settings, next_steps


def test_sim_shows_three_nodes_telemetry_then_stops_everything(tmp_path):
    done = subprocess.run([sys.executable, "-m", "farmctl", "sim", "--duration", "8", "--interval", "1"],
                          capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for device in ("node-01", "node-02", "node-03"):
        assert f"{device} telemetry moist%=" in out, out
    assert "broker 127.0.0.1:" in out and "3 nodes (micropython, profile farmnode)" in out
    table = out[out.rindex("device "):]
    assert table.count("node-0") == 3
    workdir = out.split("files in ")[1].split(";")[0]
    leftovers = subprocess.run(["pgrep", "-f", workdir], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "nodes left running"


def test_sim_with_a_profile_and_the_cpython_runtime(tmp_path):
    done = subprocess.run([sys.executable, "-m", "farmctl", "sim", "--devices", "2", "--runtime", "cpython",
                           "--profile", "harit", "--duration", "6", "--interval", "1"],
                          capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "node-01 telemetry" in done.stdout and "node-02 telemetry" in done.stdout, done.stdout


def test_a_users_files_are_given_to_every_node_with_what_a_sim_cannot_use_left_out(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"farm_id": "north", "profile": "dese", "interval_s": 20, "mqtt": {"tls": true}, '
                      '"relays": {"irrigation": {"pin": 26, "max_on_s": 300}}}')
    secrets = tmp_path / "secrets.json"
    secrets.write_text('{"wifi": {"ssid": "barn", "password": "hay12345"}, "signing": {"key": "%s"}, '
                       '"mqtt": {"host": "mqtt.example.org", "port": 8883, "user": "n1", "password": "pw", '
                       '"ca": "/ca.pem", "client": "umqtt"}}' % ("3c" * 32))
    out = io.StringIO()
    settings = Settings(argparse.Namespace(config=str(config), secrets=str(secrets), profile=None, interval=None),
                        out)
    node_config, node_secrets = settings.node(2, "127.0.0.1", 4321)
    assert settings.profile == "dese" and node_config["interval_s"] == 20
    assert node_config["device_id"] == "node-02" and node_config["farm_id"] == "north"
    assert node_config["relays"]["irrigation"]["max_on_s"] == 300 and node_config["mqtt"]["tls"] is False
    assert node_secrets["wifi"]["ssid"] == "barn" and node_secrets["signing"]["key"] == "3c" * 32
    assert node_secrets["mqtt"] == {"host": "127.0.0.1", "port": 4321, "user": "n1", "password": "pw",
                                    "tls": False, "ca": "", "client": "farmnode"}
    assert "not simulated: mqtt.ca, mqtt.client, mqtt.tls" in out.getvalue()
    override = Settings(argparse.Namespace(config=str(config), secrets=None, profile="harit", interval=5), out)
    assert override.profile == "harit" and override.node(1, "h", 1)[0]["interval_s"] == 5


def test_the_hint_says_how_to_see_the_farm_in_home_assistant(tmp_path):
    def hint(profile, config=None):
        path = tmp_path / f"{profile}.json"
        path.write_text(__import__("json").dumps(config or {}))
        settings = Settings(argparse.Namespace(config=str(path), secrets=None, profile=profile, interval=None),
                            io.StringIO())
        return next_steps(settings, "127.0.0.1", 4321, tmp_path / "field.json")

    assert "Home Assistant: add its MQTT integration with broker 127.0.0.1 port 4321" in hint("farmnode")
    assert "Home Assistant" not in hint("farmnode", {"homeassistant": {"discovery": False}})
    assert "Home Assistant" not in hint("iotnode")  # a seed profile: no discovery


def test_the_autonomous_example_irrigates_through_a_broker_outage_and_its_alerts_arrive_after(tmp_path):
    """examples/autonomous.json with --outage: the field dries while the sim's broker is
    stopped, the node's rule irrigates it anyway, and the start and stop arrive once the
    broker is back, in order, after the table's own view of the outage."""
    field = tmp_path / "field.json"
    field.write_text('{"moisture": 50}')
    example = Path(__file__).resolve().parents[2] / "examples" / "autonomous.json"
    log = tmp_path / "sim.log"
    with open(log, "w") as out:
        sim = subprocess.Popen([sys.executable, "-m", "farmctl", "sim", "--config", str(example), "--devices", "1",
                                "--runtime", "cpython", "--field", str(field), "--duration", "45",
                                "--outage", "8:20"], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            # Steered by the sim's own clock (its start takes longer on a loaded machine).
            deadline = time.monotonic() + 30
            while "outage: broker stopped" not in log.read_text():
                assert time.monotonic() < deadline and sim.poll() is None, log.read_text()
                time.sleep(0.2)
            time.sleep(2)
            field.write_text('{"moisture": 40}')  # dry: the rule starts, with no broker to ask
            time.sleep(8)
            field.write_text('{"moisture": 50}')  # wet: it stops, 10 s before the broker is back
            assert sim.wait(90) == 0, log.read_text()
        finally:
            sim.kill()
    text = log.read_text()
    back = text.index("outage: broker back")
    assert text.index("outage: broker stopped") < back, text
    # The probe's reading carries a little noise: 40 may be read as 39.8.
    started = re.search(r"node-01 alert info: irrigation started: dry: moisture (39|40)\.\d < 46", text)
    stopped = re.search(r"node-01 alert info: irrigation stopped: dry: moisture (49|50)\.\d > 47\.5", text)
    assert started and stopped and back < started.start() < stopped.start(), text
    watered = [line for line in text[back:].splitlines()
               if line.startswith("node-01 telemetry") and "irrigation=1 " in line
               and re.search(r" moist%=(39|40)\.\d", line)]
    assert watered, text  # the readings of the outage, with the valve open, arrived too
