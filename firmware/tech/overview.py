# tech.status(): what the device is and how it stands, read without changing anything
# (the boot guard is read, not counted; the relays' pins are read, not driven).
import gc
import os

from firmware import VERSION, board, device_id, in_root
from firmware.startup import FAILED_BOOTS_LIMIT, flash_log
from outbox import DEFAULT_PATH as OUTBOX_PATH

_RESET_CAUSES = ("?", "power_on", "hard", "watchdog", "deepsleep", "soft")
_WIFI_STATUS = ((1000, "idle"), (1001, "connecting"), (1010, "got an IP"), (200, "beacon timeout"),
                (201, "no access point found"), (202, "wrong password"), (203, "association failed"),
                (204, "handshake timeout"))


def status(tech):
    from firmware import config

    out = tech._out
    cfg, problems = config.load(tech.root)
    cause = board.reset_cause()
    out("farmnode %s, device %s, reset cause %s" % (
        VERSION, device_id(cfg, board.unique_id()),
        _RESET_CAUSES[cause] if 0 < cause < len(_RESET_CAUSES) else cause))
    # The count as lib/bootguard keeps it: boots since the broker was last reached,
    # this one included (read, not counted: boot() would add one).
    counted = board.boot_guard(FAILED_BOOTS_LIMIT).count()
    if not counted:
        out("boot guard: clear (this boot reached the broker)")
    elif counted - 1 >= FAILED_BOOTS_LIMIT:
        out("boot guard: %d failed boots before this one: safe mode (tech.leave_safe_mode() clears it)"
            % (counted - 1))
    else:
        out("boot guard: %d failed boot(s) before this one (safe mode at %d); this one has not reached "
            "the broker" % (counted - 1, FAILED_BOOTS_LIMIT))
    last = None
    for line in flash_log(tech.root).tail(40):
        at = line.find("boot: reset cause ")
        if at >= 0:
            last = line[at:]
    if last is not None:
        out("last boot (flash log): %s" % last[last.find(",") + 2:])
    out(_wifi_status(cfg))
    mqtt = cfg["mqtt"]
    out("broker: %s:%d, %s, %s%s, profile %s" % (
        mqtt["host"] or "(not set)", mqtt["port"], "user %r" % mqtt["user"] if mqtt["user"] else "no user",
        "TLS" if mqtt["tls"] else "no TLS", " (ca %s)" % mqtt["ca"] if mqtt["ca"] else "", cfg["profile"]))
    gc.collect()
    if hasattr(gc, "mem_free"):
        out("heap: %d bytes free, %d used" % (gc.mem_free(), gc.mem_alloc()))
    try:
        fs = os.statvfs(tech.root or "/")
        out("flash: %d KiB free of %d KiB" % (fs[0] * fs[3] // 1024, fs[0] * fs[2] // 1024))
    except (OSError, AttributeError) as exc:
        out("flash: unknown (%s)" % exc)
    try:
        waiting = os.stat(in_root(tech.root, OUTBOX_PATH))[6]
        out("outbox: %d bytes of readings taken offline, sent once the broker is reached" % waiting)
    except OSError:
        out("outbox: empty (nothing waits for the broker)")
    now = board.rtc_datetime()
    if now[0] < 2024:
        out("clock: not set (NTP sets it once the node is online)")
    else:
        out("clock: %04d-%02d-%02d %02d:%02d:%02d UTC" % (now[0], now[1], now[2], now[4], now[5], now[6]))
    states = []
    for name in sorted(cfg["relays"]):
        spec = cfg["relays"][name]
        on = board.pin_level(spec["pin"]) != (1 if spec["active_low"] else 0)  # read, not driven
        states.append("%s %s" % (name, "ON (expected off!)" if on else "off"))
    out("relays: " + (", ".join(states) if states else "none"))
    if problems:
        out("config: %d problem(s) at load, tech.config() lists them" % len(problems))


def _wifi_status(cfg):
    """The Wi-Fi line: the network joined, or why not."""
    import network

    wlan = network.WLAN(network.STA_IF)
    if wlan.isconnected():
        try:
            ssid = wlan.config("essid")
        except (OSError, ValueError):
            ssid = "?"
        try:
            rssi = "%d dBm" % wlan.status("rssi")
        except (OSError, ValueError):
            rssi = "?"
        return "Wi-Fi: connected to %r, ip %s, rssi %s" % (ssid, wlan.ifconfig()[0], rssi)
    code = wlan.status()
    for number, meaning in _WIFI_STATUS:
        if number == code:
            code = meaning
    from firmware.wifi import networks

    return "Wi-Fi: not connected (%s%s), configured: %s" % (
        "" if wlan.active() else "off, ", code, ", ".join(repr(ssid) for ssid, _ in networks(cfg["wifi"])) or "none")
