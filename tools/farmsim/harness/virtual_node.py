# A farm node on the host: the real firmware on the stubs and a field model.
# Runs under MicroPython (the unix port) or CPython:
#   virtual_node.py ROOT [--field FILE] [--speed X] [--seed N] [--start-hour H]
#                        [--reset-cause N] [--rtc FILE] [--boot-button 0|1] [--sleep FILE]
#                        [--parent-fd FD]
# ROOT is the device's filesystem: config.json and secrets.json as on an ESP32. FD: the
# lifeline (lifeline.py): when the simulator closes it or dies, the node stops cleanly
# (relays off, status offline) and the process ends.
# When the firmware calls machine.deepsleep(ms) the process ends (exit status 0) as the
# chip's program does: the firmware has said "sleeping" and let go of the broker itself.
# The sleep FILE says so ({"sleep_ms": ms, "field": the field's state}); the simulator
# starts the node again at the wake with --reset-cause 4, and the field goes on from it.
import json
import os
import sys
import time

import machine
from fieldmodel import Field
from lifeline import from_argv as lifeline_from_argv
from simchip import ADC1_PINS, new_chip, wired_gpios, wiring_from_config

OPTIONS = {"--field": None, "--speed": "1", "--seed": "1", "--start-hour": "9",
           "--reset-cause": "1", "--rtc": None, "--boot-button": "0", "--sleep": None, "--parent-fd": None}
USAGE = ("usage: %s ROOT [--field FILE] [--speed X] [--seed N] [--start-hour H] "
         "[--reset-cause N] [--rtc FILE] [--boot-button 0|1] [--sleep FILE] [--parent-fd FD]")


def parse(argv, usage, options=OPTIONS):
    parsed = dict(options)
    parsed["root"] = argv[0] if argv else None
    i = 1
    while i < len(argv):
        if argv[i] not in options or i + 1 >= len(argv):
            raise SystemExit(usage)
        parsed[argv[i]] = argv[i + 1]
        i += 2
    if parsed["root"] is None:
        raise SystemExit(usage)
    return parsed


def power_off(message):
    """End this process at once, as a reset ends a chip: no cleanup, no shutdown."""
    print(message)
    if sys.implementation.name == "micropython":
        os.system("kill -9 $PPID")  # the unix port has no os._exit; the shell's parent is us
    os._exit(1)


def set_access_points(chip, networks):
    """The chip's access points in reach: one per (ssid, password) of networks, each a
    little weaker than the one before (the field's steering file may say otherwise)."""
    if networks:
        chip.ap["ssid"], chip.ap["password"] = networks[0]
    chip.more_aps = [{"ssid": ssid, "password": password, "up": True, "rssi": chip.ap["rssi"] - 8 * (i + 1)}
                     for i, (ssid, password) in enumerate(networks[1:])]


def make_chip(cfg, options, ap=None):
    """The simulated chip for this boot: wiring from cfg (a config, or a device's partial
    config.json), the field model (the one slept in, at a wake from deep sleep), RTC
    memory kept in the --rtc file across processes, the BOOT button, and a watchdog
    that ends the process when it bites."""
    field = Field(seed=int(options["--seed"]), speed=float(options["--speed"]),
                  start_hour=float(options["--start-hour"]), steer_path=options["--field"])
    woken = int(options["--reset-cause"]) == machine.DEEPSLEEP_RESET
    if options.get("--sleep"):
        resume_field(field, options["--sleep"], woken)
    chip = new_chip(field, wiring_from_config(cfg))
    if woken:
        chip.wake_reason = machine.TIMER_WAKE
    if ap is not None:
        set_access_points(chip, [ap] if type(ap) is tuple else ap)
    chip.logging = False  # nothing reads the stubs' records here: keep them out of the heap
    chip.reset_cause = int(options["--reset-cause"])
    chip.boot_button = options["--boot-button"] == "1"
    if options["--rtc"]:
        chip.keep_rtc_in(options["--rtc"])
    chip.on_watchdog = lambda: power_off("WDT: the watchdog was not fed in time, resetting")
    # An ESP32's Pin and ADC objects are static, in flash: made here, before the node
    # starts, they are not the firmware's heap (the benchmarks' share is measured after).
    for gpio in wired_gpios(chip.wiring):
        machine.Pin(gpio)
        if gpio in ADC1_PINS:
            machine.ADC(gpio)
    return chip


def resume_field(field, path, woken):
    """At a wake, the field goes on from the sleep file, the sleep later; the file is
    removed at every boot: it tells of this boot's sleep, or of none."""
    try:
        with open(path) as f:
            note = json.loads(f.read())
        os.remove(path)
        if woken:
            field.resume(note["field"], note["sleep_ms"] / 1000)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no sleep file (or not one of ours): a new field


def deep_sleep(chip, ms, path):
    """The chip goes into deep sleep: the process is to end as its program does. The
    sleep file (path) tells the simulator how long, and the next process the field."""
    chip.close()  # its timer threads end: nothing runs while it sleeps
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(json.dumps({"sleep_ms": ms, "field": chip.field.state()}))
        os.rename(path + ".tmp", path)  # whole or not at all
    print("deepsleep: %d ms" % ms)


def main():
    options = parse(sys.argv[1:], USAGE % "virtual_node.py")
    root = options["root"]
    from ota import Swap

    update = Swap(root).boot()  # as main.py does, before the application is imported
    sys.modules.pop("ota")
    sys.modules.pop("ota_files")
    from firmware import config, startup
    from firmware.wifi import networks

    cfg, _ = config.load(root)
    # The simulated access point is the configured one.
    chip = make_chip(cfg, options, networks(cfg["wifi"]))
    lifeline = lifeline_from_argv(options, power_off)
    try:
        # The node's turns are this script's (its loop, until the lifeline is cut).
        device = startup.run(root, update)
        if hasattr(device, "step"):
            device.run(until=lambda: lifeline.cut)
            device.relays.all_off("stopped")
            device.shutdown("stopped")
            return
        while not lifeline.cut:  # maintenance: its timer serves it; a device would sit at the REPL
            time.sleep(0.2)
        device.stop("stopped")
    except machine.ResetRequested as reset:
        if reset.kind != "deepsleep":
            raise  # the process ends: the simulator boots the node again
        deep_sleep(chip, reset.sleep_ms or 0, options["--sleep"])


if __name__ == "__main__":
    main()
