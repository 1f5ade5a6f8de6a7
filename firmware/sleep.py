# Battery nodes that sleep (power.mode "deepsleep"): each wake takes one reading, sends
# it (after what waited on flash), takes what the broker kept for it while it slept (a
# persistent session), says "sleeping" (retained) and disconnects cleanly, so no Will
# fires; then the chip sleeps. What must outlive the sleep (the boot's id, seq, uptime,
# readings dropped, whether the clock is set) lives in RTC memory: a wake continues the
# boot, a power-on or a reset starts a new one. Loaded only on such a node.
import struct

from micropython import const
from ticks import ticks_add, ticks_diff, ticks_ms

# RTC memory begins with the boot guard's bytes (lib/bootguard), left as they are.
_AFTER = const(5)
_MAGIC = const(b"FNz1")
_RECORD = const("<4s6sIQIB")  # magic, boot id, seq, uptime ms at the wake, dropped, clock set
# After connecting, what the broker kept arrives at once; a wake stays this long after
# the last message, so that a command and what it sets off are answered before it sleeps.
_QUIET_MS = const(1000)
_SHORTEST_SLEEP_MS = const(1000)
DEEPSLEEP_RESET = const(4)  # machine.DEEPSLEEP_RESET on the esp32 port


class SleepCycle:
    """power: the config's power settings; rtc: machine.RTC(); deepsleep(ms): the chip's
    (it does not return on a chip; the simulator ends the process)."""

    def __init__(self, power, rtc, deepsleep):
        self.sleep_ms = 1000 * power["sleep_s"]
        self._rtc = rtc
        self._deepsleep = deepsleep
        self.woke = ticks_ms()
        self._deadline = ticks_add(self.woke, 1000 * power["awake_s"])
        self._seq_at_wake = 0
        self._connects = 0
        self._quiet_from = None  # when the broker was reached, then when a message last came

    def resume(self, node, reset_cause):
        """A wake from deep sleep continues the boot it slept in: its id, seq, uptime,
        drop count and clock. Anything else (power-on, reset) is a new boot."""
        data = self._rtc.memory()
        if reset_cause != DEEPSLEEP_RESET or len(data) < _AFTER + struct.calcsize(_RECORD):
            return False
        magic, boot_id, seq, uptime_ms, dropped, clock_set = struct.unpack_from(_RECORD, data, _AFTER)
        if magic != _MAGIC:
            return False
        node.boot_id = boot_id.decode()
        node.seq = self._seq_at_wake = seq
        node.uptime_ms = uptime_ms
        node.link.session.queue.dropped = dropped
        # The RTC kept the time through the sleep: readings before NTP answers get it.
        node.clock.synced = bool(clock_set)
        return True

    def heard(self):
        """A message came: the wake stays _QUIET_MS more for what it sets off."""
        if self._quiet_from is not None:
            self._quiet_from = ticks_ms()

    def due(self, node):
        """Whether the wake is over: its work done, or awake_s spent."""
        now = ticks_ms()
        if ticks_diff(now, self._deadline) >= 0:
            # An update being fetched, or a new broker being tried, ends by its own bounds.
            return node.dispatcher.job is None and not node.link_change_pending()
        session = node.link.session
        if session.connects != self._connects:  # connected (again): the quiet is timed from now
            self._connects = session.connects
            self._quiet_from = now
        if not session.connected or self._quiet_from is None or ticks_diff(now, self._quiet_from) < _QUIET_MS:
            return False
        # A reading sent, nothing under way (a pass, a job, a link change, a restart, a
        # description, readings held for the clock), nothing unacknowledged.
        return (node.seq > self._seq_at_wake and node.reading_pass is None and node.dispatcher.job is None
                and not node.link_change_pending() and not node.restart_requested and node.ha_due is None
                and not node.held and not len(session.queue)
                and not (session.outbox is not None and session.outbox.size)
                and not getattr(session.client, "inflight", None))

    def sleep(self, node):
        """Say so, keep what is unsent on flash, write the boot's record, and sleep."""
        session = node.link.session
        node.uptime_s()  # uptime_ms brought up to now
        elapsed = ticks_diff(ticks_ms(), self.woke)
        # Readings every sleep_s: the wake's own time is taken off the sleep.
        sleep_ms = max(_SHORTEST_SLEEP_MS, self.sleep_ms - elapsed)
        next_wake_s = (sleep_ms + 999) // 1000
        if node.held:  # a profile that needs a time: no NTP answer in this wake
            session.queue.dropped += len(node.held)
            node.held = []
            node.log("sleep: readings held for the clock dropped")
        session.park()  # what did not reach the broker: on flash, sent at a later wake
        # The console only: a line on flash at every wake would wear it.
        node.log("sleep: %d s after %d ms awake%s" % (next_wake_s, elapsed,
                                                      "" if session.connected else ", broker not reached"))
        session.close(node.status_json("sleeping", {"next_wake_s": next_wake_s}))
        node.healthy()  # a wake that did its work is no failed boot (safe mode counts those)
        head = self._rtc.memory()[:_AFTER]
        record = struct.pack(_RECORD, _MAGIC, node.boot_id.encode(), node.seq, node.uptime_ms + sleep_ms,
                             session.queue.dropped, 1 if node.clock.synced else 0)
        self._rtc.memory(head + bytes(_AFTER - len(head)) + record)
        self._deepsleep(sleep_ms)
