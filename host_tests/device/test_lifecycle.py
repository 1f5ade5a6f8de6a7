# Boot lifecycle on the stubs: the failed-boot count (lib/bootguard), the flash log
# (lib/flashlog), the choice between the application and safe mode (firmware/startup),
# maintenance's status, the watchdog fed by the loop, NTP's bound.
import json

import machine
import ntptime
from bootguard import BootGuard
from firmware import clock, config, startup
from firmware.maintenance import Maintenance
from flashlog import FlashLog
from nodekit import make_node
from simchip import new_chip
from testkit import tmpdir, write_text
from ticks import sleep_ms, ticks_diff, ticks_ms


def test_boot_guard_counts_failed_boots_until_healthy():
    new_chip()
    rtc = machine.RTC()
    for expected in (0, 1, 2):
        guard = BootGuard(rtc, 3)
        assert guard.boot() == expected and not guard.tripped()
    guard = BootGuard(rtc, 3)
    assert guard.boot() == 3 and guard.tripped()
    guard.healthy()
    assert BootGuard(rtc, 3).boot() == 0


def test_boot_guard_ignores_memory_it_did_not_write_and_can_give_one_more_try():
    new_chip()
    rtc = machine.RTC()
    rtc.memory(b"something else")
    guard = BootGuard(rtc, 3)
    assert guard.boot() == 0
    guard.give_one_more_try()
    assert BootGuard(rtc, 3).boot() == 2  # one more failure trips it
    guard = BootGuard(rtc, 3)
    guard.boot()
    guard.new_code()  # an update: the old code's failures do not count against it
    assert not guard.tripped() and BootGuard(rtc, 3).boot() == 1


def test_flash_log_rotates_within_its_bound_and_shows_the_tail():
    path = tmpdir() + "/log.txt"
    log = FlashLog(path, max_bytes=200)
    for i in range(40):
        log.write("event %d" % i)
    tail = [line[-8:] for line in log.tail(5)]  # each line starts with the time, once it is set
    assert tail == ["event %d" % i for i in range(35, 40)]
    import os

    assert os.stat(path)[6] < 200 + 20 and os.stat(path + ".1")[6] < 200 + 20
    try:
        raise ValueError("broken")
    except ValueError as exc:
        log.exception("crash:", exc)
    tail = log.tail(10)
    crash = [i for i, line in enumerate(tail) if line.endswith("crash:")][-1]
    assert tail[crash + 1] == "Traceback (most recent call last):" and tail[-1] == "ValueError: broken"


def test_flash_log_never_raises_when_the_flash_fails():
    FlashLog(tmpdir() + "/no/such/folder/log.txt").write("lost, quietly")
    assert FlashLog(tmpdir() + "/nothing.txt").tail() == []


def _cfg(patch=None):
    return config.apply(config.defaults(), dict({"device_id": "n1"}, **(patch or {})))


def test_safe_mode_when_the_boot_button_is_held_or_boots_keep_failing():
    chip = new_chip()
    guard = BootGuard(machine.RTC(), startup.FAILED_BOOTS_LIMIT)
    guard.boot()
    assert startup.safe_mode_reason(_cfg(), guard) is None
    chip.boot_button = True
    chip.pins.pop(0, None)
    assert startup.safe_mode_reason(_cfg(), guard) == "boot button held"
    chip = new_chip()
    for _ in range(4):
        guard = BootGuard(machine.RTC(), startup.FAILED_BOOTS_LIMIT)
        guard.boot()
    assert startup.safe_mode_reason(_cfg(), guard) == "3 boots in a row failed before reaching the broker"


class CtrlCAfter:
    """The watchdog of a loop a technician stops with Ctrl-C after `turns` turns; what
    is loaded meanwhile noted."""

    def __init__(self, turns):
        self.turns = turns
        self.loaded = None

    def feed(self):
        self.turns -= 1
        if self.turns == 0:
            import sys

            self.loaded = [name for name in ("firmware.startup", "firmware.app") if name in sys.modules]
            raise KeyboardInterrupt


