# Device side of the heap-floor and telemetry benchmarks (bench/heap_floor.py,
# bench/loop_latency.py): one farm node, the real firmware on the stubs and a field
# model, started as main.py starts it.
# Before any firmware module is imported it prints "HEAP share <bytes> of <heap>": what
# the heap holds then (the stub modules, the chip, the field model, this harness), which
# an ESP32 does not carry: its machine and network are C, its field is real.
# With "stamp", every publish is stamped: "TX <time_ns> <topic>" when the firmware
# hands it to the MQTT client, for publish -> arrival latency.
# Usage: micropython -X heapsize=N -m bench_node ROOT SSID PASSWORD [stamp]
import gc
import sys
import time

import dht  # noqa: F401  the stub modules the firmware imports: their heap is the share
import esp32  # noqa: F401
import machine  # noqa: F401
import network  # noqa: F401
import ntptime  # noqa: F401
from virtual_node import OPTIONS, make_chip


def stamp_publishes():
    from mqtt_client import MQTTClient

    publish = MQTTClient.publish

    def stamped(client, topic, msg, retain=False, qos=0):
        handed = time.time_ns()
        pid = publish(client, topic, msg, retain, qos)
        print("TX %d %s" % (handed, topic))  # after the send: the print is not in the figure
        return pid

    MQTTClient.publish = stamped


def main():
    root, ssid, password = sys.argv[1], sys.argv[2], sys.argv[3]
    options = dict(OPTIONS)
    options["--rtc"] = root + "/rtc.bin"
    make_chip({}, options, (ssid, password))  # {}: the default wiring, which the bench config keeps
    if hasattr(gc, "mem_alloc"):
        gc.collect()
        print("HEAP share %d of %d" % (gc.mem_alloc(), gc.mem_alloc() + gc.mem_free()))
    if sys.argv[4:] == ["stamp"]:
        stamp_publishes()
    from ota import Swap  # as main.py: an update staged before the reset is swapped in first

    update = Swap(root).boot()
    sys.modules.pop("ota")
    from firmware import startup

    startup.run(root, update)


if __name__ == "__main__":
    main()
