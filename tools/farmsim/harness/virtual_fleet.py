# Several farm nodes in one process (MicroPython unix port or CPython): each one the
# real firmware, booted by firmware/startup.py, on a simulated chip, field model and
# device filesystem of its own, as virtual_node.py runs one node per process.
#   virtual_fleet.py FLEET.json [--parent-fd FD]
# FLEET.json (written by tools/farmsim/nodes.py, VirtualFleet):
#   {"nodes": [{"root": DIR, "seed": N, "start_hour": H, "rtc": FILE}, ...],
#    "field": FILE or null, "speed": X, "reset_cause": N, "idle_ms": MS, "stats": FILE}
# Each DIR is a device's "/" (config.json, secrets.json). The stubs reach "the" chip
# through simchip.chip(), so a node's chip is made current before each of its turns.
# Each node is booted with the hooks the firmware offers a host (firmware/startup.py):
# its turns are the fleet's, its idle wait only notes how long it would idle (the process
# idles for all of them at once, in one poll() over their sockets), one Heap serves them
# all, its console lines are prefixed with its name. When the lifeline (FD, lifeline.py)
# is cut, by the simulator or by its death, every node sends what it has, says offline
# and the process ends; stats (heap, each node's seq) are written every STATS_MS and at
# the end. A node in deep sleep (machine.deepsleep) has no turns until its wake, the
# sleep later (at the fleet's speed), when it boots with DEEPSLEEP_RESET on the field it
# slept in, its RTC memory kept; one asleep at the stop stays asleep, saying nothing.
import gc
import json
import os
import select
import sys

import machine
import simchip
from fieldmodel import Field
from lifeline import from_argv as lifeline_from_argv
from ticks import ticks_add, ticks_diff, ticks_ms
from virtual_node import parse, power_off, set_access_points

from firmware import config, startup
from firmware.node import Node
from firmware.wifi import networks

# A node that asks to idle less than BUSY_MS is inside something (a sensor pass waiting
# on a bus, a job): its next turn comes after BUSY_TURN_MS (the firmware asks 2 ms: a
# turn that often would be most of the process's work, while the bus waits it spans
# are 20-40 ms long and bounded by 500 ms). Longer asks are plain idling.
BUSY_MS = 10
BUSY_TURN_MS = 20
WIND_MS = 20  # anemometer edges are delivered this often (up to 50 Hz: 120 km/h)
COLLECT_MS = 1000  # the shared heap is collected at most this often (see _SharedHeap)
STATS_MS = 5000
DRAIN_MS = 3000  # at stop, how long nodes may take to get their readings acknowledged
ERROR_PAUSE_MS = 200  # Node.run's pause after a failed turn
CRASH_PAUSE_MS = 5000  # a boot that raised: tried again after this, as after a reset
HANG_MS = 60000  # no turn completed for this long: the process is hung, end it
# The longest a deep sleep lasts here (real time), and how far off the next look at one
# with no wake (machine.deepsleep() without a time) is: ticks wrap (at 2**30 ms on
# MicroPython), so no due may be more than half their range ahead.
_LONGEST_DUE_MS = 24 * 3600 * 1000
RESET_CAUSES = {"hard": machine.HARD_RESET, "soft": machine.SOFT_RESET, "deepsleep": machine.DEEPSLEEP_RESET}
USAGE = "usage: virtual_fleet.py FLEET.json [--parent-fd FD]"


