# What read(), relay() and calibrate() share: a reader on the config's sensors, one
# pass of it, a sensor's reading as a line, and letting the hardware go again.
from firmware.sensors import module
from ticks import ticks_add, ticks_diff, ticks_ms


def shown(value):
    """A number as a person reads it: 8.7, not MicroPython's 8.699999999999999."""
    return "%g" % value if type(value) is float else str(value)


def reader_for(cfg, only=None):
    """A SensorReader on every enabled sensor (or only those named), and the setup problems."""
    from firmware import board, config
    from firmware.sensors.reader import SensorReader

    if only is not None:
        cfg = config.merge(cfg, {"sensors": {name: {"enabled": False} for name in cfg["sensors"]
                                             if name not in only}})
    drivers, problems = board.build_sensors(cfg)
    reader = SensorReader(drivers)
    reader.trims = cfg["trims"]
    return reader, problems


def release(cfg, reader):
    """Let the hardware go: the anemometer's IRQ is the one thing that would keep running."""
    wind = reader.driver("wind")
    if wind is not None and not hasattr(wind, "reason"):
        from firmware import board

        board.stop_pulses(cfg["sensors"]["wind"]["pin"])


def drive(tech, steps):
    """Run a step generator to its end, sleeping briefly at each step; its result."""
    try:
        while True:
            next(steps)
            tech._sleep(2)
    except StopIteration as done:
        return done.value


def sensor_pass(tech, reader, count_wind=True):
    """One sensor pass: (values, errors). The anemometer counts pulses from when it was
    built: with count_wind, tech.wind_ms of them first (a speed needs a span of time)."""
    if count_wind and reader.driver("wind") is not None and tech.wind_ms > 0:
        tech._out("counting the anemometer's pulses for %g s..." % (tech.wind_ms / 1000))
        end = ticks_add(ticks_ms(), tech.wind_ms)
        left = tech.wind_ms
        while left > 0:
            reader.poll()
            tech._sleep(min(left, 50))
            left = ticks_diff(end, ticks_ms())
    return drive(tech, reader.pass_steps())


def line(driver, values, errors, problems=()):
    """A sensor's reading: calibrated values with the units its module gives, raw
    measure, error."""
    sensor = module(driver.name)
    shown_values = ["%s %s %s" % (key, shown(values[key]), sensor.UNITS[sensor.KEYS.index(key)])
                    for key in driver.keys if values.get(key) is not None]
    text = "%-5s %s" % (driver.name, ", ".join(shown_values) if shown_values else "no reading")
    raw = _raw(driver, values)
    if raw:
        text += "   raw " + raw
    error = errors.get(driver.name)
    if error:
        text += "   error: " + error
        for key, reason in problems:
            if key == "sensors." + driver.name:
                text += " (%s)" % reason
    return text


def _raw(driver, values):
    """What the driver measured before calibration, as text ("" when it has no such thing)."""
    if getattr(driver, "raw", None) is not None:
        return "%d counts (dry %d, wet %d)" % (driver.raw, driver.dry, driver.wet)
    if getattr(driver, "volts", None) is not None:
        return "%.4f V at %.1f C" % (driver.volts, driver.temperature())
    if hasattr(driver, "kmh_per_hz") and values.get("wind_speed") is not None:
        return "%.2f Hz" % (values["wind_speed"] / driver.kmh_per_hz)
    if hasattr(driver, "cal_points"):
        return "EZO circuit"
    return ""
