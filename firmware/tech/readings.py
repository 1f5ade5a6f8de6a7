# tech.read(): one pass of every enabled sensor, a line each, and the trims applied.
from firmware.tech.sensing import line, reader_for, release, sensor_pass


def read(tech):
    from firmware import config

    cfg, _ = config.load(tech.root)
    reader, problems = reader_for(cfg)
    try:
        if not reader.drivers:
            tech._out("no sensor is enabled (config sensors.*.enabled)")
            return
        values, errors = sensor_pass(tech, reader)
        for driver in reader.drivers:
            tech._out(line(driver, values, errors, problems))
        if reader.last_exception is not None:
            tech._out("a driver failed: %s: %s" % (type(reader.last_exception).__name__, reader.last_exception))
        trims = cfg["trims"]
        for key in trims:
            tech._out("%s is trimmed: x %s + %s (config trims)" % (key, trims[key]["scale"], trims[key]["offset"]))
    finally:
        release(cfg, reader)
