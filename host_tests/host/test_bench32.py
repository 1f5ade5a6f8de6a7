"""The repo's manifest.py and the 32-bit ports bench/mp32.py builds with it, from the
MicroPython source tree in MICROPYTHON_SRC (skipped without one): the manifest freezes
what `farmctl deploy` puts on a device, laid out the same, with the ESP32 board's own
manifest unless told not to; a frozen port imports all of it from .frozen."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farmctl import deploy
from farmctl.runtime import ROOT

SRC = os.environ.get("MICROPYTHON_SRC")
pytestmark = pytest.mark.skipif(not SRC, reason="MICROPYTHON_SRC (a MicroPython source tree) is not set")


def imported(name, folder):
    """Module name from folder (MicroPython's tools/, bench/: neither is on the path)."""
    sys.path.insert(0, str(folder))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(folder))


def deployed_modules():
    """{frozen target path: module name} of what deploy puts under firmware/ and /lib."""
    modules = {}
    for target in deploy.firmware_sources():
        if target.startswith("firmware/"):
            modules[target] = target[:-3].replace("/", ".").removesuffix(".__init__")
        elif target.startswith("lib/"):
            modules[target[4:]] = target[4:-3]
    return modules


def frozen_targets(**options):
    manifestfile = imported("manifestfile", Path(SRC) / "tools")
    port = Path(SRC) / "ports" / "esp32"
    manifest = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": SRC, "MPY_LIB_DIR": str(Path(SRC) / "lib" / "micropython-lib"), "PORT_DIR": str(port),
        "BOARD_DIR": str(port / "boards" / "ESP32_GENERIC")})
    manifest.include(str(ROOT / "manifest.py"), **options)
    return {result.target_path: result.full_path for result in manifest.files()}


def test_the_manifest_freezes_what_deploy_puts_on_a_device_with_the_boards_own_manifest():
    with_board = frozen_targets()
    alone = frozen_targets(board_manifest=False)
    assert set(alone) == set(deployed_modules())  # boot.py and main.py stay on the filesystem
    for target, source in alone.items():
        assert with_board[target] == source
    for stock in ("asyncio/__init__.py", "dht.py", "ntptime.py", "umqtt/simple.py"):
        assert stock in with_board and stock not in alone


def test_the_frozen_32_bit_port_imports_the_firmware_and_lib_from_frozen(tmp_path):
    binary = imported("mp32", ROOT / "bench").build(SRC, ["frozen"])["frozen"]
    modules = deployed_modules()
    script = "import sys\nfor name in %r:\n    __import__(name)\n    print(name, sys.modules[name].__file__)\n" % (
        sorted(modules.values()),)
    done = subprocess.run([str(binary), "-c", script], env=dict(os.environ, MICROPYPATH=".frozen"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    origins = dict(line.split() for line in done.stdout.splitlines())
    # A frozen module's __file__ is its path in the manifest (a file's would be absolute).
    assert origins == {name: target for target, name in modules.items()}
