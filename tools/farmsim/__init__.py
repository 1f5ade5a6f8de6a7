"""farmsim: farm nodes without hardware. The real firmware runs on stand-ins for the
ESP32's modules (stubs/: machine, network, dht, esp32..., a simulated chip and a model
of the field), driven by the scripts a simulated device runs (harness/: one node per
process, a fleet in one process, the vdev's device half). The host side starts them
and watches them (nodes, runtime). The stubs and the harness are never deployed to a
device.

The device tree (firmware/, lib/, boot.py, main.py, manifest.py) is what sim, vdev,
deploy and the benchmarks run or install: device_tree() finds it."""
from importlib import resources
from pathlib import Path

_HERE = Path(str(resources.files(__name__)))
STUBS = _HERE / "stubs"
HARNESS = _HERE / "harness"


def device_tree():
    """The folder holding firmware/, lib/, boot.py and main.py: package data of an
    installed farmnode (farmsim/device_tree), or the checkout this package runs from."""
    for folder in (_HERE / "device_tree", _HERE.parents[1]):
        if (folder / "firmware" / "__init__.py").is_file() and (folder / "lib").is_dir():
            return folder
    raise RuntimeError("farmsim: the firmware is missing from %s (a broken install: "
                       "pip install --force-reinstall farmnode)" % (_HERE / "device_tree"))
