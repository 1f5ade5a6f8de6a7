"""`farmctl deploy`'s settings files without a device: the config, the secrets and the
broker's CA that secrets.json names, and the refusals that come before the device is
touched. (Deployments to a virtual device are in test_vdev.py.)"""
import ast
import hashlib
import json
import subprocess

import pytest

from farmctl.cli import main
from farmctl.deploy import (DEVICE_FILES_SNIPPET, ENTRY_POINTS, FROZEN_VERSION_SNIPPET, DeployError, build, deploy,
                            settings_files)
from farmsim.runtime import find_micropython

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"


def settings(folder, mqtt, ca=PEM, ca_name="ca.crt"):
    """config.json and secrets.json (with mqtt) in folder, and the CA beside them unless ca is None."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"device_id": "node-7"}))
    (folder / "secrets.json").write_text(json.dumps({"mqtt": dict({"host": "broker.lan", "port": 8883}, **mqtt)}))
    if ca is not None:
        (folder / ca_name).write_bytes(ca)
    return folder / "config.json", folder / "secrets.json"


def test_the_ca_that_the_secrets_name_goes_with_them(tmp_path):
    config, secrets = settings(tmp_path / "a", {"tls": True, "ca": "ca.crt"})
    files = settings_files(config, secrets)
    assert sorted(files) == ["ca.crt", "config.json", "secrets.json"] and files["ca.crt"] == PEM
    assert json.loads(files["secrets.json"])["mqtt"]["ca"] == "ca.crt"
    # An absolute device path, and the CA from elsewhere.
    config, secrets = settings(tmp_path / "b", {"tls": True, "ca": "/certs/fleet.pem"}, ca=None)
    elsewhere = tmp_path / "fleet-ca.pem"
    elsewhere.write_bytes(PEM)
    assert settings_files(config, secrets, ca_path=elsewhere)["certs/fleet.pem"] == PEM
    # No TLS, or TLS without a CA: nothing more to send.
    config, secrets = settings(tmp_path / "c", {"tls": False, "ca": "ca.crt"}, ca=None)
    assert sorted(settings_files(config, secrets)) == ["config.json", "secrets.json"]
    config, secrets = settings(tmp_path / "d", {"tls": True})
    assert sorted(settings_files(config, secrets)) == ["config.json", "secrets.json"]


@pytest.mark.parametrize("mqtt, ca, extra, message", [
    ({"tls": True, "ca": "ca.crt"}, None, [], "mqtt.tls is on and mqtt.ca is ca.crt, but the CA cannot be read"),
    ({"tls": True, "ca": "ca.crt"}, b"not a certificate", [], "is not a certificate (PEM or DER)"),
    ({"tls": True, "ca": "../ca.crt"}, PEM, [], "mqtt.ca '../ca.crt' is not a path on the device"),
    ({"tls": False}, PEM, ["--ca", "ca.crt"], "the settings deployed do not use a CA"),
])
def test_a_missing_or_wrong_ca_is_refused_before_the_device_is_touched(tmp_path, capsys, mqtt, ca, extra, message):
    config, secrets = settings(tmp_path, mqtt, ca=ca)
    extra = [str(tmp_path / arg) if arg == "ca.crt" else arg for arg in extra]
    # The port does not exist: a refusal that came after opening it would say "no MicroPython REPL".
    status = main(["deploy", "--port", str(tmp_path / "no-such-port"), "--config", str(config),
                   "--secrets", str(secrets), *extra])
    err = capsys.readouterr().err
    assert status == 1 and message in err and "REPL" not in err, err


def test_tls_without_a_ca_is_deployed_with_a_warning(tmp_path, capsys):
    config, secrets = settings(tmp_path, {"tls": True}, ca=None)
    with pytest.raises(DeployError, match="no MicroPython REPL"):  # went on to the device
        deploy(str(tmp_path / "no-such-port"), config, secrets)
    assert "mqtt.tls without mqtt.ca: the device will not check the broker's certificate" in capsys.readouterr().out


def test_the_device_reports_the_cas_sha256_so_an_unchanged_ca_is_not_sent_again(tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "fleet.pem").write_bytes(PEM)
    (tmp_path / "boot.py").write_text("# boot\n")
    snippet = DEVICE_FILES_SNIPPET % ((*ENTRY_POINTS, "certs/fleet.pem"),)
    result = subprocess.run([find_micropython(), "-c", snippet], cwd=tmp_path, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    reported = dict(ast.literal_eval(line) for line in result.stdout.splitlines()[1:])
    assert reported == {"boot.py": hashlib.sha256(b"# boot\n").hexdigest(),
                        "certs/fleet.pem": hashlib.sha256(PEM).hexdigest()}


def run_snippet(snippet, cwd):
    result = subprocess.run([find_micropython(), "-c", snippet], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_a_frozen_package_is_found_in_the_image_whatever_the_filesystem_holds(tmp_path):
    # The unix port has asyncio frozen in; firmware is not, even with a copy on the filesystem.
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "__init__.py").write_text("VERSION = 'files'\n")
    assert run_snippet(FROZEN_VERSION_SNIPPET % (("asyncio",) * 4), tmp_path) == "?"
    assert run_snippet(FROZEN_VERSION_SNIPPET % (("firmware",) * 4), tmp_path) is None
    assert run_snippet(FROZEN_VERSION_SNIPPET % (("firmware",) * 4) + "\nimport firmware\nprint(repr(firmware.VERSION))",
                       tmp_path) == "files"  # the device's own import path is as it was


class FakeDevice:
    """A device whose files, .mpy version and image are given; records what deploy does."""

    def __init__(self, on_device, frozen):
        self.on_device = on_device
        self.frozen = frozen
        self.written = {}
        self.removed = []
        self.was_reset = False

    def files(self, names):
        return 6 | (3 << 8), dict(self.on_device)

    def frozen_firmware(self):
        return self.frozen

    def write(self, path, data):
        self.written[path] = data

    def remove(self, path):
        self.removed.append(path)

    def reset(self):
        self.was_reset = True

    def close(self):
        pass


def test_on_an_image_with_the_firmware_frozen_in_only_the_entry_points_and_settings_go(tmp_path, capsys):
    config, secrets = settings(tmp_path, {"tls": False})
    device = FakeDevice({"firmware/node.mpy": "0" * 64, "lib/ticks.mpy": "1" * 64}, "0.1.0")
    deploy("fake", config, secrets, device=device)
    assert sorted(device.written) == ["boot.py", "config.json", "main.py", "secrets.json"]
    assert sorted(device.removed) == ["firmware/node.mpy", "lib/ticks.mpy"]  # they would shadow the image's
    assert device.was_reset
    assert "firmware 0.1.0 frozen in" in capsys.readouterr().out
    # --over-frozen: the firmware as files, imported instead of the image's
    device = FakeDevice({}, "0.1.0")
    deploy("fake", config, secrets, over_frozen=True, reset=False, device=device)
    assert "firmware/node.mpy" in device.written and "lib/mqtt_client.mpy" in device.written
    # no firmware in the image: the firmware goes as .mpy files, as always
    device = FakeDevice({}, None)
    deploy("fake", config, secrets, reset=False, device=device)
    assert "firmware/__init__.mpy" in device.written and not device.removed


@pytest.mark.parametrize("lines, shown", [(False, 'File "faulty.py", line 1, in divide'),
                                          (True, 'File "faulty.py", line 4, in divide')])
def test_mpy_files_leave_their_line_tables_off_unless_asked(tmp_path, lines, shown):
    # The tables cost heap on a stock image, which loads .mpy code into RAM: a traceback
    # still names the file and the function.
    source = tmp_path / "faulty.py"
    source.write_text("def divide(x):\n    # a comment\n    y = x + 1\n    return y / 0\n\n\ndivide(1)\n")
    files = build({"faulty.py": source}, tmp_path / "out", compiled=True, lines=lines)
    result = subprocess.run([find_micropython(), "-c", "import faulty"], cwd=files["faulty.mpy"].parent,
                            capture_output=True, text=True, timeout=30)
    assert shown in result.stdout and "ZeroDivisionError" in result.stdout, result.stdout + result.stderr
