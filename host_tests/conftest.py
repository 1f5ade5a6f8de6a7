"""Fixtures for host-only tests (CPython): a private mosquitto, backend-side MQTT clients."""
import pytest

from farmctl.broker import Mosquitto


@pytest.fixture
def broker(tmp_path):
    """A fresh mosquitto on a free loopback port, persistence on; stopped after the test."""
    with Mosquitto(tmp_path / "broker") as running:
        yield running