def test_the_application_runs_without_the_boot_code_and_ctrl_c_leaves_maintenance():
    """main.py: the node built, startup and app let go, then run_application(): Ctrl-C
    switches every relay off, says offline ("maintenance") and returns maintenance."""
    from firmware import unload

    root = tmpdir()
    write_text(root + "/config.json", json.dumps({"device_id": "n1"}))
    chip = new_chip()
    node = startup.run(root)
    unload("firmware.startup", "firmware.app")  # as main.py does
    stopper = CtrlCAfter(3)
    node.watchdog = stopper
    node.relays.set("irrigation", True)
    device = node.run_application()
    try:
        assert stopper.loaded == [], stopper.loaded  # the loop ran with the boot's code let go
        assert isinstance(device, Maintenance) and device.reason == "technician at the REPL"
        assert device._timer is not None  # started: served in the background, the REPL free
        assert not node.relays.relays["irrigation"].on and not chip.pin(26).level  # nothing runs untimed
        assert not node.link.session.connected
    finally:
        device.stop()


def test_startup_in_safe_mode_returns_maintenance_with_the_reason():
    root = tmpdir()
    write_text(root + "/config.json", json.dumps({"device_id": "n1"}))
    chip = new_chip()
    chip.boot_button = True
    device = startup.run(root)
    try:
        assert isinstance(device, Maintenance) and device.reason == "safe mode: boot button held"
        assert "boot: reset cause 1, 0 failed before, boot button held" in startup.flash_log(root).tail(1)[0]
        assert not any(chip.pin(p).level for p in (25, 26))  # no relay was ever driven
    finally:
        device.stop()


def test_maintenance_says_so_in_its_retained_status_and_will():
    new_chip()
    device = Maintenance(_cfg(), __import__("network").WLAN(0), "safe mode: test")
    status = json.loads(device._status("maintenance", device.reason))
    assert status == {"status": "maintenance", "device_id": "n1", "reason": "safe mode: test"}
    will = json.loads(device._status("offline", "lwt"))
    assert will["status"] == "offline" and will["reason"] == "lwt"


def _crash_looped_maintenance(retry_s):
    new_chip()
    guard = BootGuard(machine.RTC(), 3)
    for _ in range(4):
        guard.boot()
    return Maintenance(_cfg(), __import__("network").WLAN(0), "safe mode", guard, None, retry_s=retry_s)


def _served_until_reset(device, limit_ms, started):
    """ms from started (taken before the device was made: retry_s runs from then) until a
    turn reset it, or None within limit_ms."""
    try:
        while ticks_diff(ticks_ms(), started) < limit_ms:
            device.serve()  # as its timer does, every 500 ms on a device
            sleep_ms(20)
    except machine.ResetRequested:
        return ticks_diff(ticks_ms(), started)
    finally:
        device.stop()
    return None


def test_maintenance_after_a_crash_loop_tries_the_application_again_after_retry_s():
    started = ticks_ms()
    waited = _served_until_reset(_crash_looped_maintenance(retry_s=1), 3000, started)
    assert waited is not None and 1000 <= waited < 2000, waited  # not before retry_s, soon after
    assert BootGuard(machine.RTC(), 3).boot() == 2  # one more try: a failure brings safe mode back


def test_maintenance_with_retry_s_0_never_tries_the_application_by_itself():
    started = ticks_ms()
    assert _served_until_reset(_crash_looped_maintenance(retry_s=0), 1500, started) is None
    assert BootGuard(machine.RTC(), 3).boot() == 4  # the count as the crash loop left it


class CountingWatchdog:
    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


def test_the_loop_feeds_the_watchdog_only_after_turns_that_complete():
    chip, node = make_node()
    node.watchdog = watchdog = CountingWatchdog()
    turns = []
    node.run(until=lambda: turns.append(1) or len(turns) > 5)
    assert watchdog.feeds == 5

    def broken_step():
        raise RuntimeError("a bug in every turn")

    node.step = broken_step
    turns.clear()
    node.run(until=lambda: turns.append(1) or len(turns) > 3)
    assert watchdog.feeds == 5  # failing turns are no progress: the watchdog will reset the device


def test_reaching_the_broker_marks_the_boot_healthy():
    chip, node = make_node()
    guard = BootGuard(machine.RTC(), 3)
    guard.boot()
    guard.boot()
    node._hw["boot_guard"] = guard
    node._on_connected()
    assert BootGuard(machine.RTC(), 3).boot() == 0


def test_ntp_waits_a_bounded_time_and_syncs_again_hours_later():
    chip, node = make_node({"wifi": {"ssid": "farm", "password": "farmpass"}})
    assert ntptime.timeout == clock.NTP_TIMEOUT_S
    for _ in range(300):
        node.step()
        sleep_ms(5)
        if node.clock.synced:
            break
    assert node.clock.synced
    assert ticks_diff(node._next_ntp, ticks_ms()) > 5 * 3600 * 1000
