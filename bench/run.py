"""`make bench`: every benchmark in bench/ in one run, printed as one table and written
to BENCHMARKS.md with the machine it ran on. Figures are this machine's (loopback,
x86-64), not an ESP32's: each is measured in the same run as what it is compared with,
none is estimated; a figure that could not be measured says so.

    python bench/run.py [--quick] [--fleet-devices N] [--fleet-duration S] [--output FILE]
                        [--micropython-src DIR]

--quick: the heap floors to 8 KiB instead of 1 KiB, 100 latency samples instead of
500/300, the fleet 100 devices for 60 s instead of 1,000 for 300 s.
--micropython-src (or MICROPYTHON_SRC): a MicroPython source tree, from which mp32.py
builds (once, cached outside the repo) the 32-bit unix ports whose heap floors stand
beside the 64-bit ones; without it the table says how to get one."""
import checkout  # noqa: F401, I001  first: the farmctl of this checkout (bench/checkout.py)
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
import command_latency  # noqa: E402  beside this script
import heap_floor  # noqa: E402
import loop_latency  # noqa: E402
import mp32  # noqa: E402
from devicerun import Build  # noqa: E402

from farmctl import deploy  # noqa: E402
from farmctl.broker import find_mosquitto  # noqa: E402
from farmsim.runtime import ROOT, device_sys_path, find_micropython, micropython_env  # noqa: E402

FULL = {"resolution_kib": 1, "latency_samples": 500, "command_samples": 300, "fleet_devices": 1000,
        "fleet_duration": 300}
QUICK = {"resolution_kib": 8, "latency_samples": 100, "command_samples": 100, "fleet_devices": 100,
         "fleet_duration": 60}
GOAL_HEAP_KIB = 64
# 32-bit floors of the firmware, in KiB (the targets): goal, aim.
GOALS_32 = {"stock": (80, 64), "frozen": (40, 32)}
KINDS_32 = {  # what each 32-bit port loads as .mpy files and what it has frozen in
    "standard": "standard port: firmware, lib and stubs as .mpy",
    "stock": "stock-like: stubs frozen (C modules on a chip), firmware and lib as .mpy",
    "frozen": "frozen: stubs frozen, and firmware and lib frozen through manifest.py"}
ESP32_BUDGET = ("heap budget of a stock ESP32_GENERIC image: a 56 KiB GC heap that grows once to about 112; "
                "Wi-Fi takes about 28 of it and one TLS connection about 25")
SEED_000_BYTES = "seed 000: about 250 for 7 values"
FLEET_SCRIPT = HERE / "fleet.py"
FLEET_STARTUP_S = 900  # on top of the measured duration: every node online, the settling


def log(text):
    print(text, file=sys.stderr, flush=True)


def run_device_bench(script, interpreter, args=()):
    """Last stdout line of a device-side bench script (from the sources) as JSON."""
    if interpreter == "micropython":
        cmd = [find_micropython(), "-X", "heapsize=256k", str(HERE / script), *args]
        env = micropython_env([str(HERE)])
    else:
        cmd = [sys.executable, str(HERE / script), *args]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *device_sys_path()]))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError("%s failed under %s:\n%s%s" % (script, interpreter, done.stdout, done.stderr))
    return json.loads(done.stdout.strip().splitlines()[-1])


