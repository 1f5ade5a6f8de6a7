"""`farmctl provision`: the files it writes, their modes, the ACL of each profile, and
re-runs that add devices without changing what exists. (Mosquitto running on its
output, with the nodes, is test_security.py.)"""
import json
import stat
import subprocess

import pytest

from farmctl.cli import main
from farmctl.deploy import checked_config
from farmctl.provision import (_new_password, backend_acl_text, certificate_hosts, device_acl_text,
                               device_config, hash_password, password_matches, read_password_file)


def provision(capsys, out, *argv):
    """(exit status, stdout, stderr) of `farmctl provision out ...`."""
    status = main(["provision", str(out), *map(str, argv)])
    printed = capsys.readouterr()
    return status, printed.out, printed.err


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(out):
    """Every file's bytes under out, by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_files_modes_and_fragments(tmp_path, capsys):
    out = tmp_path / "fleet"
    status, printed, _ = provision(capsys, out, "--device", "node-a,node-b", "--signing", "--host", "broker.lan",
                                   "--host", "10.0.0.5", "--port", "8885", "--backend-port", "8886")
    assert status == 0 and "2 new: node-a, node-b" in printed
    for name in ("ca.key", "server.key", "passwd", "backend.passwd", "backend.json", "devices/node-a/secrets.json"):
        assert mode(out / name) == 0o600, name
    for name in ("ca.crt", "server.crt", "acl", "backend.acl", "mosquitto.conf", "devices/node-a/config.json",
                 "devices/node-a/ca.crt"):
        assert mode(out / name) == 0o644, name
    assert mode(out) == 0o700 and mode(out / "devices" / "node-a") == 0o700
    assert not list(out.glob("*.tmp")) and not list(out.glob("server.csr"))

    secrets = json.loads((out / "devices/node-a/secrets.json").read_text())
    assert secrets["mqtt"] == {"host": "broker.lan", "port": 8885, "user": "node-a", "tls": True, "ca": "ca.crt",
                               "password": secrets["mqtt"]["password"]}
    assert len(secrets["mqtt"]["password"]) == 24 and len(secrets["signing"]["key"]) == 64
    other = json.loads((out / "devices/node-b/secrets.json").read_text())
    assert other["mqtt"]["password"] != secrets["mqtt"]["password"]
    assert other["signing"]["key"] != secrets["signing"]["key"]
    config = json.loads((out / "devices/node-a/config.json").read_text())
    assert config["device_id"] == "node-a" and config["profile"] == "farmnode"
    for name in ("config.json", "secrets.json"):  # what `farmctl deploy` sends, as the device checks it
        checked_config(out / "devices/node-a" / name)
    assert (out / "devices/node-a/ca.crt").read_bytes() == (out / "ca.crt").read_bytes()

    entries = read_password_file(out / "passwd")
    backend_entries = read_password_file(out / "backend.passwd")
    backend = json.loads((out / "backend.json").read_text())
    assert set(entries) == {"node-a", "node-b"} and set(backend_entries) == {"backend"}
    assert backend["broker"] == "broker.lan:8886"  # the backend's listener
    assert password_matches(entries["node-a"], secrets["mqtt"]["password"])
    assert password_matches(backend_entries["backend"], backend["password"])
    assert not password_matches(entries["node-b"], secrets["mqtt"]["password"])

    # Two listeners, each with its accounts: the devices', where a device's client id is its
    # user name, and the backend's.
    conf = (out / "mosquitto.conf").read_text().splitlines()
    listeners = [i for i, line in enumerate(conf) if line.startswith("listener ")]
    assert conf.index("per_listener_settings true") < listeners[0] and "set_tcp_nodelay true" in conf
    devices, backend_side = conf[listeners[0]:listeners[1]], conf[listeners[1]:]
    for section, lines in ((devices, ["listener 8885", f"password_file {out.resolve()}/passwd",
                                      f"acl_file {out.resolve()}/acl", "use_username_as_clientid true"]),
                           (backend_side, ["listener 8886", f"password_file {out.resolve()}/backend.passwd",
                                           f"acl_file {out.resolve()}/backend.acl"])):
        for line in lines + [f"certfile {out.resolve()}/server.crt", f"keyfile {out.resolve()}/server.key",
                             "allow_anonymous false"]:
            assert line in section, line
    assert "use_username_as_clientid true" not in backend_side  # several backend clients, ids of their own
    assert certificate_hosts(out / "server.crt") == {"broker.lan", "10.0.0.5"}
    ca_text = subprocess.run(["openssl", "x509", "-in", str(out / "ca.crt"), "-noout", "-text"],
                             capture_output=True, text=True, check=True).stdout
    assert "CA:TRUE" in ca_text and "prime256v1" in ca_text
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(out / "ca.crt"), str(out / "server.crt")],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr


def test_a_rerun_adds_devices_and_changes_nothing_else(tmp_path, capsys):
    out = tmp_path / "fleet"
    provision(capsys, out, "--device", "node-a", "--signing", "--port", "8885")
    before = snapshot(out)
    assert provision(capsys, out)[0] == 0  # nothing new: everything as it was, byte for byte
    assert snapshot(out) == before
    devices = tmp_path / "more.txt"
    devices.write_text("# the north field\nnode-b\n\nnode-c  # by the pump\n")
    status, printed, _ = provision(capsys, out, "--devices-file", devices)
    assert status == 0 and "3 devices (2 new: node-b, node-c)" in printed
    after = snapshot(out)
    for name in ("ca.crt", "ca.key", "server.crt", "server.key", "backend.json", "backend.passwd",
                 "devices/node-a/secrets.json"):
        assert after[name] == before[name], name
    assert json.loads(after["devices/node-a/secrets.json"])["mqtt"]["port"] == 8885  # the settings are kept
    old_entry = read_password_file(out / "passwd")["node-a"]
    assert old_entry in before["passwd"].decode()
    assert "signing" not in json.loads(after["devices/node-b/secrets.json"])  # only with --signing
    assert "user node-c" in after["acl"].decode()


def test_a_folder_from_before_the_backend_listener_keeps_the_backends_password(tmp_path, capsys):
    out = tmp_path / "fleet"
    provision(capsys, out, "--device", "node-a")
    entry = (out / "backend.passwd").read_text()
    with open(out / "passwd", "a") as old_passwd:  # as it was: the backend's entry with the devices'
        old_passwd.write(entry)
    (out / "backend.passwd").unlink()
    assert provision(capsys, out)[0] == 0
    assert (out / "backend.passwd").read_text() == entry  # the same hash: no churn
    assert set(read_password_file(out / "passwd")) == {"node-a"}


def test_rotate_gives_new_secrets_to_the_devices_named(tmp_path, capsys):
    out = tmp_path / "fleet"
    provision(capsys, out, "--device", "node-a,node-b", "--signing")
    before = snapshot(out)
    status, printed, _ = provision(capsys, out, "--device", "node-a", "--rotate")
    assert status == 0 and "new passwords for node-a" in printed
    after = snapshot(out)
    old, new = (json.loads(s["devices/node-a/secrets.json"]) for s in (before, after))
    assert new["mqtt"]["password"] != old["mqtt"]["password"] and new["signing"]["key"] != old["signing"]["key"]
    assert after["devices/node-b/secrets.json"] == before["devices/node-b/secrets.json"]
    assert after["backend.json"] == before["backend.json"] and after["ca.key"] == before["ca.key"]
    assert after["backend.passwd"] == before["backend.passwd"]
    entries = read_password_file(out / "passwd")
    assert password_matches(entries["node-a"], new["mqtt"]["password"])
    assert not password_matches(entries["node-a"], old["mqtt"]["password"])
    provision(capsys, out, "--rotate-backend")
    rotated = snapshot(out)
    assert rotated["backend.json"] != after["backend.json"] and rotated["backend.passwd"] != after["backend.passwd"]
    assert password_matches(read_password_file(out / "backend.passwd")["backend"],
                            json.loads(rotated["backend.json"])["password"])


def test_new_host_names_make_a_new_server_certificate_under_the_same_ca(tmp_path, capsys):
    out = tmp_path / "fleet"
    provision(capsys, out, "--device", "node-a")
    before = snapshot(out)
    assert certificate_hosts(out / "server.crt") == {"localhost", "127.0.0.1"}
    provision(capsys, out, "--host", "mqtt.farm.example")
    after = snapshot(out)
    assert after["server.key"] != before["server.key"] and after["ca.crt"] == before["ca.crt"]
    assert certificate_hosts(out / "server.crt") == {"mqtt.farm.example"}
    assert json.loads(after["devices/node-a/secrets.json"])["mqtt"]["host"] == "mqtt.farm.example"


def identity(device_id, profile):
    return device_config(device_id, profile, "farm", "f1", "o1")


# profile: (device n1's ACL section, the backend's section), as PROTOCOL.md's topics say.
EXPECTED_ACL = {
    # Home Assistant discovery: its own device config, Home Assistant's status; nothing else under the prefix
    "farmnode": (["topic write farm/n1/telemetry", "topic write farm/n1/status", "topic write farm/n1/command_response",
                  "topic write farm/n1/alert", "topic write homeassistant/device/n1/config",
                  "topic read farm/n1/commands", "topic read farm/all/commands",
                  "topic read farm/n1/config", "topic read homeassistant/status"],
                 ["topic read farm/+/alert", "topic read farm/+/command_response", "topic read farm/+/status",
                  "topic read farm/+/telemetry", "topic read homeassistant/device/+/config",
                  "topic write farm/+/commands", "topic write farm/+/config",
                  "topic write farm/all/commands", "topic write homeassistant/status"]),
    "smartfarm": (["topic write farm/telemetry", "topic write farm/f1/status", "topic read farm/f1/commands"],
                  ["topic read farm/f1/status", "topic read farm/telemetry", "topic write farm/f1/commands"]),
    "plantnanny": (["topic write devices/n1/data", "topic write devices/n1/status", "topic read devices/n1/command"],
                   ["topic read devices/+/data", "topic read devices/+/status", "topic write devices/+/command"]),
    "harit": (["topic write harit-samarth/sensor/data", "topic write harit-samarth/status"],
              ["topic read harit-samarth/sensor/data", "topic read harit-samarth/status"]),
    "iotnode": (["topic write iot/node/n1/telemetry", "topic write iot/node/n1/status",
                 "topic read iot/node/n1/command"],
                ["topic read iot/node/+/status", "topic read iot/node/+/telemetry", "topic write iot/node/+/command"]),
    "dese": (["topic write devices/o1/n1/telemetry", "topic write devices/o1/n1/status",
              "topic write devices/o1/n1/command_response", "topic write devices/o1/n1/alert",
              "topic read devices/o1/n1/commands", "topic read devices/o1/n1/config"],
             ["topic read devices/o1/+/alert", "topic read devices/o1/+/command_response",
              "topic read devices/o1/+/status", "topic read devices/o1/+/telemetry",
              "topic write devices/o1/+/commands", "topic write devices/o1/+/config"]),
}
SHARED = {"smartfarm": "farm/telemetry, farm/f1/status, farm/f1/commands",
          "harit": "harit-samarth/sensor/data, harit-samarth/status"}


def section(text, user):
    """The topic lines under `user NAME` in an ACL."""
    lines = text.splitlines()
    start = lines.index(f"user {user}") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("topic ")), len(lines))
    return lines[start:end]


@pytest.mark.parametrize("profile", sorted(EXPECTED_ACL))
def test_the_acl_follows_each_profiles_topics(profile):
    device, backend = EXPECTED_ACL[profile]
    configs = [identity("n1", profile), identity("n2", profile)]
    text = device_acl_text(configs)
    assert section(text, "n1") == device
    assert section(text, "n2") == [line.replace("/n1/", "/n2/") for line in device]
    assert "user ops" not in text  # each listener's ACL names its own accounts only
    backend_text = backend_acl_text(configs, "ops")
    assert section(backend_text, "ops") == backend and "user n1" not in backend_text
    if profile in SHARED:
        assert f"# shared with other devices, so not protected from them: {SHARED[profile]}" in text
    else:
        assert "shared" not in text


def test_the_warning_names_shared_topics(tmp_path, capsys):
    status, printed, _ = provision(capsys, tmp_path / "f", "--device", "n1", "--profile", "smartfarm", "--farm", "f1")
    assert status == 0
    assert "warning: n1 (profile smartfarm) shares farm/telemetry, farm/f1/status, farm/f1/commands" in printed


@pytest.mark.parametrize("argv, message", [
    (["--device", "n1", "--profile", "smartfarm"], "topic farm/{farm_id}/status needs --farm"),
    (["--device", "n1", "--profile", "dese"], "needs --org"),
    (["--device", "node/7"], "device node/7: device_id: may only hold letters"),
    (["--device", "n1", "--prefix", "farm/#"], "mqtt.prefix: must be a non-empty topic level"),
    (["--device", "n1", "--backend", "n1"], "'n1' is both a device and the backend account"),
    (["--device", "n1", "--backend", "ops:1"], "backend account 'ops:1': may only hold letters"),
    (["--device", "all"], "its commands topic would be the broadcast topic"),
    (["--device", "n1", "--port", "8884"], "both are on port 8884"),
    (["--device", "n1", "--backend-port", "70000"], "--backend-port must be between 1 and 65535"),
    ([], "no devices"),
])
def test_bad_requests_write_nothing(tmp_path, capsys, argv, message):
    status, _, err = provision(capsys, tmp_path / "f", *argv)
    assert status == 1 and message in err, err
    assert not (tmp_path / "f").exists()


def test_password_hashes_are_mosquittos_format(tmp_path):
    entry = hash_password("s3cret")
    parts = entry.split("$")
    assert parts[:3] == ["", "7", "101"] and len(parts[3]) == 16 and len(parts[4]) == 88
    assert password_matches(entry, "s3cret") and not password_matches(entry, "s3cret ")
    assert hash_password("s3cret") != entry  # a new salt each time
    # And the other way round: mosquitto_passwd's own entry is read as mosquitto reads it.
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(tmp_path / "p"), "u", "pw"], check=True, timeout=30)
    theirs = read_password_file(tmp_path / "p")["u"]
    assert password_matches(theirs, "pw") and not password_matches(theirs, "pW")
    assert not password_matches("$6$abc$def", "pw") and not password_matches("$7$x$!!$y", "pw")


def test_a_new_password_never_starts_with_a_dash(monkeypatch):
    # "--password -x..." on a command line would read as an option.
    drawn = iter(["-starts-with-a-dash", "_fine-after-all"])
    monkeypatch.setattr("secrets.token_urlsafe", lambda n: next(drawn))
    assert _new_password() == "_fine-after-all"
