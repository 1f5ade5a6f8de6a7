# A farm node on the host: the real firmware on the stubs and a field model.
# Runs under MicroPython (the unix port) or CPython:
#   virtual_node.py ROOT [--field FILE] [--speed X] [--seed N] [--start-hour H] [--reset-cause N]
# ROOT is the device's filesystem: config.json and secrets.json as on an ESP32.
import sys

from fieldmodel import Field
from ota import Swap
from simchip import new_chip, wiring_from_config


def parse(argv):
    options = {"root": argv[0], "--field": None, "--speed": "1", "--seed": "1",
               "--start-hour": "9", "--reset-cause": "1"}
    i = 1
    while i < len(argv):
        if argv[i] not in options or i + 1 >= len(argv):
            raise SystemExit("usage: virtual_node.py ROOT [--field FILE] [--speed X] [--seed N] "
                             "[--start-hour H] [--reset-cause N]")
        options[argv[i]] = argv[i + 1]
        i += 2
    return options


def main():
    options = parse(sys.argv[1:])
    root = options["root"]
    Swap(root).boot()  # as main.py does, before the application is imported
    sys.modules.pop("ota")
    from firmware import app, config

    cfg, _ = config.load(root)
    field = Field(seed=int(options["--seed"]), speed=float(options["--speed"]),
                  start_hour=float(options["--start-hour"]), steer_path=options["--field"])
    chip = new_chip(field, wiring_from_config(cfg))
    chip.ap["ssid"] = cfg["wifi"]["ssid"]  # the simulated access point is the configured one
    chip.ap["password"] = cfg["wifi"]["password"]
    chip.reset_cause = int(options["--reset-cause"])
    app.run(root)


main()
