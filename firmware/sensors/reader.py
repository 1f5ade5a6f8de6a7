# Reads every fitted sensor in one pass. A failed, slow or missing sensor costs at most
# its own time bound and never stops the others; any exception a driver lets out is
# caught here and reported as that sensor's error.
from firmware.sensors import KEYS
from micropython import const

# For EC and pH compensation, best first: the probes sit in the soil, so the soil's
# temperature (a DS18B20 beside them); the air's (the DHT) only when there is none.
_TEMP_SOURCES = const(("soil_temp", "temp"))


class SensorReader:
    def __init__(self, drivers):
        # Probes that compensate for temperature read after those that measure it.
        self.drivers = [d for d in drivers if not d.compensates] + [d for d in drivers if d.compensates]
        self.values = {}
        self.errors = {}
        self.last_exception = None  # kept for the REPL and the logs
        self.trims = {}  # telemetry name -> {"scale", "offset"} (config "trims")
        # The telemetry name of the temperature the last pass compensated EC and pH
        # with, "" when none was known; None when no fitted probe compensates.
        self.temp_source = None

    def driver(self, name):
        for d in self.drivers:
            if d.name == name:
                return d
        return None

    def fitted(self):
        return [d.name for d in self.drivers]

    def poll(self):
        """Between passes: lets drivers that count (the anemometer) close their slots."""
        for d in self.drivers:
            d.poll()

    def configure(self, cfg):
        """Take over a changed config's calibrations and trims."""
        for d in self.drivers:
            d.configure(cfg["sensors"][d.name])
        self.trims = cfg["trims"]

    def pass_steps(self):
        """Step generator of one pass; its result is (values, errors), reused between passes."""
        values = self.values
        errors = self.errors
        errors.clear()
        for key in values:  # the keys stay: the dict keeps its table (no allocation per pass)
            values[key] = None
        for key in KEYS:
            values[key] = None
        self.temp_source = None
        for d in self.drivers:
            if d.compensates:
                d.temp_c = self.temperature()
            try:
                yield from d.read_steps(values, errors)
                self._settle(d, values)  # before the next driver compensates with it
            except Exception as exc:
                self.last_exception = exc
                errors[d.name] = "error"
                for key in d.keys:
                    values[key] = None
        return values, errors

    def _settle(self, driver, values):
        """A driver's values trimmed (the config's scale and offset), then rounded to the
        sensor's resolution: what is published is what alerts and interlocks judge, and
        a float carries no digits the sensor cannot resolve."""
        trims = self.trims
        keys = driver.keys
        places = driver.decimals
        for i in range(len(keys)):
            value = values.get(keys[i])
            if value is None:
                continue
            trim = trims.get(keys[i])
            if trim is not None:
                value = value * trim["scale"] + trim["offset"]
            values[keys[i]] = round(value, places[i]) if places[i] else round(value)

    def temperature(self):
        """The temperature of the medium the EC and pH probes sit in, from this pass's
        values: the soil's, else the air's, else None (the probes then assume 25 C);
        the name it came from is kept in temp_source."""
        for key in _TEMP_SOURCES:
            value = self.values.get(key)
            if value is not None:
                self.temp_source = key
                return value
        self.temp_source = ""
        return None

    def read(self):
        """One pass run alone (the REPL, a test)."""
        from coop import run

        return run(self.pass_steps())
