# tech.calibrate(sensor, point=None, value=None): one calibration step as the calibrate
# command does it (firmware/calibration.py's math), or, with no point, every step in
# turn with the live reading shown. A pH or EC calibration in progress waits on flash
# between calls.
from firmware.tech import Usage
from firmware.tech.sensing import drive, line, reader_for, release, sensor_pass, shown

_POINTS_FILE = "calibration-points.json"  # a pH or EC calibration between calibrate() calls
_CAL_KEYS = ("dry", "wet", "slope_mv", "offset_v", "k", "offset")  # what calibration stores


def calibrate(tech, sensor, point, value, temp_c):
    from firmware import config

    if sensor not in ("ph", "ec", "moisture"):
        raise Usage("sensor: 'ph', 'ec' or 'moisture'")
    if point is not None and type(point) is not str:
        raise Usage("point: a string, e.g. 'mid', 'low', 'high', 'one', 'dry', 'wet' or 'clear'")
    if point is None and value is not None:
        raise Usage("a value goes with a point")
    name = "soil" if sensor == "moisture" else sensor
    cfg, _ = config.load(tech.root)
    if not cfg["sensors"][name]["enabled"]:
        tech._out("the %s sensor is not enabled (sensors.%s.enabled)" % (sensor, name))
        return
    reader, problems = reader_for(cfg, (name, "dht"))  # the DHT: the temperature
    points = _points(tech.root)
    try:
        node = _Calibrating(tech.root, cfg, reader, points)
        driver = reader.driver(name)
        if hasattr(driver, "reason"):
            tech._out("the %s sensor cannot be used: %s" % (sensor, "; ".join(p[1] for p in problems)))
        elif point is None:
            _guided(tech, node, sensor, driver)
        else:
            values, errors = sensor_pass(tech, reader, False)
            tech._out("now: " + line(driver, values, errors))
            _step(tech, node, sensor, point, value, temp_c)
    finally:
        _keep_points(tech.root, points)
        release(cfg, reader)


class _Calibrating:
    """What firmware.calibration asks of a node: the config, the reader, the points of a
    calibration in progress, and apply_config (validated, saved, taken by the drivers)."""

    def __init__(self, root, cfg, reader, points):
        self.root = root
        self.cfg = cfg
        self.reader = reader
        self.calibration_points = points

    def apply_config(self, patch):
        from firmware import config

        new = config.apply(self.cfg, patch)  # the keys calibration sets are live ones
        config.save(new, self.root)
        self.cfg = new
        for driver in self.reader.drivers:
            if hasattr(driver, "configure"):
                driver.configure(new["sensors"][driver.name])


def _points(root):
    """sensor -> points of a calibration in progress (kept on flash between calls)."""
    import json

    from firmware import in_root

    try:
        with open(in_root(root, _POINTS_FILE)) as f:
            points = json.load(f)
    except (OSError, ValueError):
        return {}
    return points if type(points) is dict else {}


def _keep_points(root, points):
    import json
    import os

    from atomicfile import write_atomic
    from firmware import in_root

    path = in_root(root, _POINTS_FILE)
    try:
        if points:
            write_atomic(path, json.dumps(points))
        else:
            os.remove(path)
    except OSError:
        pass


def _step(tech, node, sensor, point, value, temp_c=None):
    """One calibration step, as the calibrate command does it; True when stored."""
    from firmware.calibration import calibrate as step

    try:
        result = step(node, sensor, point, value, temp_c)
        if hasattr(result, "send"):  # an EZO circuit: a step generator
            result = drive(tech, result)
    except ValueError as exc:
        tech._out("refused: %s" % exc)
        return False
    tech._out(_stored_text(result))
    return True


def _stored_text(result):
    """One line of what a calibration step stored (the answer of firmware.calibration)."""
    sensor = result["sensor"]
    name = "soil" if sensor == "moisture" else sensor
    stored = ["sensors.%s.%s = %s" % (name, key, shown(result[key])) for key in _CAL_KEYS if key in result]
    measured = ["%s %s" % (key, shown(result[key])) for key in sorted(result)
                if key not in _CAL_KEYS and key not in ("sensor", "point", "circuit")]
    if "circuit" in result:
        text = "the EZO circuit took it (it keeps its calibration itself)"
    else:
        text = "saved " + (", ".join(stored) if stored else "nothing")
    return "%s %s: %s%s" % (sensor, result["point"], text, " (%s)" % ", ".join(measured) if measured else "")


def _guided_steps(sensor, ezo):
    """(point, default value, required, what to do) of a guided calibration."""
    if sensor == "moisture":
        return (("dry", None, True, "hold the probe in the air, clean and dry"),
                ("wet", None, True, "push the probe into saturated soil (or water up to its line)"))
    if sensor == "ph":
        return (("mid", 7.0, True, "rinse the probe, put it in the pH 7.00 buffer"),
                ("low", 4.0, False, "rinse the probe, put it in the pH 4.00 buffer"),
                ("high", 10.0, False, "rinse the probe, put it in the pH 10.00 buffer"))
    if ezo:
        return (("dry", None, True, "dry the probe and hold it in the air"),
                ("low", 12.88, True, "put the probe in the 12.88 mS/cm solution"),
                ("high", 80.0, False, "rinse the probe, put it in the 80 mS/cm solution"))
    return (("low", 1.413, True, "rinse the probe, put it in the 1.413 mS/cm solution"),
            ("high", 12.88, False, "rinse the probe, put it in the 12.88 mS/cm solution"))


def _guided(tech, node, sensor, driver):
    out = tech._out
    steps = _guided_steps(sensor, hasattr(driver, "calibrate_steps"))
    node.calibration_points.pop(sensor, None)  # a fresh calibration
    what = {"moisture": "the raw counts", "ph": "your buffer's pH", "ec": "your solution's mS/cm"}[sensor]
    out("calibrating %s in %d steps; each point is saved as it is recorded" % (sensor, len(steps)))
    number = 0
    for point, default, required, todo in steps:
        number += 1
        out("step %d/%d (%s): %s, press Enter when the reading is stable" % (number, len(steps), point, todo))
        prompt = "  Enter: record, r: read again, %sq: quit, or type %s > " % (
            "" if required else "s: skip, ", what)
        while True:
            values, errors = sensor_pass(tech, node.reader, False)
            out("  " + line(driver, values, errors))
            answer = tech._ask(prompt).strip().lower()
            if answer == "q":
                out("stopped; the steps recorded before are saved")
                return
            if answer == "s" and not required:
                out("  skipped")
                break
            if answer in ("r", "s"):
                continue
            value = default
            if answer:
                try:
                    value = int(answer) if sensor == "moisture" else float(answer)
                except ValueError:
                    out("  not understood: %r" % answer)
                    continue
            if _step(tech, node, sensor, point, value):
                break
            out("  the same step again (q to quit)")
    values, errors = sensor_pass(tech, node.reader, False)
    out("done; it now reads: " + line(driver, values, errors))
