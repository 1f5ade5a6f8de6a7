# The node application: load the config, set up the board, run the node's loop.
# gc.collect() between the heavy steps: compiling a module needs contiguous heap, and
# the garbage of the step before would otherwise fragment it.
import gc

from firmware import config

gc.collect()
from firmware import board  # noqa: E402

gc.collect()
from firmware.node import Node  # noqa: E402

gc.collect()


def run(root=""):
    cfg, problems = config.load(root)
    gc.collect()
    hw, setup_problems = board.build(cfg)
    gc.collect()
    node = Node(cfg, hw, list(problems) + setup_problems, root)
    gc.collect()
    try:
        node.run()
    finally:
        node.shutdown("restart")
