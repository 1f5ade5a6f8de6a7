# The commands a node runs seldom (PROTOCOL.md, Commands): loaded by the dispatcher for
# one command and unloaded after (after its job ends, for those that take time), so
# that their code is not in the heap the rest of the time. Each is f(node, params) and
# returns the answer's response, or steps to run over the loop (lib/coop).
from firmware import HIDDEN_KEYS, reconfigure
from firmware.commands import MAX_DURATION_S

# What these commands import, unloaded with this module when the command is done.
LOADS = ("firmware.config_message", "firmware.calibration", "ota_fetch", "httpget", "ota_files")
from firmware.errors import CommandError
from firmware.params import number, state
from jsontext import Omitting


def config(node, params):
    from firmware.config_message import patch_of

    return node.apply_config(patch_of(params))


def reset_config(node, params):
    reconfigure(node, "reset")
    return {"reset": True, "restarting": True}


def get_config(node, params):
    # The node's own config, written as it is sent (node.send_response): no copy of it
    # is made, and no string of it.
    return Omitting(node.cfg, HIDDEN_KEYS)


def calibrate(node, params):
    from firmware.calibration import calibrate as calibrate_point  # loaded when a technician calibrates

    sensor = params.get("sensor", params.get("sensor_type"))  # seed 004: sensor_type
    try:
        return calibrate_point(node, sensor, params.get("point"), params.get("value"), params.get("temp_c"))
    except ValueError as exc:
        raise CommandError(str(exc))


def ota(node, params):
    from firmware import FROZEN
    from ota_fetch import check_request, stage_steps  # loaded only for an update

    url = params.get("url")
    sha256 = params.get("sha256")
    try:
        check_request(url, sha256)
    except ValueError as exc:
        raise CommandError(str(exc))
    if FROZEN:
        # The image holds firmware/ and lib/. A firmware/ package on the filesystem is
        # imported instead of the image's, whole (an update must then carry all of it,
        # __init__ included); lib/ modules in the image come before /lib, so an update
        # cannot replace them: that takes a new image.
        steps = stage_steps(node.root, url, sha256, node.log, ("firmware/",), ("firmware/__init__.",))
    else:
        steps = stage_steps(node.root, url, sha256, node.log)
    return _ota_steps(node, steps)


def _ota_steps(node, staging):
    manifest = yield from staging
    node.restart_soon()  # into the new files; they are kept once they reach the broker
    return {"version": manifest["version"], "files": len(manifest["files"]), "restarting": True}


def set_pump(node, params):  # seed 004: pump_id, state, duration (s)
    pump_id = number(params, "pump_id", 1, 99)
    relays = node.cfg["relays"]
    names = [name for name in node.relays.relays if relays[name]["pump_id"] == pump_id]
    if not names:
        raise CommandError("no relay has pump_id %s" % pump_id)
    duration = number(params, "duration", 1, MAX_DURATION_S, required=False)
    return node.dispatcher.relay(names[0], state(params.get("state")), duration)


def pump_water(node, params):  # seed 001: the irrigation pump, for durationMs or amountMl
    duration_ms = number(params, "durationMs", 100, MAX_DURATION_S * 1000, required=False)
    if duration_ms is not None:
        return node.dispatcher.relay("irrigation", True, duration_ms / 1000)
    amount = number(params, "amountMl", 1, 10000000, required=False)
    if amount is None:
        raise CommandError("missing parameter 'durationMs' or 'amountMl'")
    flow = node.cfg["relays"].get("irrigation", {}).get("flow_ml_s", 0)
    if not flow:
        raise CommandError("amountMl needs relays.irrigation.flow_ml_s in the config; send durationMs")
    return node.dispatcher.relay("irrigation", True, amount / flow)
