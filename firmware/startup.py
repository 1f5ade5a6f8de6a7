# What every boot runs (main.py calls run()): count the boot, then start the node's
# application, or maintenance (safe mode) when the BOOT button is held at reset or the
# last boots failed before reaching the broker.
# firmware.board is imported where it is used, not kept: the application unloads it
# once the board is set up. What this boot made for itself (the boot guard, the flash
# log) is handed over to the node, and run() returns it: main.py runs the node's loop
# with this module let go.
import gc

from firmware import in_root, release_config, unload

FAILED_BOOTS_LIMIT = 3
# During the boot, a collection after every this many bytes allocated: the garbage of
# reading and checking the config is taken back before much more is allocated above it,
# so what lives long (the config, drivers, the node) stays low in the heap instead of
# scattered over freed space. The running node collects when it idles (firmware/heap.py).
COLLECT_EVERY_BYTES = 2048


def collect_often():
    """The device's collection policy, from the start of a boot."""
    if hasattr(gc, "threshold"):  # MicroPython (CPython collects on its own terms)
        gc.threshold(COLLECT_EVERY_BYTES)


def flash_log_path(root=""):
    from flashlog import DEFAULT_PATH

    return in_root(root, DEFAULT_PATH)


def flash_log(root=""):
    from flashlog import FlashLog

    return FlashLog(flash_log_path(root))


def load_config(root):
    """(config, problems) from root's files; the code that reads and checks them is
    unloaded again: the node keeps its config, not that code."""
    from firmware import config

    cfg, problems = config.load(root)
    sensors = cfg["sensors"]
    release_config([name for name in sensors if sensors[name]["enabled"]])
    return cfg, problems


def safe_mode_reason(cfg, guard):
    """Why this boot must not start the application, or None."""
    from firmware import board

    if board.button_held(cfg["safe_mode"]["pin"]):
        return "boot button held"
    if guard.tripped():
        return "%d boots in a row failed before reaching the broker" % guard.failed
    return None


def run(root="", update=None, host=None):
    """The application's node, built (main.py lets this module and firmware.app go,
    then calls node.run_application()), or maintenance, started (the returned object
    keeps it going beside the REPL).
    update: what lib/ota's Swap.boot() did; an update on trial has its own boot count
    and rollback, which safe mode must not pre-empt.
    host: None on a device. A simulator running several nodes in one process (and
    running their turns itself: node.run(until) or node.step()) hands in what it does
    for them instead of the chip, as a dict: "collect": False (the process keeps its
    own collection policy: its heap holds every node), "periodic" (board.periodic's
    stand-in, for maintenance's timer), and for the node (firmware/node.py) "heap",
    "idle" and "print"."""
    from firmware import board

    if host is None or host.get("collect", True):
        collect_often()
    guard = board.boot_guard(FAILED_BOOTS_LIMIT)
    guard.boot()
    if update is not None:
        guard.new_code()
    log = flash_log(root)
    cfg, problems = load_config(root)
    reason = safe_mode_reason(cfg, guard)
    cause = board.reset_cause()
    if reason is not None or update is not None or cause != board.DEEPSLEEP_RESET:  # a wake: no flash wear
        log.write("boot: reset cause %d, %d failed before, %s%s" % (
            cause, guard.failed, reason or "application", ", update " + update if update else ""))
    del board
    gc.collect()
    if reason is not None:
        import network

        from firmware.maintenance import Maintenance

        retry_s = 0 if reason == "boot button held" else cfg["safe_mode"]["retry_s"]
        return Maintenance(cfg, network.WLAN(network.STA_IF), "safe mode: " + reason, guard, log,
                           retry_s, host).start()
    # The node takes the guard (and lets it go once healthy) and writes its rare events
    # to the flash log loading lib/flashlog for each: neither module stays for them here.
    boot = {"boot_guard": guard, "flash_log": flash_log_path(root)}
    del guard, log
    unload("flashlog")
    from firmware import app

    return app.build(cfg, problems, root, boot, host)
