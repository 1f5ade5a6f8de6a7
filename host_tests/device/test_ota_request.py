# The ota command's checks of an update before anything is downloaded, on a node with
# its firmware on the filesystem and on one whose firmware is frozen into the image
# (firmware.FROZEN): there an update can only bring a whole firmware/ package.
import hashlib
import json

import firmware
from nodekit import make_node, send
from scripted_broker import ScriptedBroker
from testkit import drive

SHA = "0" * 64


def _served(manifest):
    """A one-request HTTP server for manifest; the ota command's parameters for it."""
    body = json.dumps(manifest).encode()
    peer = ScriptedBroker([("request",), ("send", b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body),
                           ("sleep", 100), ("close",)])
    digest = "".join("%02x" % b for b in hashlib.sha256(body).digest())
    return peer, {"url": "http://127.0.0.1:%d/manifest.json" % peer.port, "sha256": digest}


def _ota(node, manifest, frozen):
    """The ota command's answer for manifest, the firmware taken as frozen or not."""
    peer, params = _served(manifest)
    command_id = "u%d" % len(node.link.session.sent)  # each its own: a repeated id is answered, not run
    was = firmware.FROZEN
    firmware.FROZEN = frozen
    try:
        send(node, {"command_id": command_id, "command": "ota", "parameters": params})
        job = node.dispatcher.job
        if job is not None:
            drive(_steps_of(node))
    finally:
        firmware.FROZEN = was
    peer.wait()
    return [a for a in node.link.session.on("farm/n1/command_response") if a["command_id"] == command_id][-1]


def _steps_of(node):
    while node.dispatcher.job is not None:
        node.dispatcher.step_job()
        yield


def _file(path):
    return {"path": path, "sha256": SHA, "size": 10}


def test_a_frozen_firmware_takes_no_update_of_lib():
    _, node = make_node()
    answer = _ota(node, {"version": "9", "files": [_file("firmware/__init__.mpy"), _file("lib/ticks.mpy")]}, True)
    assert not answer["success"] and "'lib/ticks.mpy' is not under firmware/" in answer["error"]


def test_a_frozen_firmware_takes_a_whole_package_only():
    _, node = make_node()
    answer = _ota(node, {"version": "9", "files": [_file("firmware/node.mpy")]}, True)
    assert not answer["success"] and "no firmware/__init__.* file" in answer["error"]
    # with its __init__ the manifest passes; the download is what fails here (no such file)
    answer = _ota(node, {"version": "9", "files": [_file("firmware/__init__.mpy"), _file("firmware/node.mpy")]},
                  True)
    assert not answer["success"] and "manifest" not in answer["error"]


def test_firmware_on_the_filesystem_may_update_lib_alone():
    _, node = make_node()
    answer = _ota(node, {"version": "9", "files": [_file("lib/ticks.mpy")]}, False)
    assert not answer["success"] and "manifest" not in answer["error"]  # past the checks, to the download