def _first_line(argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "unknown (%s)" % exc
    return (done.stdout or done.stderr).strip().splitlines()[0]


def micropython_version(binary):
    return _first_line([binary, "-c", "import sys; v = sys.implementation.version; "
                        "print('%d.%d.%d%s, %s' % (v[0], v[1], v[2], v[3] and '-' + v[3], "
                        "sys.version.split('; ')[-1]))"])


def machine(load_at_start, port32=None):
    """What the figures were measured on, read now; load_at_start: os.getloadavg() then;
    port32: heap32_rows' result, when the 32-bit ports were built."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = "%s, Linux %s" % (line.split("=", 1)[1].strip('"'), platform.release())
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True).stdout.splitlines()
    if changed:
        commit += " + uncommitted changes to %d files" % len(changed)
    micropython = micropython_version(find_micropython())
    try:
        import paho.mqtt

        paho = paho.mqtt.__version__
    except (ImportError, AttributeError):
        paho = "unknown"
    ports = []
    if port32:
        ports.append(("MicroPython 32-bit", "unix port %s, built from %s (%s) with `%s`" % (
            micropython_version(port32["binaries"]["standard"]), port32["key"], port32["src"],
            " ".join(mp32.MAKE_FLAGS))))
    return [
        ("CPU", "%s, %d cores" % (cpu, os.cpu_count())),
        ("RAM", "%.1f GiB" % (mem_kib / 1024 / 1024)),
        ("OS", os_name),
        ("Python", "%s %s (paho-mqtt %s)" % (platform.python_implementation(), platform.python_version(), paho)),
        ("MicroPython", "unix port %s, %d-bit" % (micropython, 64 if sys.maxsize > 2 ** 32 else 32)),
        *ports,
        ("mpy-cross", ".mpy v%d.%d" % deploy.mpy_cross_version()),
        ("mosquitto", _first_line([find_mosquitto(), "-h"])),
        ("load average (1 min)", "%.1f at the start, %.1f at the end (other work on the machine shows in "
                                 "the latencies)" % (load_at_start[0], os.getloadavg()[0])),
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("git commit", commit),
    ]


def kib(n_bytes):
    return "%.1f" % (n_bytes / 1024)


def ms(figures, key):
    return "-" if figures.get(key) is None else "%.2f" % figures[key]


class Table:
    """Rows of (figure, micropython, cpython, baseline/goal, unit) by section, shown in
    SECTIONS order whatever order they were measured in; notes below."""

    HEAD = ("figure", "micropython", "cpython", "baseline / goal", "unit")
    SECTIONS = ("heap floor", ".mpy size", "telemetry size", "command latency", "telemetry latency",
                "sensor pass", "fleet")

    def __init__(self):
        self.rows = {section: [] for section in self.SECTIONS}
        self.section = self.SECTIONS[0]
        self.notes = []
        self.failed = False

    def row(self, figure, micropython="-", cpython="-", baseline="-", unit=""):
        self.rows[self.section].append((figure, str(micropython), str(cpython), str(baseline), unit))

    def failure(self, exc):
        self.failed = True
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        self.row(self.section, "failed", "failed", "-", "")
        self.notes.append("%s: failed: %s" % (self.section, text))

    def markdown(self):
        lines = ["| " + " | ".join(self.HEAD) + " |", "|" + "---|" * len(self.HEAD)]
        for section in self.SECTIONS:
            for row in self.rows[section]:
                lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
        return lines


def steady_bytes(at_floor):
    """The firmware's heap in use after its last reading, share off: None if unknown."""
    if at_floor["heap_free_last"] is None:
        return None
    return at_floor["heap_bytes"] - at_floor["heap_free_last"] - at_floor["share_bytes"]


def heap_rows(table, build, workdir, settings):
    """The 64-bit floors; returns heap_floor.floor()'s results by target."""
    cycles, reconnects = heap_floor.CYCLES, heap_floor.RECONNECTS
    workload = "%d telemetry cycles with commands, %d reconnects, an OTA check, firmware as .mpy" % (cycles,
                                                                                                  reconnects)
    results = {}
    for target in ("firmware", "romfs", "bare"):
        log("heap floor: %s (bisection to %d KiB)" % (target, settings["resolution_kib"]))
        results[target] = heap_floor.floor(target, build, workdir, resolution_kib=settings["resolution_kib"])
    firmware, romfs, bare = results["firmware"], results["romfs"], results["bare"]
    for result in (firmware, romfs, bare):
        if result["error"]:
            table.notes.append("heap floor (%s): %s" % (result["target"], result["error"]))
    res = settings["resolution_kib"]
    bare_floor = "-" if bare["floor_kib"] is None else bare["floor_kib"]
    if firmware["floor_kib"] is None:
        table.row("heap floor, firmware: " + workload, "failed", "-", "goal %d KiB" % GOAL_HEAP_KIB, "KiB")
    else:
        at = firmware["at_floor"]
        share_kib = at["share_bytes"] / 1024
        table.row("heap floor, whole process (firmware + stubs + field model + harness): " + workload,
                  firmware["floor_kib"], "-", "-", "KiB")
        table.row("  of which stubs, chip, field model, harness (held before the first firmware import, same run)",
                  kib(at["share_bytes"]), "-", "-", "KiB")
        table.row("heap floor, firmware (whole - share; 64-bit unix port: an upper bound for a 32-bit ESP32)",
                  "%.1f" % (firmware["floor_kib"] - share_kib), "-",
                  "goal %d KiB; bare loop %s KiB" % (GOAL_HEAP_KIB, bare_floor), "KiB")
        if steady_bytes(at) is not None:
            table.row("firmware heap in use after its last reading at the floor (after a collection, share off)",
                      kib(steady_bytes(at)), "-", "-", "KiB")
    if romfs["floor_kib"] is not None:
        at = romfs["at_floor"]
        table.row("heap floor, firmware run in place from a ROMFS image (code in flash, as `mpremote romfs "
                  "deploy` puts it; whole - image - stubs' share)",
                  "%.1f" % (romfs["floor_kib"] - at["share_bytes"] / 1024), "-",
                  "goal %d KiB; bare loop %s KiB" % (GOAL_HEAP_KIB, bare_floor), "KiB")
    table.row("heap floor, baseline: bare lib/mqtt loop answering %d commands, %d reconnects" % (cycles, reconnects),
              bare_floor, "-", "-", "KiB")
    table.notes.append(
        "Heap floor: smallest `micropython -X heapsize` (bisection, %d KiB steps, %d tries firmware, %d bare) at "
        "which the whole run passes: paho saw every answer and every reading, and the console has no "
        "MemoryError or survived exception. Share: gc.mem_alloc() after gc.collect() in the same process, "
        "before the first firmware import (stub modules, chip, field model, harness); peripheral objects "
        "made through the stubs and the stubs' garbage during the run stay in the firmware's figure. "
        "ROMFS: the image (firmware/ and lib/ as .mpy) is read into the heap before the share is measured, "
        "so the share holds it; its bytecode runs in place, as from a flash partition (%d tries). OTA check: "
        "halfway, an `ota` command for an update whose one file does not match its sha256, served on loopback; "
        "the node downloads it and must refuse it with that error, staging nothing."
        % (res, len(firmware["attempts"]), len(bare["attempts"]), len(romfs["attempts"])))
    return results


def heap32_rows(table, build, workdir, settings, src, floors64):
    """The firmware's floors on the 32-bit unix ports mp32.py builds from src (a MicroPython
    tree), beside the stock ESP32's budget; floors64: heap_rows' results. Each kind's
    bisection starts from a heap it surely runs in: the 64-bit floor for standard, then the
    floor of the kind before (each freezes more). Returns {"binaries", "key", "src"}, or
    None without a source tree."""
    res = settings["resolution_kib"]
    label = "heap floor, firmware on a 32-bit unix port"
    try:
        started = time.monotonic()
        binaries = mp32.build(src)
        built_s = time.monotonic() - started
        mp32.verify(src, binaries["frozen"])  # manifest.py freezes what deploy installs, imported from .frozen
    except mp32.BuildError as exc:
        log("32-bit heap floors: not measured: %s" % exc)
        table.row(label, "not measured", "-", "see the notes", "KiB")
        table.notes.append("32-bit heap floors: not measured: %s." % exc)
        table.failed = table.failed or bool(src)  # asked for and not built
        return None
    tree = mp32.source_tree(src)
    high = (floors64 or {}).get("firmware", {}).get("floor_kib") or heap_floor.HIGH_KIB
    tries = []
    for kind in mp32.KINDS:
        port = build.on_port(binaries[kind], mp32.FROZEN[kind])
        folder = Path(workdir) / ("mp32-" + kind)
        folder.mkdir()
        log("heap floor: firmware, 32-bit %s port (bisection to %d KiB, from %d KiB)" % (kind, res, high))
        result = heap_floor.floor("firmware", port, folder, high_kib=high, resolution_kib=res)
        if result["error"] and high < heap_floor.HIGH_KIB:  # the bound did not hold: bisect from the default
            log("  %s: %s; again from %d KiB" % (kind, result["error"], heap_floor.HIGH_KIB))
            result = heap_floor.floor("firmware", port, folder / "again", resolution_kib=res)
        goal = "goal ≤ %d KiB (aim %d)" % GOALS_32[kind] if kind in GOALS_32 else "-"
        if result["error"]:
            table.row("%s, %s (whole - share)" % (label, KINDS_32[kind]), "failed", "-", goal, "KiB")
            table.notes.append("32-bit heap floor (%s): %s" % (kind, result["error"]))
            table.failed = True
            continue
        at = result["at_floor"]
        table.row("%s, %s (whole - share)" % (label, KINDS_32[kind]),
                  "%.1f" % (result["floor_kib"] - at["share_bytes"] / 1024), "-", goal, "KiB")
        if steady_bytes(at) is not None:
            table.row("  its heap in use after the last reading at the floor (after a collection, share off)",
                      kib(steady_bytes(at)), "-", "-", "KiB")
        tries.append("%s %d KiB whole, share %s, %d tries" % (kind, result["floor_kib"], kib(at["share_bytes"]),
                                                              len(result["attempts"])))
        high = result["floor_kib"]
    table.row(ESP32_BUDGET, "~112", "-", "-", "KiB")
    key = mp32.cache_key(tree)
    table.notes.append(
        "32-bit heap floors: the same run (workload, checks, share taken off) on 32-bit unix ports of MicroPython "
        "%s, built by bench/mp32.py from %s (%.0f s to build them or bring them up to date; cached in %s): %s. "
        "Standard loads everything as .mpy files, as the 64-bit run does; stock-like is `farmctl deploy` onto a "
        "stock image, whose machine, network, dht... are C (the stubs frozen stand for them); frozen is an image "
        "built with manifest.py." % (key, tree, built_s, mp32.CACHE / key, "; ".join(tries)))
    profile_notes(table, build.on_port(binaries["frozen"], mp32.FROZEN["frozen"]), Path(workdir) / "mp32-frozen",
                  "32-bit unix port, firmware frozen")
    return {"binaries": binaries, "key": key, "src": str(tree)}


def profile_notes(table, build, workdir, port="64-bit unix port"):
    log("heap profile (%s)" % port)
    result = heap_floor.profile(build, workdir)
    if not result["passed"]:
        table.notes.append("heap profile (%s): failed: %s" % (port, result["reason"]))
        return
    top = ", ".join("%s %s" % (name, kib(size)) for name, size in result["modules"][:10])
    total = sum(size for _, size in result["modules"])
    table.notes.append("Where the firmware's heap goes (%s, KiB, after a collection; a module's figure includes "
                       "the qstr-table growth its import caused): modules %s in all; largest: %s."
                       % (port, kib(total), top))
    table.notes.append("Heap in use along the profile run (%s, KiB, stubs' share included): %s." % (port, ", ".join(
        "%s %s" % (label, kib(size)) for label, size in result["phases"])))
    if result["peaks"]:
        used, readings, job, inflight = result["peaks"][-1]
        table.notes.append("Highest heap in use between two turns of the loop (%s, KiB, stubs' share included): "
                           "%s, after %d readings%s, %d messages awaiting PUBACK; steady after the run: %s."
                           % (port, kib(used), readings, ", during a job (the OTA check)" if job else "", inflight,
                              kib(result["phases"][-1][1])))
    qstr = [line for line in result["mem_info"] if line.startswith("qstr pool:")]
    if qstr:
        table.notes.append("Interned strings after the run (%s): %s (stubs' included)."
                           % (port, qstr[-1].split(": ", 1)[1]))


def size_rows(table, build):
    firmware, lib = build.mpy_bytes("firmware"), build.mpy_bytes("lib")
    table.row(".mpy files, firmware/ + lib/ (mpy-cross, as `farmctl deploy` builds them)",
              "{:,}".format(firmware + lib), "-", "-", "bytes")
    table.row("  firmware/ alone", "{:,}".format(firmware), "-", "-", "bytes")


def telemetry_size_rows(table, latency):
    sizes = {interpreter: run_device_bench("telemetry_size.py", interpreter)["profiles"]
             for interpreter in ("micropython", "cpython")}
    for name, size in sorted(sizes["micropython"].items()):
        other = sizes["cpython"][name]
        table.row("telemetry message, profile %s: payload (whole MQTT packet); every sensor present" % name,
                  "%d (%d)" % (size["payload"], size["packet"]), "%d (%d)" % (other["payload"], other["packet"]),
                  SEED_000_BYTES if name == "smartfarm" else "-", "bytes")
    if latency:
        table.row("telemetry payload of the running node (farmnode profile, median of the latency run)",
                  latency.get("micropython", {}).get("payload_bytes_p50", "-"),
                  latency.get("cpython", {}).get("payload_bytes_p50", "-"), "-", "bytes")


def command_rows(table, build, workdir, settings):
    samples = settings["command_samples"]
    results = {}
    for run in command_latency.RUNS:
        for runtime in ("micropython", "cpython"):
            log("command -> relay latency (%s): %s" % (run, runtime))
            results[run, runtime] = command_latency.measure(runtime, samples, run)
    log("bare loop command round trip")
    bare = loop_latency.bare_round_trip(build, workdir, samples)
    mp, cp = results["idle", "micropython"], results["idle", "cpython"]
    for figure, key in (("relay", "relay"), ("response", "response")):
        what = ("command -> relay: paho publishes `relay`, the node's telemetry with the new state arrives"
                if key == "relay" else "command -> response: paho publishes `relay`, its command_response arrives")
        for q in ("p50", "p99"):
            table.row("%s, %s (%d commands)" % (what, q, samples), ms(mp[key], q + "_ms"), ms(cp[key], q + "_ms"),
                      "bare loop round trip %s %s" % (q, ms(bare, q + "_ms")), "ms")
    mp, cp = results["passes", "micropython"], results["passes", "cpython"]
    for q in ("p50", "p99"):
        table.row("command -> relay as above, commands %s, %s (%d commands)"
                  % (command_latency.describe("passes"), q, samples),
                  ms(mp["relay"], q + "_ms"), ms(cp["relay"], q + "_ms"),
                  "no passes %s: micropython %s, cpython %s" % (q, ms(results["idle", "micropython"]["relay"], q + "_ms"),
                                                                ms(results["idle", "cpython"]["relay"], q + "_ms")),
                  "ms")
    for (run, runtime), result in results.items():
        if result["timeouts"]:
            table.notes.append("command latency (%s, %s): %d of %d commands timed out" % (
                run, runtime, result["timeouts"], result["commands"]))


def telemetry_latency_rows(table, build, workdir, settings):
    samples = settings["latency_samples"]
    results = {}
    for runtime in ("micropython", "cpython"):
        log("telemetry latency: %s" % runtime)
        results[runtime] = loop_latency.telemetry(build, workdir, runtime, samples)
    log("bare publisher latency")
    bare = loop_latency.publisher(build, workdir, samples)
    for q in ("p50", "p99"):
        table.row("telemetry publish -> arrival: the firmware hands a reading to its MQTT client -> paho has it, "
                  "%s (%d readings)" % (q, samples),
                  ms(results["micropython"], q + "_ms"), ms(results["cpython"], q + "_ms"),
                  "bare lib/mqtt publisher %s %s" % (q, ms(bare, q + "_ms")), "ms")
    return results


def sensor_rows(table):
    results = {interpreter: run_device_bench("sensor_pass.py", interpreter) for interpreter in ("micropython", "cpython")}
    table.row("sensor pass, CPU time (6 sensors, wire time excluded)", results["micropython"]["us_per_pass"],
              results["cpython"]["us_per_pass"], "-", "us")
    heap = results["micropython"].get("heap_bytes_per_pass")
    table.row("sensor pass, heap allocated", "-" if heap is None else heap, "-", "-", "bytes")


def fleet_rows(table, settings):
    devices, duration = settings["fleet_devices"], settings["fleet_duration"]
    label = "fleet: %d virtual nodes, %d s" % (devices, duration)
    if not FLEET_SCRIPT.exists():
        table.row(label, "not run", "-", "-", "")
        table.notes.append("fleet: not run, bench/fleet.py is not there")
        return
    log("fleet: %d devices, %d s" % (devices, duration))
    argv = [sys.executable, str(FLEET_SCRIPT), "--devices", str(devices), "--duration", str(duration)]
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
                              timeout=duration + FLEET_STARTUP_S, cwd=ROOT)
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            raise RuntimeError("exit %d: %s" % (done.returncode, " | ".join(lines[-3:])))
        fleet = json.loads(lines[-1])
    except (subprocess.TimeoutExpired, RuntimeError, ValueError) as exc:
        table.row(label, "not run", "-", "-", "")
        table.notes.append("fleet: failed: %s" % str(exc)[:300])
        table.failed = True
        return
    runtime = fleet.get("runtime", "micropython")

    def cell(value):
        return (value, "-") if runtime == "micropython" else ("-", value)

    table.row("fleet: %s nodes in %s processes, %s s measured" % (fleet["devices"], fleet["processes"],
                                                                   fleet["duration_s"]), *cell("run"), "-", "")
    table.row("  readings received / expected", *cell("%s / %s" % (fleet["received"], fleet["expected"])), "-",
              "readings")
    table.row("  lost, duplicates, dropped on the node", *cell("%s, %s, %s" % (fleet["lost"], fleet["duplicates"],
                                                                                fleet["dropped"])), "-", "readings")
    table.row("  throughput", *cell(fleet["msg_per_s"]), "-", "msg/s")
    table.row("  CPU per node, mosquitto", *cell("%s, %s" % (fleet["cpu_pct_per_node"], fleet["cpu_pct_mosquitto"])),
              "-", "% of a core")
    table.row("  memory per node: RSS, MicroPython heap in use", *cell("%s, %s" % (fleet["rss_kb_per_node"],
                                                                                   fleet["heap_kb_per_node"])), "-", "KB")


