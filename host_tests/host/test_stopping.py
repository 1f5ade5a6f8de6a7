"""Nothing `farmctl sim`, `vdev` or `broker` started outlives it. SIGTERM, SIGINT and SIGHUP
stop it and everything it started within seconds, nodes saying offline as on a clean
shutdown; SIGKILL leaves its nodes (and its own broker) to notice by themselves."""
import signal
import subprocess
import sys
import time

import pytest

from backend import Backend
from proctree import descendants, kill_all, names, wait_gone

FARMCTL = [sys.executable, "-m", "farmctl"]
GONE_WITHIN_S = 5  # the bound: nothing alive 5 s after the simulator was killed


def start(args, tmp_path):
    log = open(tmp_path / "farmctl.log", "w")
    process = subprocess.Popen([*FARMCTL, *args], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    log.close()
    return process


def output(tmp_path):
    return (tmp_path / "farmctl.log").read_text(errors="replace")


def wait_for_output(process, tmp_path, text, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while text not in output(tmp_path):
        assert process.poll() is None, output(tmp_path)
        assert time.monotonic() < deadline, f"no {text!r} in {timeout_s} s:\n{output(tmp_path)}"
        time.sleep(0.1)


def started_by(process, at_least):
    pids = descendants(process.pid)
    assert len(pids) >= at_least, names(pids)
    return pids


def statuses(backend, devices, status, timeout_s=60):
    """{device: its status message} once each device said status (in any order)."""
    seen = {}

    def said(topic, data, retain):
        device = topic.split("/")[1]
        if device in devices and data["status"] == status:
            seen[device] = data
        return len(seen) == len(devices)

    backend.wait_for(said, timeout_s)
    return seen


@pytest.fixture
def leftovers():
    """Whatever a test found alive is killed at its end, so that a failure leaks nothing."""
    found = set()
    yield found
    kill_all(found, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
@pytest.mark.parametrize("per_process", [1, 2], ids=["solo", "fleet"])
def test_a_signal_stops_the_sim_and_its_nodes_say_offline(broker, tmp_path, leftovers, sig, per_process):
    backend = Backend(broker, ["farm/+/status"])
    try:
        sim = start(["sim", "--devices", "2", "--per-process", str(per_process), "--interval", "1",
                     "--broker", broker.address], tmp_path)
        statuses(backend, ("node-01", "node-02"), "online")
        children = started_by(sim, 1 if per_process == 2 else 2)
        leftovers.update(children | {sim.pid})
        sim.send_signal(sig)
        assert sim.wait(15) == 0, output(tmp_path)
        assert not wait_gone(children, 1), names(children)
        for last in statuses(backend, ("node-01", "node-02"), "offline", 15).values():
            assert last["reason"] == "stopped", last  # its own goodbye, not the broker's Will
    finally:
        backend.close()


@pytest.mark.parametrize("per_process", [1, 2], ids=["solo", "fleet"])
def test_nodes_and_broker_end_by_themselves_when_the_sim_is_killed(tmp_path, leftovers, per_process):
    sim = start(["sim", "--devices", "2", "--per-process", str(per_process), "--interval", "1"], tmp_path)
    wait_for_output(sim, tmp_path, "node-02 telemetry")
    wait_for_output(sim, tmp_path, "node-01 telemetry")
    children = started_by(sim, 2)  # mosquitto and the node processes
    leftovers.update(children)
    sim.kill()
    sim.wait(5)
    left = wait_gone(children, GONE_WITHIN_S)
    assert not left, names(left)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
def test_the_broker_command_takes_its_mosquitto_along(tmp_path, leftovers, sig):
    command = start(["broker"], tmp_path)
    wait_for_output(command, tmp_path, "mosquitto listening on")
    children = started_by(command, 1)
    leftovers.update(children)
    command.send_signal(sig)
    command.wait(10)
    left = wait_gone(children, GONE_WITHIN_S)
    assert not left, names(left)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
def test_the_vdev_takes_its_device_along(tmp_path, leftovers, sig):
    vdev = start(["vdev", "--dir", str(tmp_path / "flash"), "--state", str(tmp_path / "state")], tmp_path)
    wait_for_output(vdev, tmp_path, "virtual ESP32 on")
    time.sleep(1)  # its device process is up
    children = started_by(vdev, 1)
    leftovers.update(children)
    vdev.send_signal(sig)
    status = vdev.wait(10)
    assert sig == signal.SIGKILL or status == 0, output(tmp_path)
    left = wait_gone(children, GONE_WITHIN_S)
    assert not left, names(left)
