# pH and EC from Atlas Scientific EZO circuits on I2C (seed 000's wiring). The
# circuits compensate for temperature themselves once told it with "T,<C>", and keep
# their calibration in their own memory ("Cal,..." commands).
from ezo import EzoError
from firmware.sensors import Sensor
from micropython import const

_T_WAIT_MS = const(300)  # processing time of "T,..." (both circuits' datasheets)
_T_RESEND_C = const(0.5)  # tell the circuit again when the temperature moved this much
# EzoError reasons as telemetry error names: a circuit still busy past its time is a timeout.
_REASONS = {"pending": "timeout", "no_data": "timeout"}


class _EzoProbe(Sensor):
    compensates = True
    read_ms = 900
    cal_ms = 900
    cal_points = ()
    limits = (0.0, 14.0)

    def __init__(self, circuit):
        self._circuit = circuit
        self._sent_temp = None
        self.temp_c = None  # set by the reader

    def _convert(self, value):
        return value

    def read_steps(self, values, errors):
        key = self.keys[0]
        values[key] = None
        try:
            temp = self.temp_c
            if temp is not None and (self._sent_temp is None or abs(temp - self._sent_temp) >= _T_RESEND_C):
                yield from self._circuit.command_steps("T,%.1f" % temp, _T_WAIT_MS)
                self._sent_temp = temp
            value = self._convert((yield from self._circuit.read_steps(self.read_ms)))
        except EzoError as exc:
            errors[self.name] = _REASONS.get(exc.reason, exc.reason)
            return
        low, high = self.limits
        if not low <= value <= high:
            errors[self.name] = "range"
            return
        values[key] = value

    def calibrate_steps(self, point, value=None):
        """Step generator of one calibration command; raises ValueError for an unknown point."""
        if point not in self.cal_points:
            raise ValueError("%s calibration point must be one of %s" % (self.name, ", ".join(self.cal_points)))
        if point == "one":  # EZO-EC single-point: "Cal,<uS/cm>"
            command = "Cal,%s" % value
        elif value is None:
            command = "Cal,%s" % point
        else:
            command = "Cal,%s,%s" % (point, value)
        return (yield from self._circuit.command_steps(command, self.cal_ms))


class EzoPH(_EzoProbe):
    name = "ph"
    keys = ("ph",)
    decimals = (2,)
    read_ms = 900
    cal_ms = 900
    cal_points = ("mid", "low", "high", "clear")  # mid first: it clears the other points

    def _convert(self, value):
        return round(value, 2)


class EzoEC(_EzoProbe):
    name = "ec"
    keys = ("ec",)
    decimals = (3,)
    read_ms = 600
    cal_ms = 600
    cal_points = ("dry", "one", "low", "high", "clear")  # values in uS/cm, as the circuit takes them
    limits = (0.0, 500.0)

    def _convert(self, value):
        return round(value / 1000, 3)  # the circuit reports uS/cm
