# The node application: load the config, set up the board, run the node's loop.
from firmware import board, config
from firmware.node import Node


def run(root=""):
    cfg, problems = config.load(root)
    hw, setup_problems = board.build(cfg)
    node = Node(cfg, hw, list(problems) + setup_problems)
    try:
        node.run()
    finally:
        node.shutdown("restart")
