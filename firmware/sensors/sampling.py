# Median of several ADC samples: a single spike (a relay switching, radio bursts)
# cannot move it. Sorted in place into a preallocated buffer: no allocation per read.
# AnalogProbe: what the EC and pH probes on an ADC have in common.
from firmware.sensors import Sensor


def median(read, buf):
    """Fill buf with len(buf) results of read(), sorted; return the middle one."""
    for i in range(len(buf)):
        value = read()
        j = i
        while j and buf[j - 1] > value:
            buf[j] = buf[j - 1]
            j -= 1
        buf[j] = value
    return buf[len(buf) >> 1]


class AnalogProbe(Sensor):
    """A probe read as a voltage: the median of samples of the ADC's calibrated read_uv(),
    compensated with the temperature of the medium it sits in."""

    compensates = True

    def __init__(self, adc, samples):
        self._adc = adc
        self._samples = [0] * samples
        self.volts = None
        self.temp_c = None  # set by the reader

    def read_volts(self):
        """The median in microvolts; also kept in volts for calibration."""
        micro = median(self._adc.read_uv, self._samples)
        self.volts = micro / 1000000
        return micro

    def temperature(self):
        return 25.0 if self.temp_c is None else self.temp_c  # unknown: no compensation
