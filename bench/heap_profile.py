# Where the firmware's heap goes (device side; bench/heap_floor.py --profile drives it).
# The node boots as in bench_node.py, with marks printed on the way:
#   HEAP module <name> <bytes>   heap a module holds once imported (its code, constants
#                                and module-level objects; nested imports not included)
#   HEAP phase <label> <bytes>   heap in use (after a collection) at a point of the boot
#                                or after a number of readings
#   HEAP peak <bytes> <seq> <job> <inflight>  each new highest heap in use between two turns
#                                of the loop (after a collection): the readings so far, whether
#                                a command's job (an OTA) was running, the QoS 1 messages
#                                awaiting PUBACK. What a turn allocates and frees inside it
#                                is not seen: the floor stands above these.
#   HEAP resident <names>        the modules loaded at the last marked reading (comma-separated)
#   HEAP object <depth> <class> <bytes>  heap an object of one of OBJECTS holds once made
#                                (the objects it makes included; depth: how many of them
#                                it is made inside)
# plus micropython.mem_info() and qstr_info() at those readings, and bench_node's FROM
# line. Each figure is gc.mem_alloc() after gc.collect(), so the marks cost time: a
# profile, not a benchmark of speed.
# Usage: micropython -X heapsize=N -m heap_profile ROOT SSID PASSWORD
import builtins
import gc
import sys

import micropython

import bench_node  # the stub modules it imports: the share, as bench_node counts it
from virtual_node import OPTIONS, make_chip

READINGS_MARKED = (1, 2, 10, 100, 1000, 2000)
# (module, class) of the long-lived objects a node is made of, measured when first made
OBJECTS = (("firmware.node", "Node"), ("firmware.console", "Console"), ("firmware.sensors.reader", "SensorReader"),
           ("firmware.relays", "RelayBank"), ("firmware.alerts", "Alerts"), ("firmware.commands", "Dispatcher"),
           ("firmware.commands", "Answered"), ("firmware.clock", "Clock"), ("outbox", "Outbox"),
           ("firmware.link", "Link"), ("firmware.session", "Session"), ("mqtt_client", "MQTTClient"),
           ("ringbuf", "RingBuffer"), ("firmware.wifi", "WifiLink"), ("firmware.heap", "Heap"),
           ("flashlog", "FlashLog"), ("bootguard", "BootGuard"))
_import = builtins.__import__
_nested = []  # bytes taken by the imports inside the one being measured, per level
_named = set()  # modules already given their figure (by the inner import that loaded them)


def held():
    gc.collect()
    return gc.mem_alloc()


def phase(label):
    print("HEAP phase %s %d" % (label, held()))


def measured_import(name, *args):
    loaded = len(sys.modules)
    if name in sys.modules and not (len(args) > 2 and args[2]):
        return _import(name, *args)  # already there (and no submodules asked for): costs nothing
    before_names = list(sys.modules)
    before = held()
    _nested.append(0)
    try:
        return _import(name, *args)
    finally:
        grown = held() - before
        inner = _nested.pop()
        if _nested:
            _nested[-1] += grown
        if len(sys.modules) != loaded:
            new = [m for m in sys.modules if m not in before_names and m not in _named]
            _named.update(new)
            if new:  # else modules unloaded and loaded again: counted the first time
                print("HEAP module %s %d" % ("+".join(sorted(new)), grown - inner))


_depth = [0]


def measure_objects():
    """Wrap the constructors of OBJECTS (the modules already imported) to print their heap."""
    for module_name, class_name in OBJECTS:
        __import__(module_name)
        cls = getattr(sys.modules[module_name], class_name)
        cls.__init__ = _measured(class_name, cls.__init__)


def _measured(name, init):
    def measured_init(self, *args, **kwargs):
        before = held()
        _depth[0] += 1
        try:
            init(self, *args, **kwargs)
        finally:
            _depth[0] -= 1
        print("HEAP object %d %s %d" % (_depth[0], name, held() - before))

    return measured_init


def main():
    root, ssid, password = sys.argv[1], sys.argv[2], sys.argv[3]
    options = dict(OPTIONS)
    options["--rtc"] = root + "/rtc.bin"
    make_chip({}, options, (ssid, password))
    phase("share")  # what bench_node reports as the share: stubs, chip, field, harness
    builtins.__import__ = measured_import
    from firmware import board
    from firmware.node import Node

    build_board = board.build

    def marked_build(cfg):
        phase("before board.build")
        built = build_board(cfg)
        phase("board.build (drivers, peripherals)")
        return built

    board.build = marked_build
    run_node = Node.run
    last_seq = [None]

    peak = [0]

    def watched(node):
        used = held()  # every turn: a profile's pace, not a node's
        if used > peak[0]:
            peak[0] = used
            print("HEAP peak %d %d %d %d" % (used, node.seq, node.dispatcher.job is not None,
                                              len(getattr(node.link.session.client, "inflight", ()))))
        if node.seq != last_seq[0]:
            last_seq[0] = node.seq
            if node.seq in READINGS_MARKED:
                phase("after %d readings" % node.seq)
                micropython.mem_info()
                micropython.qstr_info()
                print("HEAP resident %s" % ",".join(sorted(sys.modules)))
        return False

    def marked_run(node, until=None):
        phase("Node built")
        return run_node(node, lambda: watched(node))

    Node.run = marked_run
    from firmware import startup

    phase("imports done")
    measure_objects()
    micropython.qstr_info()
    bench_node.print_origins(startup)
    del startup
    bench_node.run_as_main(root)


if __name__ == "__main__":
    main()
