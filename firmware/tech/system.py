# tech.log(), tech.leave_safe_mode(), tech.restart(): the flash log, the boot guard and
# resets.
from firmware import board
from firmware.startup import FAILED_BOOTS_LIMIT, flash_log
from firmware.tech import Usage


def log(tech, lines):
    if type(lines) is not int or lines < 1:
        raise Usage("lines: how many, a whole number above 0")
    flash = flash_log(tech.root)
    tail = flash.tail(lines)
    if not tail:
        tech._out("the flash log (%s) is empty" % flash.path)
    for line in tail:
        tech._out(line)


def leave_safe_mode(tech):
    from firmware import config

    guard = board.boot_guard(FAILED_BOOTS_LIMIT)
    counted = guard.count()
    guard.healthy()
    tech._out("boot guard cleared (it counted %d boot(s) without the broker); restarting" % counted)
    cfg, _ = config.load(tech.root)
    if board.button_held(cfg["safe_mode"]["pin"]):
        tech._out("the BOOT button is held: release it, or this is safe mode again")
    board.reset()


def restart(tech):
    tech._out("restarting")
    board.reset()
