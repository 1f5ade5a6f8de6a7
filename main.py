# Device entry point, after boot.py: lib/ota swaps in a staged update (or rolls a failed
# one back), then firmware/startup.py builds the node, run here with the boot's code let
# go, or starts safe mode. An uncaught error is logged to flash and resets the device:
# never a dead REPL.
import sys

from ota import Swap

update = Swap().boot()
del Swap
sys.modules.pop("ota")  # not needed while the application runs: its heap comes back
sys.modules.pop("ota_files")
try:
    from firmware import startup

    device = startup.run(update=update)  # the node built, or maintenance (started)
    del startup
    from firmware import unload

    unload("firmware.startup", "firmware.app")  # the boot's code, not kept under the node's loop
    del unload
    if hasattr(device, "step"):
        device = device.run_application()  # returns in maintenance: `device` keeps it going beside the REPL
except Exception as exc:  # the reset retries; a crash loop ends in safe mode (startup.py)
    sys.print_exception(exc)
    try:
        from flashlog import FlashLog

        FlashLog().exception("crash:", exc)
    except Exception:  # noqa: BLE001 (a broken flash must not stop the reset)
        pass
    import machine

    machine.reset()
