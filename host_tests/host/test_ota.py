"""OTA of application files end to end, under both runtimes: a deployed virtual node
(its firmware and lib/ copied into its own filesystem, as on a device) gets the `ota`
command through mosquitto and downloads from an HTTP server on loopback. A good update
is swapped in at the restart and kept once it reaches the broker; a bad hash, a
truncated download, a server that resets or goes silent mid-download change nothing;
an update that crashes at import is rolled back after three boots."""
import json
import time

import pytest

from backend import Backend
from farmsim.runtime import ROOT
from fileserver import FileServer

RUNTIMES = ("micropython", "cpython")


@pytest.fixture
def files():
    server = FileServer()
    yield server
    server.close()


def source(path):
    return (ROOT / path).read_bytes()


def new_version(version):
    text = source("firmware/__init__.py").decode()
    return text.replace('VERSION = "0.1.0"', f'VERSION = "{version}"').encode()


def command(backend, command_id, name, parameters=None):
    backend.client.publish("farm/node-t1/commands", json.dumps(
        {"command_id": command_id, "command": name, "parameters": parameters or {}}), qos=1)
    return backend.wait_for(lambda t, d, r: t == "farm/node-t1/command_response" and d["command_id"] == command_id,
                            timeout_s=30)


def is_online(topic, data, retain):
    return topic == "farm/node-t1/status" and data and data.get("status") == "online"


def deployed_node(broker, nodes, runtime, interval_s):
    """A backend and a node whose firmware is in its own filesystem, once it is online."""
    backend = Backend(broker, ["farm/#"])
    node = nodes(broker, runtime, config={"interval_s": interval_s}, deployed=True)
    backend.wait_for(is_online)
    return backend, node


def wait_exit(node, timeout_s=15):
    deadline = time.monotonic() + timeout_s
    while node.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not node.running(), "the node did not restart"


def test_version_is_where_the_tests_expect_it():
    assert b'VERSION = "0.1.0"' in source("firmware/__init__.py")  # new_version() replaces it


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_good_update_is_swapped_in_at_restart_and_kept_once_online(broker, nodes, files, runtime):
    backend, node = deployed_node(broker, nodes, runtime, interval_s=5)
    update = files.publish_update("v011", {"firmware/__init__.py": new_version("0.1.1"),
                                           "lib/ota_note.py": b"NOTE = 'added by 0.1.1'\n"}, "0.1.1")
    answer = command(backend, "ota-1", "ota", update)
    assert answer["success"] is True, answer
    assert answer["response"] == {"version": "0.1.1", "files": 2, "restarting": True}
    assert backend.wait_for(lambda t, d, r: t == "farm/node-t1/status" and d["status"] == "offline")["reason"] == "restart"
    wait_exit(node)
    assert (node.root / "firmware/__init__.py").read_bytes() == source("firmware/__init__.py")  # not yet
    node.start()  # the device's reset
    online = backend.wait_for(is_online)
    assert online["firmware_version"] == "0.1.1"
    alert = backend.wait_for(lambda t, d, r: t == "farm/node-t1/alert" and d.get("rule") == "ota")
    assert alert["message"] == "ota: updated 0.1.1" and alert["severity"] == "info"
    assert (node.root / "lib/ota_note.py").exists()
    assert not (node.root / "ota-files/trial.json").exists() and not (node.root / "ota-files/old").exists()
    node.stop()
    node.start()  # kept over later boots
    assert backend.wait_for(is_online)["firmware_version"] == "0.1.1"
    backend.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_bad_or_broken_download_changes_nothing(broker, nodes, files, runtime):
    backend, node = deployed_node(broker, nodes, runtime, interval_s=1)
    body = new_version("0.1.2") + b"# " + b"x" * 6000 + b"\n"  # several buffers long
    cases = {
        "hash": ({"wrong_hash": ("firmware/__init__.py",)}, "sha256 does not match"),
        "trunc": ({"modes": {"firmware/__init__.py": "truncate"}}, "truncated"),
        "reset": ({"modes": {"firmware/__init__.py": "reset"}}, "download failed"),
        "stall": ({"modes": {"firmware/__init__.py": "stall"}}, "no data for 10 s"),
    }
    for name, (options, reason) in cases.items():
        update = files.publish_update(name, {"firmware/__init__.py": body}, "0.1.2", **options)
        answer = command(backend, f"ota-{name}", "ota", update)
        assert answer["success"] is False and reason in answer["error"], (name, answer)
        assert (node.root / "firmware/__init__.py").read_bytes() == source("firmware/__init__.py")
        assert not (node.root / "ota-files/new").exists() and not (node.root / "ota-files/new/manifest.json").exists()
    gone = command(backend, "ota-gone", "ota", {"url": files.url("/nothing/manifest.json"), "sha256": "0" * 64})
    assert gone["success"] is False and "HTTP 404" in gone["error"]
    refused = command(backend, "ota-url", "ota", {"url": "ftp://example/manifest.json", "sha256": "0" * 64})
    assert refused["success"] is False and "http://" in refused["error"]
    manifest = files.publish_update("mf", {"firmware/__init__.py": body}, "0.1.2")
    manifest["sha256"] = "f" * 64
    assert "manifest sha256" in command(backend, "ota-mf", "ota", manifest)["error"]
    huge = files.publish_update("huge", {"firmware/__init__.py": body}, "0.1.2", claimed_size=10 ** 13)
    assert "the flash has" in command(backend, "ota-huge", "ota", huge)["error"]
    assert "/huge/firmware/__init__.py" not in files.requests  # refused before downloading
    escape = files.publish_update("esc", {"../boot.py": b"x"}, "0.1.2")
    assert "leaves the application folders" in command(backend, "ota-esc", "ota", escape)["error"]
    assert node.running() and "Traceback" not in node.console()
    assert command(backend, "ping-1", "ping")["success"] is True
    seq = backend.wait_for(lambda t, d, r: t == "farm/node-t1/telemetry")["seq"]
    backend.wait_for(lambda t, d, r: t == "farm/node-t1/telemetry" and d["seq"] > seq)  # still reporting
    backend.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_update_that_crashes_at_import_is_rolled_back_after_three_boots(broker, nodes, files, runtime):
    backend, node = deployed_node(broker, nodes, runtime, interval_s=5)
    broken = source("firmware/node.py") + b"\nraise RuntimeError('broken build')\n"
    update = files.publish_update("bad", {"firmware/node.py": broken, "firmware/__init__.py": new_version("0.9.0")},
                                  "0.9.0")
    assert command(backend, "ota-bad", "ota", update)["success"] is True
    wait_exit(node)
    crashes = 0
    for _ in range(3):  # each boot on trial dies at import, as a device would reset
        node.start()
        wait_exit(node)
        crashes += 1
    assert crashes == 3 and node.console().count("RuntimeError: broken build") == 3
    node.start()  # the fourth boot gives up on the update
    online = backend.wait_for(is_online)
    assert online["firmware_version"] == "0.1.0"
    alert = backend.wait_for(lambda t, d, r: t == "farm/node-t1/alert" and d.get("rule") == "ota")
    assert alert["message"] == "ota: rolled_back 0.9.0" and alert["severity"] == "warning"
    assert (node.root / "firmware/node.py").read_bytes() == source("firmware/node.py")
    assert not (node.root / "ota-files/trial.json").exists()
    backend.close()