def write(table, machine_lines, quick, started, path):
    text = ["# Benchmarks", "",
            "Measured by `make bench%s` in %.0f min; every figure below comes from that one run. Loopback, "
            "x86-64: these compare versions of the firmware and the two runtimes, they do not predict an ESP32."
            % (" BENCH_ARGS=--quick" if quick else "", (time.monotonic() - started) / 60), ""]
    text += table.markdown()
    text += ["", "Machine: " + "; ".join("%s: %s" % item for item in machine_lines), ""]
    text += ["- " + note for note in table.notes]
    Path(path).write_text("\n".join(text) + "\n")
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--fleet-devices", type=int)
    parser.add_argument("--fleet-duration", type=int)
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--micropython-src", metavar="DIR", default=os.environ.get("MICROPYTHON_SRC"),
                        help="a MicroPython source tree, for the 32-bit heap floors (default: $MICROPYTHON_SRC)")
    args = parser.parse_args()
    settings = dict(QUICK if args.quick else FULL)
    if args.fleet_devices:
        settings["fleet_devices"] = args.fleet_devices
    if args.fleet_duration:
        settings["fleet_duration"] = args.fleet_duration
    started = time.monotonic()
    load_at_start = os.getloadavg()
    table = Table()
    measured = {}
    with tempfile.TemporaryDirectory() as workdir:
        build = Build(Path(workdir) / "build")
        # (table section, name of what it returns, what measures it), in this order: the
        # 32-bit floors start from the 64-bit one, telemetry size uses the latency run's messages.
        sections = [
            ("heap floor", "heap64", lambda: heap_rows(table, build, workdir, settings)),
            ("heap floor", "heap32", lambda: heap32_rows(table, build, workdir, settings, args.micropython_src,
                                                         measured.get("heap64"))),
            ("heap floor", "profile", lambda: profile_notes(table, build, workdir)),
            (".mpy size", "size", lambda: size_rows(table, build)),
            ("command latency", "command latency", lambda: command_rows(table, build, workdir, settings)),
            ("telemetry latency", "telemetry latency",
             lambda: telemetry_latency_rows(table, build, workdir, settings)),
            ("telemetry size", "telemetry size", lambda: telemetry_size_rows(table, measured.get("telemetry latency"))),
            ("sensor pass", "sensor pass", lambda: sensor_rows(table)),
            ("fleet", "fleet", lambda: fleet_rows(table, settings)),
        ]
        for section_name, name, section in sections:
            table.section = section_name
            try:
                measured[name] = section()
            except Exception as exc:  # one benchmark failing leaves the others' figures
                table.failure(exc)
    text = write(table, machine(load_at_start, measured.get("heap32")), args.quick, started, args.output)
    print("\n".join(text))
    print("\nwritten to %s" % args.output)
    sys.exit(1 if table.failed else 0)


if __name__ == "__main__":
    main()
