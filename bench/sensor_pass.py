# CPU cost of one full sensor pass (soil, DHT, NPK over Modbus, EC, pH, wind), wire
# time excluded. Runs under MicroPython (and CPython); prints one JSON line.
import gc
import json
import sys

from firmware.sensors.air import AirSensor
from firmware.sensors.ec import AnalogEC
from firmware.sensors.npk import NPKProbe
from firmware.sensors.ph import AnalogPH
from firmware.sensors.reader import SensorReader
from firmware.sensors.soil import SoilMoisture
from firmware.sensors.wind import Anemometer
from instant_hw import InstantADC, InstantDHT, InstantModbusSlave, InstantPin
from modbus_rtu import ModbusRTU
from ticks import ticks_diff, ticks_us

PASSES = 200


def build():
    air = AirSensor(InstantDHT())
    air._interval_ms = 0  # measure on every pass: the cost of a real read each time
    return SensorReader([
        SoilMoisture(InstantADC(2200)),
        air,
        NPKProbe(ModbusRTU(InstantModbusSlave([38, 15, 152]))),
        AnalogEC(InstantADC(700)),
        AnalogPH(InstantADC(1980)),
        Anemometer(InstantPin()),
    ])


def one_pass(reader):
    steps = reader.pass_steps()
    try:
        while True:
            next(steps)
    except StopIteration:
        pass


def heap_per_pass(reader, passes=20):
    """Bytes one pass allocates, measured with the collector off (None where unknown)."""
    if not hasattr(gc, "mem_alloc"):
        return None
    gc.collect()
    gc.disable()  # a collection in the middle would hide what the passes allocate
    before = gc.mem_alloc()
    for _ in range(passes):
        one_pass(reader)
    allocated = gc.mem_alloc() - before
    gc.enable()
    return allocated // passes


def main():
    reader = build()
    one_pass(reader)  # warm up: first-call allocations are not the loop's
    gc.collect()
    started = ticks_us()
    for _ in range(PASSES):
        one_pass(reader)
    elapsed_us = ticks_diff(ticks_us(), started)
    print(json.dumps({"bench": "sensor_pass", "interpreter": sys.implementation.name,
                      "passes": PASSES, "us_per_pass": elapsed_us // PASSES,
                      "heap_bytes_per_pass": heap_per_pass(reader),
                      "values": reader.values, "errors": reader.errors}))


if __name__ == "__main__":
    main()
