# Stand-in for MicroPython's ntptime: sets the chip's RTC from the host clock when the
# station is connected to the access point, and fails like the real one when not.
import time as _time

import simchip

host = "pool.ntp.org"
timeout = 1


def time():
    chip = simchip.chip()
    if not chip.wifi_active or not chip.on_air():
        raise OSError(110)  # ETIMEDOUT: no answer from the NTP server
    return int(_time.time())


def settime():
    import machine

    t = _time.gmtime(time())
    machine.RTC().datetime((t[0], t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0))
