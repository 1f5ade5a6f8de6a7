"""manifest.py, the recipe of a MicroPython image with the firmware frozen in, run with
a stand-in for MicroPython's manifest API that records what it is asked to freeze: it
freezes what `farmctl deploy` puts on a device, laid out the same (firmware/ as a
package, each lib/ module at the top), over the board's own manifest unless told not to.
(make bench MICROPYTHON_SRC=... also builds an image with it and imports each module.)"""
import os

from farmctl.deploy import firmware_sources
from farmsim.runtime import ROOT


class Options:
    def __init__(self, **given):
        self._given = given
        self._defaults = {}

    def defaults(self, **values):
        self._defaults = values

    def __getattr__(self, name):
        return self._given.get(name, self._defaults.get(name))


def frozen(**options):
    """(included manifests, {path in the image: source file}) of manifest.py."""
    included, files = [], {}

    def package(name, base_path="."):
        folder = ROOT / base_path / name
        for source in folder.rglob("*.py"):
            files[str(source.relative_to(ROOT / base_path))] = source

    def module(name, base_path="."):
        files[name] = ROOT / base_path / name

    code = compile((ROOT / "manifest.py").read_text(), "manifest.py", "exec")
    cwd = os.getcwd()
    os.chdir(ROOT)  # MicroPython runs a manifest from its own folder
    try:
        exec(code, {"options": Options(**options), "include": included.append, "package": package,
                    "module": module})
    finally:
        os.chdir(cwd)
    return included, files


def test_the_manifest_freezes_what_deploy_puts_on_a_device():
    deployed = {target[4:] if target.startswith("lib/") else target: source
                for target, source in firmware_sources().items() if target not in ("boot.py", "main.py")}
    included, files = frozen()
    assert files == deployed
    assert included == ["$(PORT_DIR)/boards/manifest.py"]  # asyncio, dht, ntptime, umqtt stay in the image


def test_the_boards_manifest_can_be_left_out_or_chosen():
    assert frozen(board_manifest=False)[0] == []
    assert frozen(board_manifest="$(BOARD_DIR)/manifest.py")[0] == ["$(BOARD_DIR)/manifest.py"]
