# farmnode firmware: the farm node application. Runs unchanged on the ESP32,
# the MicroPython unix port and CPython (with the simulator's stubs, tools/farmsim/stubs).
import os
import sys

VERSION = "0.1.0"


def _is_file(path):
    try:
        return os.stat(path)[0] & 0x8000 != 0
    except OSError:
        return False


# True when this package runs from the MicroPython image it was frozen into (manifest.py):
# then its __file__ names no file on the device's filesystem (a package there would
# have been imported instead). What an update can replace then: firmware/rare_commands.py.
FROZEN = not _is_file(__file__)


def device_id(cfg, mac):
    """From config, else 'node-' + the 12 hex digits of the MAC (PROTOCOL: Identity)."""
    return cfg["device_id"] or "node-" + "".join("%02x" % b for b in mac)


def in_root(root, name):
    """name in the device folder root ("" is the current folder, "/" on a device)."""
    return root.rstrip("/") + "/" + name if root else name


def unload(*names):
    """Forget modules a job loaded (config checks, rare commands), so that their code and
    tables leave the heap: a running node keeps only what its loop needs. The next use
    imports them again. Exceptions that cross such a module live in firmware.errors,
    which stays, so an except clause still matches after a reload."""
    for name in names:
        if sys.modules.pop(name, None) is None:
            continue
        dot = name.rfind(".")
        parent = sys.modules.get(name[:dot]) if dot > 0 else None
        attr = name[dot + 1:]
        if parent is not None and attr in parent.__dict__:
            delattr(parent, attr)  # the package's attribute would keep the module alive


# Config keys never shown (get_config and the technician's console leave them out); kept
# in secrets.json.
HIDDEN_KEYS = ("wifi.password", "wifi.networks", "mqtt.password", "signing.key")

# What reading, checking or changing a config loads: a running node unloads it once done.
CONFIG_CODE = ("firmware.link_trial", "firmware.reconfig", "firmware.config", "firmware.schema",
               "firmware.automation_config", "firmware.defaults")


def release_config(fitted):
    """Unload the config code and the modules of sensors not in fitted (their names),
    which checking a config loads."""
    from firmware import sensors

    unload(*CONFIG_CODE)
    sensors.unload_unfitted(fitted)


def reconfigure(node, change, *args):
    """A config change of firmware/reconfig.py on node (change: "apply" a patch,
    "set_interval", "reset"), then the config code let go, unless a broker link is
    still to be tried or on trial: that still needs it (firmware/link_trial.py)."""
    from firmware import reconfig

    try:
        return getattr(reconfig, change)(node, *args)
    finally:
        del reconfig
        if not node.link_change_pending():
            release_config(node.reader.fitted())
