# The node application, built: the board set up, the node made on it. gc.collect()
# between the heavy steps: compiling a module needs contiguous heap, and the garbage of
# the step before would otherwise fragment it. The board's setup code is unloaded once
# the board is set up, and this module once the node is built (main.py): the loop
# needs what they made, not how.
import gc

from firmware import unload

gc.collect()
from firmware.node import Node  # noqa: E402

gc.collect()


def build(cfg, problems, root="", boot=None, host=None):
    """The node, ready to run (main.py: node.run_application(); a host: node.run(until)
    or node.step()). boot: what the boot made for the node ("boot_guard", "flash_log":
    see firmware/node.py), moved out of it into the node's hardware: the caller keeps no
    reference. host: a simulator's hooks (firmware/startup.py)."""
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
    gc.collect()
    return node
