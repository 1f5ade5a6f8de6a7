# What a running node keeps loaded: config code and rare commands are loaded for a job
# and unloaded after (firmware.unload), and what they raise is still caught afterwards.
import json
import sys

from firmware import release_config, startup, unload
from nodekit import make_node, send
from simchip import new_chip
from testkit import read_text, tmpdir, write_text

CONFIG_CODE = ("firmware.config", "firmware.schema", "firmware.defaults", "firmware.reconfig")


def loaded(*names):
    return [name for name in names if name in sys.modules]


def test_unload_forgets_a_module_and_its_package_attribute():
    import firmware.params  # noqa: F401

    unload("firmware.params")
    assert "firmware.params" not in sys.modules and "params" not in sys.modules["firmware"].__dict__
    unload("firmware.params", "no.such.module")  # twice, or never loaded: nothing to do


def test_a_config_change_leaves_no_config_code_loaded():
    _, node = make_node({"sensors": {"npk": {"enabled": False}}})
    release_config(node.reader.fitted())
    answer = send(node, {"command_id": "i1", "command": "config", "parameters": {"interval_s": 30}})
    assert answer["success"] and node.cfg["interval_s"] == 30
    assert loaded(*CONFIG_CODE) == []
    assert loaded("firmware.sensors.npk") == []  # checked with the rest, not fitted: let go
    assert loaded("firmware.sensors.soil") == ["firmware.sensors.soil"]  # fitted: in use


def test_rare_commands_are_unloaded_and_their_errors_still_answered():
    _, node = make_node()
    for n in range(2):  # the second time through a freshly loaded copy of the config code
        answer = send(node, {"command_id": "c%d" % n, "command": "config", "parameters": {"interval_s": 0}})
        assert not answer["success"] and answer["error"].startswith("config refused: interval_s")
        answer = send(node, {"command_id": "g%d" % n, "command": "get_config"})
        assert answer["success"] and "password" not in answer["response"]["mqtt"]
        assert loaded("firmware.rare_commands", *CONFIG_CODE) == []
    update_code = ("firmware.rare_commands", "ota_fetch", "httpget", "ota_files", "ota")
    before = loaded(*update_code)  # another test module of this process may hold lib/ota's
    send(node, {"command_id": "o1", "command": "ota",
                "parameters": {"url": "http://127.0.0.1:1/m.json", "sha256": "0" * 64}})
    while node.dispatcher.job is not None:  # the download fails: nothing listens there
        node.dispatcher.step_job()
    assert loaded(*update_code) == before


def test_startup_reads_the_config_and_lets_its_code_go():
    root = tmpdir()
    write_text(root + "/config.json", json.dumps({"interval_s": 30}))
    cfg, problems = startup.load_config(root)
    assert cfg["interval_s"] == 30 and problems == []
    assert loaded(*CONFIG_CODE) == []


def test_a_node_keeps_no_boot_code_once_it_reached_its_broker():
    # What startup.run made for the boot (the boot guard, the flash log) goes to the
    # node, which lets each go when done.
    root = tmpdir()
    write_text(root + "/config.json", json.dumps({"device_id": "n1"}))
    new_chip()
    node = startup.run(root)
    assert loaded("flashlog") == []  # the boot line is on flash, its code let go
    assert "boot: reset cause" in read_text(root + "/log.txt")
    node._on_connected()  # the broker reached: this boot is healthy
    assert loaded("bootguard") == [] and "boot_guard" not in node._hw
    node.log.event("relay irrigation off: max_on_s")  # a rare event: lib/flashlog for its line
    assert read_text(root + "/log.txt").rstrip().endswith("relay irrigation off: max_on_s")
    assert loaded("flashlog") == []
    node.shutdown("test")


def test_home_assistant_discovery_code_is_loaded_only_by_a_node_that_uses_it():
    described = []

    class DiscoverySpy:  # stands in for firmware.ha_discovery: what would import it gets this
        @staticmethod
        def describe(node):
            described.append(node.link.device_id)

    for discovery in (True, False):
        _, node = make_node({"device_id": "ha-%s" % discovery, "homeassistant": {"discovery": discovery}})
        sys.modules["firmware.ha_discovery"] = DiscoverySpy
        setattr(sys.modules["firmware"], "ha_discovery", DiscoverySpy)
        try:
            node._on_connected()
        finally:
            unload("firmware.ha_discovery")
    assert described == ["ha-True"]  # a node that never described itself has nothing to take back
