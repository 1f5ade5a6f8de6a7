"""farmnode as a user installs it: the wheel built from this checkout, installed into a
fresh venv outside the repo, its farmctl run from a temporary folder, with no repo on
any path. The wheel carries the device tree (farmsim/device_tree) and the simulator,
and nothing of the tests."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from backend import Backend
from vdevkit import Vdev, mpremote

REPO = Path(__file__).resolve().parents[2]
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", "sim-run")
SUBCOMMANDS = ("broker", "sim", "flash", "deploy", "send", "watch", "vdev", "provision")


def run(argv, cwd, timeout=300, env=None):
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the wheel, the venv's bin folder, a folder outside the repo to run from)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"  # a copy: a build in the checkout would leave build/ behind
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", work / "wheels", source], work)
    wheel = next((work / "wheels").glob("farmnode-*.whl"))
    run([sys.executable, "-m", "venv", work / "venv"], work)
    run([work / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet", wheel], work)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return wheel, work / "venv" / "bin", elsewhere


def user_env():
    """The environment of a user's shell: nothing of this checkout on a path."""
    return {key: value for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "MICROPYPATH", "VIRTUAL_ENV", "PYTEST_CURRENT_TEST")}


def test_the_wheel_holds_the_device_tree_and_the_simulator_not_the_tests(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    tree = {name[len("farmsim/device_tree/"):] for name in names if name.startswith("farmsim/device_tree/")}
    expected = {str(p.relative_to(REPO)) for p in (REPO / "firmware").rglob("*.py")}
    expected |= {str(p.relative_to(REPO)) for p in (REPO / "lib").glob("*/*.py")}
    assert tree == expected | {"boot.py", "main.py", "manifest.py"}
    simulator = {str(p.relative_to(REPO / "tools")) for p in (REPO / "tools" / "farmsim").rglob("*.py")}
    assert simulator <= names
    assert not [name for name in names if "host_tests" in name or "/test_" in name or name.startswith("firmware/")]


def test_every_subcommand_answers_help_from_anywhere(installed):
    _, bin_dir, elsewhere = installed
    for name in SUBCOMMANDS:
        out = run([bin_dir / "farmctl", name, "--help"], elsewhere, env=user_env())
        assert "usage: farmctl " + name in out, out
    assert "--config FILE" in run([bin_dir / "farmctl", "sim", "--help"], elsewhere, env=user_env())


def test_sim_with_a_users_config_reaches_the_broker_and_takes_a_command(installed, broker):
    _, bin_dir, elsewhere = installed
    config = elsewhere / "my.json"
    config.write_text(json.dumps({"profile": "farmnode", "interval_s": 1, "relays": {
        "irrigation": {"pin": 26, "max_on_s": 120}, "fertigation": {"pin": 25}}}))
    backend = Backend(broker, ["farm/#"])
    sim = subprocess.Popen([bin_dir / "farmctl", "sim", "--devices", "2", "--duration", "12", "--config", config,
                            "--broker", broker.address], cwd=elsewhere, env=user_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        for device in ("node-01", "node-02"):
            backend.wait_for(lambda t, d, r: t == f"farm/{device}/telemetry", 60)
        answer = subprocess.run([bin_dir / "farmctl", "send", "node-01", "relay", "relay=irrigation", "state=on",
                                 "duration_s=5", "--id", "wheel-1", "--broker", broker.address],
                                cwd=elsewhere, env=user_env(), capture_output=True, text=True, timeout=60)
        assert answer.returncode == 0, answer.stdout + answer.stderr
        backend.wait_for(lambda t, d, r: t == "farm/node-01/telemetry" and d["relays"]["irrigation"] == 1)
        out, _ = sim.communicate(timeout=60)
    finally:
        backend.close()
        if sim.poll() is None:
            sim.kill()
    assert sim.returncode == 0, out
    assert f"switch a relay: farmctl send node-01 relay relay=irrigation state=on duration_s=60 --broker {broker.address}" \
        in out, out


def test_sim_refuses_a_config_the_device_would_refuse_before_starting_anything(installed):
    _, bin_dir, elsewhere = installed
    config = elsewhere / "bad.json"
    config.write_text(json.dumps({"relays": {"irrigation": {"pin": 35}}}))
    done = subprocess.run([bin_dir / "farmctl", "sim", "--config", config], cwd=elsewhere, env=user_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "relays.irrigation.pin: GPIO 35 is input-only" in done.stderr, done
    assert "broker" not in done.stdout


def test_vdev_answers_mpremote_and_takes_a_deploy(installed, tmp_path):
    _, bin_dir, elsewhere = installed
    vdev = Vdev(tmp_path, farmctl=bin_dir / "farmctl", env=user_env())
    try:
        status, out = mpremote(vdev.port, "exec", "import sys; print('on', sys.platform)",
                               program=bin_dir / "mpremote")
        assert status == 0 and "on linux" in out, out
        run([bin_dir / "farmctl", "deploy", "--port", vdev.port], elsewhere, env=user_env())
        status, out = mpremote(vdev.port, "exec", "import firmware; print('farmnode', firmware.VERSION)",
                               program=bin_dir / "mpremote")
        assert status == 0 and "farmnode 0." in out, out
    finally:
        vdev.stop()
