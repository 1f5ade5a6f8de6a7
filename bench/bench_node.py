# Device side of the heap-floor and telemetry benchmarks (bench/heap_floor.py,
# bench/loop_latency.py): one farm node, the real firmware on the stubs and a field
# model, started as main.py starts it.
# Before any firmware module is imported it prints "HEAP share <bytes> of <heap>": what
# the heap holds then (the stub modules, the chip, the field model, this harness), which
# an ESP32 does not carry: its machine and network are C, its field is real.
# With "stamp", every publish is stamped: "TX <time_ns> <topic>" when the firmware
# hands it to the MQTT client, for publish -> arrival latency.
# With "rom IMAGE", the firmware and lib/ come from a ROMFS image (see mount_rom).
# Once the firmware is imported it prints "FROM stubs <file> lib <file> firmware <file>":
# the __file__ of a module of each, which tells a frozen module from a file.
# Usage: micropython -X heapsize=N -m bench_node ROOT SSID PASSWORD [stamp | rom IMAGE]
import gc
import sys
import time

import dht  # noqa: F401  the stub modules the firmware imports: their heap is the share
import esp32  # noqa: F401
import machine  # noqa: F401
import network  # noqa: F401
import ntptime  # noqa: F401
import onewire  # noqa: F401  (frozen Python on an ESP32 image, as dht is)
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


def mount_rom(image_path):
    """Run the firmware from a ROMFS image (mpremote romfs build), as a device whose
    code sits in a flash partition: .mpy bytecode is executed in place, not loaded
    into the heap. Here the image itself has to sit in the heap; it is read first, in
    one block, and counted in the share (a device keeps it in flash)."""
    import vfs

    with open(image_path, "rb") as f:
        image = f.read()
    vfs.mount(vfs.VfsRom(image), "/rom")
    sys.path[:0] = ["/rom", "/rom/lib"]
    print("HEAP rom %d" % len(image))


def print_origins(firmware_module):
    import ticks

    print("FROM stubs %s lib %s firmware %s" % (machine.__file__, ticks.__file__, firmware_module.__file__))


def run_as_main(root, update=None):
    """What main.py does: the node built, the boot's code let go, then its loop."""
    from firmware import startup, unload

    device = startup.run(root, update)
    del startup
    unload("firmware.startup", "firmware.app")
    device.run_application()


def main():
    root, ssid, password = sys.argv[1], sys.argv[2], sys.argv[3]
    if sys.argv[4:5] == ["rom"]:
        mount_rom(sys.argv[5])
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
    sys.modules.pop("ota_files")
    from firmware import startup

    print_origins(startup)
    del startup
    run_as_main(root, update)


if __name__ == "__main__":
    main()
