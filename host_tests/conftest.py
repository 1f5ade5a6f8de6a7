"""Fixtures for host-only tests (CPython): a private mosquitto and virtual nodes."""
from pathlib import Path

import pytest

from farmctl.broker import Mosquitto
from farmsim.nodes import VirtualNode


@pytest.fixture
def broker(tmp_path):
    """A fresh mosquitto on a free loopback port, persistence on; stopped after the test."""
    with Mosquitto(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def nodes(tmp_path):
    """make(broker, runtime, config, secrets, **VirtualNode options): a started virtual
    node "node-t1" of farm_001 reporting every second; every node is stopped after the test."""
    started = []

    def make(broker, runtime, config=None, secrets=None, **kwargs):
        cfg = {"device_id": "node-t1", "farm_id": "farm_001", "interval_s": 1}
        cfg.update(config or {})
        sec = {"wifi": {"ssid": "farm", "password": "farmpass"},
               "mqtt": {"host": broker.host, "port": broker.port}}
        for key, value in (secrets or {}).items():
            sec.setdefault(key, {}).update(value)
        node = VirtualNode(tmp_path / f"node{len(started)}", cfg, sec, runtime=runtime, **kwargs)
        started.append(node)
        return node.start()

    yield make
    for node in started:
        node.stop()


HA_TESTS = Path(__file__).resolve().parent / "ha"


def pytest_ignore_collect(collection_path, config):
    """host_tests/ha (the real Home Assistant, minutes and a venv of its own) is collected
    only when named on the command line, as `make test-ha` does; `make test` leaves it out."""
    if not _within(collection_path, HA_TESTS):
        return None
    named = any(_within(Path(arg.split("::")[0]).resolve(), HA_TESTS) for arg in config.args)
    return None if named else True


def _within(path, folder):
    path = Path(path).resolve()
    return path == folder or folder in path.parents
