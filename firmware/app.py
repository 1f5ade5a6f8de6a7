# The node application: set up the board, run the node's loop under the watchdog.
# gc.collect() between the heavy steps: compiling a module needs contiguous heap, and
# the garbage of the step before would otherwise fragment it. The board's setup code is
# unloaded once the board is set up: the loop needs what it made, not how.
import gc

from firmware import unload

gc.collect()
from firmware.node import Node  # noqa: E402

gc.collect()

# A technician who stopped the loop with Ctrl-C has this long at the REPL before the
# watchdog (which cannot be stopped once started) puts the device back to work.
TECHNICIAN_WATCHDOG_S = 1800


def run(cfg, problems, root="", boot=None, host=None):
    """Run the node until it is stopped by Ctrl-C; then the device is in maintenance
    (the returned object keeps its status) with the REPL free. boot: what the boot made
    for the node ("boot_guard", "flash_log": see firmware/node.py), moved out of it
    into the node's hardware: the caller keeps no reference. host: a simulator's hooks
    (firmware/startup.py); with host["turns"] the node is returned, not run."""
    from firmware import board

    hw, setup_problems = board.build(cfg)
    if boot:
        hw.update(boot)
        boot.clear()
    hw["watchdog"] = board.watchdog(cfg["watchdog_s"])
    del board
    unload("firmware.board")
    if host is not None:
        hw.update(host)  # what the node takes from it: heap, idle, print
    gc.collect()
    node = Node(cfg, hw, list(problems) + setup_problems, root)
    if host is not None and host.get("turns"):
        return node  # the host's loop: node.run(until), or node.step() itself
    gc.collect()
    reason = "restart"
    try:
        node.run()
    except KeyboardInterrupt:
        from firmware import board

        reason = "maintenance"
        board.watchdog(TECHNICIAN_WATCHDOG_S)
    finally:
        node.relays.all_off("stopped")  # nothing enforces max_on_s once the loop is gone
        node.shutdown(reason)
    print("farmnode stopped (Ctrl-C); the watchdog restarts it in %d min unless machine.reset() "
          "comes first" % (TECHNICIAN_WATCHDOG_S // 60))
    from firmware.maintenance import Maintenance

    return Maintenance(cfg, hw["wlan"], "technician at the REPL", host=host).start()
