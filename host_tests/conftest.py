"""Fixtures for host-only tests (CPython): a private mosquitto and virtual nodes."""
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
