# Sensors. Each sensor is one module here that owns everything the firmware knows of
# it, and nothing else does:
#   NAME, KEYS, UNITS  its config name (sensors.NAME, and its name in telemetry
#                      "errors"), the telemetry names it fills and their units
#   DECIMALS           the resolution of each (places after the point): values are
#                      rounded to it before they are published or judged
#   SETTINGS           its config entry's defaults, as (key, value) pairs
#   RULES              value rules of those settings, as firmware/schema.py reads them
#   check(spec, problems)  what one setting cannot tell alone (optional)
#   build(spec, hw)    its driver, a Sensor, made from the settings and the hardware
#                      the board hands out (hw: firmware.board.Board)
# A sensor's module is imported only when it is fitted (enabled), or while a config is
# checked: a node pays in heap for the sensors it has.
from micropython import const

# (config name, module) of every sensor, in the order a pass reads them.
SENSORS = (("soil", "soil"), ("dht", "air"), ("soil_temp", "soil_temp"), ("npk", "npk"), ("ec", "ec"),
           ("ph", "ph"), ("wind", "wind"), ("battery", "battery"))
# The telemetry names of all of them, fitted or not (a sensor not fitted is null in
# telemetry): the KEYS of the modules above, kept here so that telemetry needs none of
# them loaded (test_sensor_registry checks the two agree).
KEYS = ("moisture", "temp", "humidity", "soil_temp", "n", "p", "k", "ec", "ph", "wind_speed")
# Sent only when measured (wind_gust) or fitted (the battery's): not in every reading.
OPTIONAL_KEYS = ("wind_gust", "battery_v", "battery_pct")
# What a step generator yields before a step that holds the CPU for long, in C code that
# serves nothing meanwhile (the DHT's measure(), ~270 ms): the loop runs that step right
# after serving the socket, in a turn no message arrived in (firmware/node.py).
HOLDS = const(1)


def module(name):
    """The module of the sensor called name (ValueError if there is none)."""
    for sensor, module_name in SENSORS:
        if sensor == name:
            return __import__("firmware.sensors." + module_name, None, None, ("NAME",), 0)
    raise ValueError("no sensor named %r" % name)


def unload_unfitted(fitted):
    """Forget the modules of sensors not in fitted (names), loaded to check a config."""
    from firmware import unload

    for sensor, module_name in SENSORS:
        if sensor not in fitted:
            unload("firmware.sensors." + module_name)


class Sensor:
    """A fitted sensor's driver. It is handed its hardware (an ADC, a Pin, a bus) and
    knows nothing of MQTT or of other sensors.
      read_steps(values, errors)  a step generator (lib/coop) that sets values[key] for
          each of its keys, a number or None, and errors[name] to a short reason when it
          failed; it ends within the driver's own time bound and yields while it waits
          (None), or HOLDS before a step that holds the CPU.
      compensates  True for a probe that needs the medium's temperature (EC, pH): it is
          read after the others, with temp_c set to the soil's temperature (soil_temp),
          else the air's (temp), else None (reader.py: SensorReader.temperature)."""

    name = ""
    keys = ()
    decimals = ()  # one per key: its module's DECIMALS
    compensates = False

    def configure(self, spec):
        """Take over changed settings while running (a live config change)."""

    def poll(self):
        """Called between passes, on every turn of the loop (the anemometer counts)."""


class Unavailable(Sensor):
    """Stands in for a fitted sensor whose hardware could not be set up."""

    def __init__(self, name, keys, reason):
        self.name = name
        self.keys = keys
        self.reason = reason

    def read_steps(self, values, errors):
        for key in self.keys:
            values[key] = None
        errors[self.name] = self.reason
        yield  # a step generator like the others, with nothing to wait for


def build_all(cfg, hw):
    """A driver for every enabled sensor of cfg["sensors"]. Hardware that refuses to be
    set up (a pin the chip rejects, a bus that fails) gives a driver that reports
    'setup' instead, with the reason in problems as (key, reason)."""
    drivers = []
    problems = []
    specs = cfg["sensors"]
    for name, _ in SENSORS:
        spec = specs[name]
        if not spec["enabled"]:
            continue
        sensor = module(name)
        try:
            drivers.append(sensor.build(spec, hw))
        except (OSError, ValueError) as exc:
            problems.append(("sensors." + name, "hardware setup failed: %s" % exc))
            drivers.append(Unavailable(name, sensor.KEYS, "setup"))
    return drivers, problems
