# MicroPython manifest: the firmware frozen into a MicroPython image. Frozen bytecode runs
# in place from flash: the firmware's code then takes no heap, only its objects do
# (BENCHMARKS.md compares the heap floors, frozen and from .mpy files).
#
# On an ESP32, in ports/esp32 of a MicroPython checkout (with its submodules):
#   make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/farmnode/manifest.py
# The board's own manifest is included first, so asyncio, dht, ntptime, umqtt.simple...
# stay frozen as in a stock image. boot.py and main.py are not frozen: the device runs
# them from its filesystem, with config.json and secrets.json beside them.
#
# From another manifest, include("/path/to/farmnode/manifest.py", board_manifest=False)
# leaves the board's manifest out (bench/mp32.py does, for the unix port), and
# board_manifest="$(BOARD_DIR)/manifest.py" takes another one.
import os

options.defaults(board_manifest="$(PORT_DIR)/boards/manifest.py")  # noqa: F821 (manifest API)
if options.board_manifest:  # noqa: F821
    include(options.board_manifest)  # noqa: F821

# Paths below are relative to this file. firmware/ as a package, every module and
# subpackage under it; each lib/<package>/*.py as a top-level module, as `farmctl
# deploy` lays them out flat in /lib.
package("firmware")  # noqa: F821
for _package in sorted(os.listdir("lib")):
    if not os.path.isdir("lib/" + _package):
        continue
    for _name in sorted(os.listdir("lib/" + _package)):
        if _name.endswith(".py"):
            module(_name, base_path="lib/" + _package)  # noqa: F821