class Member:
    """One node of the fleet: its chip, its folder, and what its boot started (the
    Node, or safe mode's Maintenance served through the timer it asked for)."""

    def __init__(self, spec, index, shared, heap):
        self.root = spec["root"]
        self.name = self.root.rstrip("/").split("/")[-1]
        self.spec = spec
        self.shared = shared
        self.heap = heap
        self.mac = b"\x24\x0a\xc4" + bytes(((index >> 16) & 0xFF, (index >> 8) & 0xFF, index & 0xFF))
        self.chip = None
        self.app = None
        self.node = None
        self.timer = None  # [period_ms, callback, due] of board.periodic (safe mode)
        self.asked = None  # the shortest idle its last turn asked for
        self.due = ticks_ms()
        self.sock_fd = None
        # Until when its chip's CPU is held (chip.hold: a DHT read): its turns wait, the
        # others' do not (a sleep would hold every node of the process).
        self.held_until = None
        self.wind_due = None  # when chip.wind_step() is next due; None: no anemometer
        self.boots = 0
        self.final = None  # the stats entry taken when it stopped
        self.sleep_ms = None  # while in deep sleep: how long for (its due is the wake)
        self.wakes = 0
        self.device_id = self.name  # the node's own, once it has run (the stats of its sleep)

    def boot(self, reset_cause):
        """Power on: a fresh chip, then firmware/startup.py; on a fresh field model, or
        at a wake from deep sleep on the one it slept in (the field went on meanwhile)."""
        self.shut_chip()
        self.node = self.app = self.timer = self.held_until = None
        cfg, _ = config.load(self.root)
        woken = reset_cause == machine.DEEPSLEEP_RESET and self.chip is not None
        if woken:
            field = self.chip.field
        else:
            field = Field(seed=self.spec["seed"], speed=self.shared["speed"],
                          start_hour=self.spec["start_hour"], steer_path=self.shared["field"])
        chip = simchip.Chip(field, simchip.wiring_from_config(cfg), mac=self.mac)
        set_access_points(chip, networks(cfg["wifi"]))
        chip.logging = False
        chip.wind_thread = False  # the scheduler delivers its anemometer edges
        chip.reset_cause = reset_cause
        if woken:
            chip.wake_reason = machine.TIMER_WAKE
        chip.keep_rtc_in(self.spec["rtc"])
        chip.on_hold = self.hold
        self.chip = simchip.use(chip)
        self.wind_due = None
        self.boots += 1
        try:
            self.app = startup.run(self.root, host=self.hooks())
        except Exception as exc:  # main.py logs a crash and resets
            self.print("boot failed: %s %s; resetting in %d s" % (type(exc).__name__, exc, CRASH_PAUSE_MS // 1000))
            self.due = ticks_add(ticks_ms(), CRASH_PAUSE_MS)
            return
        if isinstance(self.app, Node):
            self.node = self.app
            self.device_id = self.node.link.device_id
            self.node.announce()  # as Node.run begins
        self.due = self.wind_due = ticks_ms()

    def hooks(self):
        """What the fleet does for this node instead of a chip (firmware/startup.py)."""
        # "collect": not a device's collection policy: the heap holds every node of the
        # process (a collection after every 2 KiB allocated would scan all of them each
        # time); _SharedHeap collects it at most every COLLECT_MS.
        return {"collect": False, "heap": self.heap, "idle": self.idle,
                "print": self.print, "periodic": self.periodic}

    def idle(self, ms):
        """The node's wait: it only says how long it would idle; the scheduler waits for
        all nodes at once and gives this one its turn when its socket has data (a step
        starts with session.poll, which reads it) or its time has come."""
        if self.asked is None or ms < self.asked:
            self.asked = ms

    def hold(self, ms):
        """chip.hold in a fleet: this node's CPU is busy for ms more; its next turn comes
        after that (a socket with data does not wake it sooner), the others go on."""
        now = ticks_ms()
        start = self.held_until if self.held_until is not None and ticks_diff(self.held_until, now) > 0 else now
        self.held_until = ticks_add(start, ms)

    def periodic(self, period_ms, callback):
        """board.periodic in a fleet (safe mode's timer): the scheduler calls the callback
        on this member's turn (a timer thread would run it with whichever chip is current)."""
        self.timer = [period_ms, callback, ticks_add(ticks_ms(), period_ms)]
        return _Timer(self)

    def print(self, *args):
        """Each line of the shared console says which node printed it."""
        print(self.name, *args)

    def shut_chip(self):
        if self.chip is not None:
            self.chip.close()  # its wind thread ends

    def session(self):
        if self.app is None:
            return None
        return self.app.link.session if self.node is not None else self.app.session

    def turn(self, now):
        """One turn of this node's loop (what Node.run does each time round)."""
        simchip.use(self.chip)
        self.asked = None
        if self.sleep_ms is not None:  # its due: the wake
            if self.sleep_ms == 0:  # none: it waits on
                self.due = ticks_add(now, _LONGEST_DUE_MS)
                return
            self.sleep_ms = None
            self.wakes += 1
            self.boot(machine.DEEPSLEEP_RESET)
            return
        if self.held_until is not None:
            if ticks_diff(self.held_until, now) > 0:
                self.due = self.held_until  # still inside a held CPU (a socket woke it)
                return
            self.held_until = None
        if self.app is None:
            self.boot(machine.HARD_RESET)
            return
        chip = self.chip
        if chip.wdt_timeout_ms is not None and ticks_diff(now, chip.wdt_fed) > chip.wdt_timeout_ms:
            self.print("WDT: the watchdog was not fed in time, resetting")
            self.boot(machine.WDT_RESET)
            return
        try:
            if self.node is not None:
                self.node.step()
                self.node.watchdog.feed()
            elif self.timer is not None and ticks_diff(now, self.timer[2]) >= 0:
                self.timer[2] = ticks_add(now, self.timer[0])
                self.timer[1](None)
        except machine.ResetRequested as reset:
            self.reset(reset.kind, reset.sleep_ms)
            return
        except Exception as exc:  # as Node.run: a bug must not stop the loop (nor the others)
            node = self.node
            if node is None:  # a timer's callback (maintenance serves never raise)
                self.print("timer: %s %s" % (type(exc).__name__, exc))
                self.due = ticks_add(now, ERROR_PAUSE_MS)
                return
            node.loop_errors += 1
            node.log("loop: %s %s" % (type(exc).__name__, exc))
            node.reading_pass = None  # Node.run drops the pass that failed too
            self.due = ticks_add(now, ERROR_PAUSE_MS)
            return
        asked = self.asked
        if self.node is None:
            self.due = self.timer[2] if self.timer is not None else ticks_add(now, self.shared["idle_ms"])
        elif asked is None:
            self.due = now  # it did not idle: something to finish (a reading just published)
        elif asked < BUSY_MS:
            self.due = ticks_add(now, max(asked, BUSY_TURN_MS))
        else:
            self.due = ticks_add(now, self.shared["idle_ms"])
        if self.held_until is not None and ticks_diff(self.held_until, self.due) > 0:
            self.due = self.held_until

    def reset(self, kind, sleep_ms=None):
        """machine.reset() and the like: what run_application does on its way out, then boot.
        machine.deepsleep(): the firmware has let go of the broker itself; it sleeps."""
        if kind == "deepsleep":
            self.sleep(sleep_ms or 0)
            return
        if self.node is not None:
            self.node.relays.all_off("stopped")
            self.node.shutdown("restart")
        self.boot(RESET_CAUSES.get(kind, machine.HARD_RESET))

    def sleep(self, ms):
        """Deep sleep: no turns, nothing of the application left, the chip off but for
        its RTC memory (kept in its file), its pins undriven: the relays drop out. The
        wake is the member's due, the sleep later at the fleet's speed (a real day at
        most; ms 0: never, as a chip with no wake source)."""
        self.print("deepsleep: %d ms" % ms)
        self.node = self.app = self.timer = self.held_until = None
        self.wind_due = None
        self.shut_chip()
        for relay in self.chip.field.actuators:
            self.chip.field.set_actuator(relay, False)
        self.sleep_ms = ms
        real_ms = min(_LONGEST_DUE_MS, int(ms / self.shared["speed"])) if ms > 0 else _LONGEST_DUE_MS
        self.due = ticks_add(ticks_ms(), real_ms)

    def settled(self):
        """Every reading taken is acknowledged by the broker (nothing queued or in flight)."""
        session = self.session()
        if session is None:
            return True
        return session.connected and not len(session.queue) and not getattr(session.client, "inflight", None)

    def stats(self):
        node = self.node
        if self.sleep_ms is not None:
            return {"device": self.device_id, "running": "sleeping", "boots": self.boots, "wakes": self.wakes,
                    "sleep_ms": self.sleep_ms, "wake_in_ms": max(0, ticks_diff(self.due, ticks_ms()))}
        if node is None:
            return {"device": self.name, "running": "maintenance" if self.app is not None else "down",
                    "boots": self.boots}
        session = node.link.session
        return {"device": node.link.device_id, "running": "app", "boots": self.boots, "wakes": self.wakes,
                "boot_id": node.boot_id, "seq": node.seq, "connected": session.connected,
                "dropped": session.queue.dropped, "queued": len(session.queue),
                "inflight": len(getattr(session.client, "inflight", ())), "loop_errors": node.loop_errors}

    def stop(self):
        """Say offline and let go, as run_application does when its loop ends."""
        simchip.use(self.chip)
        self.final = self.stats()
        try:
            if self.node is not None:
                self.node.relays.all_off("stopped")
                self.node.shutdown("stopped")
            elif self.app is not None and hasattr(self.app, "stop"):
                self.app.stop("stopped")
        except Exception as exc:  # the others must still stop
            self.print("stop: %s %s" % (type(exc).__name__, exc))
        self.shut_chip()


class _Timer:
    def __init__(self, member):
        self._member = member

    def deinit(self):
        self._member.timer = None


class _SharedHeap:
    """The node's Heap (hw["heap"], firmware/heap.py) in a fleet. A node collects when it
    idles and reports the free heap in each reading: on a device both cost in proportion
    to its own heap; here the heap holds every node of the process, so each would pay for
    K nodes' heap, K times as often. Collected at most every COLLECT_MS instead, and the
    free heap (the process's) measured only then."""

    def __init__(self):
        self._next = ticks_ms()
        self._free = None

    def idle(self):
        self.free()

    def free(self):
        now = ticks_ms()
        if ticks_diff(now, self._next) >= 0:
            self._next = ticks_add(now, COLLECT_MS)
            gc.collect()
            self._free = gc.mem_free() if hasattr(gc, "mem_free") else None
        return self._free


class Fleet:
    def __init__(self, spec, lifeline):
        self.spec = spec
        self.lifeline = lifeline
        heap = _SharedHeap()  # one for the process: the heap is shared
        self.members = [Member(node, i + 1, spec, heap) for i, node in enumerate(spec["nodes"])]
        self.poller = select.poll()
        self.owners = {}  # socket fd -> member
        self.turns = 0
        self.rounds = 0
        self.started = ticks_ms()
        self.wind_due = self.started

    def boot(self):
        for member in self.members:
            member.boot(self.spec["reset_cause"])
            self.track(member)

    def track(self, member):
        """Keep the poller on the node's socket: a socket closed in its turn (its fd
        may be reused by the next member's new one) is let go right after that turn.
        (Safe mode reads its socket only on its timer: not polled.)"""
        session = member.node.link.session if member.node is not None else None
        sock = session.client.sock if session is not None and session.connected else None
        fd = sock.fileno() if sock is not None else None
        if fd == member.sock_fd:
            return
        if member.sock_fd is not None and self.owners.get(member.sock_fd) is member:
            self.poller.unregister(member.sock_fd)
            del self.owners[member.sock_fd]
        member.sock_fd = fd
        if fd is not None:
            if fd in self.owners:  # a stale registration (cannot happen: see above)
                self.poller.unregister(fd)
            self.poller.register(fd, select.POLLIN)
            self.owners[fd] = member

    def round(self, members):
        """A turn for each member that is due, then idle until the next is due or a
        socket has data."""
        now = ticks_ms()
        for member in members:
            if ticks_diff(now, member.due) >= 0:
                member.turn(now)
                self.track(member)
                self.turns += 1
        now = ticks_ms()
        if ticks_diff(now, self.wind_due) >= 0:
            self.wind_due = ticks_add(now, WIND_MS)
            for member in members:
                if member.wind_due is not None and ticks_diff(now, member.wind_due) >= 0:
                    member.wind_due = member.chip.wind_step(now)
        wait = min(self.spec["idle_ms"], ticks_diff(self.wind_due, now))
        for member in members:
            left = ticks_diff(member.due, now)
            if left < wait:
                wait = left
        if wait > 0:
            for fd, _ in self.poller.poll(wait):
                member = self.owners.get(fd)
                if member is not None:
                    member.due = now
        self.rounds += 1

    def run(self):
        next_stats = ticks_ms()
        while not self.lifeline.cut:
            self.round(self.members)
            now = ticks_ms()
            if ticks_diff(now, next_stats) >= 0:
                next_stats = ticks_add(now, STATS_MS)
                self.write_stats()
        self.stop()

    def stop(self):
        """Each node stops once what it took is acknowledged (or DRAIN_MS is over); one
        in deep sleep at once, asleep (a wake now would only say offline)."""
        running = []
        for member in self.members:
            if member.sleep_ms is None:
                running.append(member)
            else:
                member.stop()
        deadline = ticks_add(ticks_ms(), DRAIN_MS)
        while running:
            self.round(running)
            late = ticks_diff(ticks_ms(), deadline) >= 0
            for member in list(running):
                if late or member.settled():
                    member.stop()
                    self.track(member)
                    running.remove(member)
        self.write_stats(final=True)

    def write_stats(self, final=False):
        """The stats file, replaced whole; written a member at a time (one string for
        every member would need a large contiguous block of a busy heap)."""
        gc.collect()
        heap = (gc.mem_alloc(), gc.mem_free()) if hasattr(gc, "mem_alloc") else (None, None)
        head = {"runtime": sys.implementation.name, "nodes": len(self.members), "final": final,
                "heap_used": heap[0], "heap_free": heap[1], "turns": self.turns, "rounds": self.rounds,
                "uptime_ms": ticks_diff(ticks_ms(), self.started)}
        path = self.spec["stats"]
        with open(path + ".tmp", "w") as f:
            f.write(json.dumps(head)[:-1] + ', "members": [')
            for i, member in enumerate(self.members):
                f.write((", " if i else "") + json.dumps(member.final if final else member.stats()))
            f.write("]}")
        os.rename(path + ".tmp", path)


def _watch_hang(fleet):
    """A hung turn (a read that never returns) holds every node: the process is the
    board that hangs, and ends as a watchdog would end it (the simulator restarts it)."""
    nothing = select.poll()  # its poll() sleeps in one call (the unix port's sleep_ms
    seen = -1  # wakes every millisecond in a thread)
    since = ticks_ms()
    while True:
        nothing.poll(1000)
        if fleet.rounds != seen:
            seen = fleet.rounds
            since = ticks_ms()
        elif ticks_diff(ticks_ms(), since) > HANG_MS:
            power_off("WDT: no node has had a turn for %d s, resetting the fleet" % (HANG_MS // 1000))


def main():
    options = parse(sys.argv[1:], USAGE, {"--parent-fd": None})
    with open(options["root"]) as f:
        spec = json.load(f)
    fleet = Fleet(spec, lifeline_from_argv(options, power_off))
    try:
        import _thread

        _thread.start_new_thread(_watch_hang, (fleet,))
    except ImportError:
        pass  # no threads: nothing watches for a hang
    fleet.boot()
    fleet.run()


if __name__ == "__main__":
    main()
