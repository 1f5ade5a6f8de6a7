# Millisecond ticks that run unchanged on MicroPython and CPython.
# MicroPython's time module has ticks_ms()/ticks_diff(); CPython's does not, so
# there we rebuild them on time.monotonic() with the same wrap-around arithmetic.
try:
    from time import ticks_ms, ticks_us, ticks_add, ticks_diff, sleep_ms
except ImportError:
    import time as _time

    _PERIOD = 1 << 30  # MicroPython's ticks period on 32-bit ports
    _HALF = _PERIOD >> 1
    _MASK = _PERIOD - 1

    def ticks_ms():
        return int(_time.monotonic() * 1000) & _MASK

    def ticks_us():
        return int(_time.monotonic() * 1000000) & _MASK

    def ticks_add(ticks, delta):
        return (ticks + delta) & _MASK

    def ticks_diff(end, start):
        return ((end - start + _HALF) & _MASK) - _HALF

    def sleep_ms(ms):
        _time.sleep(ms / 1000)
