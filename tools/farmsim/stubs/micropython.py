# CPython stand-in for MicroPython's micropython module (on MicroPython the built-in
# one is always used: it takes precedence over this file).


def const(value):
    return value


def schedule(func, arg):
    # On the ESP32 a soft IRQ runs between bytecodes; here at once, in the caller's thread.
    func(arg)
    return True


def alloc_emergency_exception_buf(size):
    pass


def native(func):
    return func


viper = native


def mem_info(verbose=False):
    print("mem: (CPython: no MicroPython heap)")


def heap_lock():
    return 0


def heap_unlock():
    return 0


def kbd_intr(char):
    pass


def opt_level(level=None):
    return 0
