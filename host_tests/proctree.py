"""Processes on this machine, from /proc: which a process started, and which are alive."""
import os
import time
from pathlib import Path


def _parents():
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended while we looked
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid):
    """Every living process pid started, directly or not (its children's children...)."""
    parents = _parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids):
    living = set(_parents())
    return {pid for pid in pids if pid in living}


def wait_gone(pids, timeout_s):
    """The pids still alive after timeout_s (empty as soon as all are gone)."""
    deadline = time.monotonic() + timeout_s
    left = alive(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = alive(left)
    return left


def names(pids):
    out = {}
    for pid in pids:
        try:
            out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
        except OSError:
            pass
    return out


def kill_all(pids, sig):
    for pid in alive(pids):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
