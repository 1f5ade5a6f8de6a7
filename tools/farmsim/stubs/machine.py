# Stand-in for the ESP32 port's machine module, backed by the simulated chip
# (simchip). Shaped like the real one, it refuses what an ESP32 refuses, with the
# same exception types and messages where known.
import errno
import time

import simchip
from ticks import sleep_ms, ticks_add, ticks_diff, ticks_ms

try:
    import _thread
except ImportError:
    _thread = None
try:
    from micropython import schedule as _schedule
except ImportError:
    _schedule = None

# Reset causes and wake reasons: the esp32 port's values.
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
PIN_WAKE = EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4
TOUCHPAD_WAKE = 5
ULP_WAKE = 6

_VALID_MHZ = (20, 40, 80, 160, 240)


class ResetRequested(SystemExit):
    """What reset(), soft_reset() and deepsleep() raise here: the process ends the way
    a reboot would; a test or the simulator catches it and 'boots' again."""

    def __init__(self, kind, sleep_ms=None):
        super().__init__(kind)
        self.kind = kind
        self.sleep_ms = sleep_ms


def _chip():
    return simchip.chip()


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_DOWN = 1
    PULL_UP = 2
    PULL_HOLD = 4
    IRQ_RISING = 1
    IRQ_FALLING = 2
    WAKE_LOW = 4
    WAKE_HIGH = 5
    DRIVE_0 = 0
    DRIVE_1 = 1
    DRIVE_2 = 2
    DRIVE_3 = 3

    def __new__(cls, id, *args, **kwargs):
        # An ESP32's Pin objects are static, in flash (ports/esp32 machine_pin_obj_table):
        # Pin(n) is the same object each time, initialised again, and takes no heap.
        made = _chip().pin(id).pin  # ValueError("invalid pin") for 20, 24, 28-31, >39
        return made if made is not None else object.__new__(cls)

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        self.id = id
        self._state = _chip().pin(id)
        self._state.pin = self
        self.init(mode, pull, value=value, drive=drive, hold=hold)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        if mode not in (-1, None):
            if mode not in (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN):
                raise ValueError("invalid pin mode")
            if mode != Pin.IN and self.id in simchip.INPUT_ONLY:
                raise ValueError("pin can only be input")
            self._state.mode = mode
        if pull not in (-1, None):
            # The real port passes this to the IDF, which has no pull resistors on
            # GPIO 34-39 and only logs; refused here so the mistake cannot pass unseen.
            if self.id in simchip.INPUT_ONLY:
                raise ValueError("pin %d has no pull resistors (GPIO 34-39)" % self.id)
            self._state.pull = pull
        if value is not None:
            self.value(value)

    def value(self, x=None):
        if x is None:
            return self._state.level
        if self._state.mode not in (Pin.OUT, Pin.OPEN_DRAIN):
            # The real port latches the level for when the pin becomes an output.
            self._state.level = 1 if x else 0
            return None
        _chip().write_pin(self.id, x)
        return None

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, *, wake=None, hard=False):
        state = self._state
        state.handler = handler
        state.trigger = trigger
        chip = _chip()
        if handler is not None and self.id == chip.wiring["wind"]["pin"]:
            chip.start_wind(state)
        return _Irq(self)

    def __repr__(self):
        return "Pin(%d)" % self.id


class _Irq:
    def __init__(self, pin):
        self._pin = pin

    def trigger(self):
        return self._pin._state.trigger


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_9BIT = 0
    WIDTH_10BIT = 1
    WIDTH_11BIT = 2
    WIDTH_12BIT = 3
    # Full-scale input per attenuation (approximate, ESP32 datasheet).
    _FULL_SCALE_V = (1.1, 1.5, 2.2, 3.1)

    def __new__(cls, pin, *args, **kwargs):
        # Static on an ESP32 too (ports/esp32 madc_obj): one per pin, no heap.
        made = _chip().adcs.get(pin.id if isinstance(pin, Pin) else pin)
        return made if made is not None else object.__new__(cls)

    def __init__(self, pin, *, atten=None):
        gpio = pin.id if isinstance(pin, Pin) else pin
        if gpio not in simchip.ADC1_PINS and gpio not in simchip.ADC2_PINS:
            raise ValueError("invalid Pin for ADC")
        if _chip().adcs.get(gpio) is not self:  # made now (again, it keeps its settings)
            _chip().adcs[gpio] = self
            self._gpio = gpio
            self._atten = ADC.ATTN_0DB
            self._bits = 12
        if atten is not None:
            self._atten = atten

    def atten(self, atten):
        if atten not in (0, 1, 2, 3):
            raise ValueError("invalid attenuation")
        self._atten = atten

    def width(self, width):
        if width not in (0, 1, 2, 3):
            raise ValueError("invalid width")
        self._bits = 9 + width

    def _volts(self):
        chip = _chip()
        if self._gpio in simchip.ADC2_PINS and chip.wifi_active:
            # ESP-IDF lends ADC2 to the Wi-Fi driver and answers ESP_ERR_TIMEOUT, which
            # the port's check_esp_err() turns into OSError(ETIMEDOUT, "ESP_ERR_TIMEOUT").
            raise OSError(errno.ETIMEDOUT, "ESP_ERR_TIMEOUT")
        full = ADC._FULL_SCALE_V[self._atten]
        volts = min(full, max(0.0, chip.volts(self._gpio)))
        return volts, full

    def _counts(self, bits):
        volts, full = self._volts()
        raw = int(volts / full * ((1 << bits) - 1) + 0.5)
        _chip().keep(_chip().adc_reads, (ticks_ms(), self._gpio, raw))
        return raw

    def read(self):
        return self._counts(self._bits)

    def read_u16(self):
        raw = self._counts(12)
        return (raw << 4) | (raw >> 8)  # scaled to 16 bits as the port does

    def read_uv(self):
        volts, _ = self._volts()
        return int(volts * 1000000)


class UART:
    INV_TX = 1
    INV_RX = 2
    RTS = 1
    CTS = 2

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, **kwargs):
        if id not in (0, 1, 2):
            raise ValueError("UART(%d) does not exist" % id)
        self.id = id
        self._rx = b""
        self._pending = []  # (ready ticks, bytes) not yet on the wire
        self.init(baudrate, bits, parity, stop, **kwargs)

    def init(self, baudrate=9600, bits=8, parity=None, stop=1, *, tx=None, rx=None, rts=None,
             cts=None, txbuf=None, rxbuf=256, timeout=0, timeout_char=0, invert=0, flow=0):
        self.baudrate = baudrate
        self.timeout = timeout
        self.timeout_char = timeout_char
        self.tx = tx
        self.rx = rx
        self.rxbuf = rxbuf

    def deinit(self):
        self._rx = b""

    def _peer(self):
        chip = _chip()
        return chip.npk if chip.wiring["npk"]["uart"] == self.id else None

    def write(self, buf):
        data = bytes(buf)
        chip = _chip()
        chip.keep(chip.uart_log, (self.id, data))
        peer = self._peer()
        de = chip.wiring["npk"].get("de")
        # A half-duplex transceiver only puts the frame on the bus while DE is driven high.
        if peer is not None and (de is None or chip.pin(de).level == 1):
            answer = peer.on_frame(data)
            if answer is not None:
                reply, delay_ms = answer
                self._pending.append((ticks_add(ticks_ms(), delay_ms), reply))
        return len(data)

    def _collect(self):
        now = ticks_ms()
        keep = []
        for ready, data in self._pending:
            if ticks_diff(now, ready) >= 0:
                self._rx += data
            else:
                keep.append((ready, data))
        self._pending = keep

    def any(self):
        self._collect()
        return len(self._rx)

    def _wait_for(self, n):
        started = ticks_ms()
        while self.any() < n and ticks_diff(ticks_ms(), started) < self.timeout:
            sleep_ms(1)

    def read(self, nbytes=None):
        self._wait_for(1 if nbytes is None else nbytes)
        if not self._rx:
            return None
        n = len(self._rx) if nbytes is None else min(nbytes, len(self._rx))
        data, self._rx = self._rx[:n], self._rx[n:]
        return data

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else nbytes
        data = self.read(n)
        if data is None:
            return None
        buf[: len(data)] = data
        return len(data)

    def readline(self):
        self._wait_for(1)
        i = self._rx.find(b"\n")
        return self.read(len(self._rx) if i < 0 else i + 1)

    def flush(self):
        pass  # writes reach the peer at once here

    def txdone(self):
        return True

    def sendbreak(self):
        pass


class I2C:
    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        if id not in (0, 1):
            raise ValueError("I2C(%d) doesn't exist" % id)
        self.id = id
        self.freq = freq

    def _device(self, addr):
        device = _chip().i2c_devices.get(addr)
        if device is None or not device.present():
            raise OSError(19)  # ENODEV: no ACK to the address
        return device

    def scan(self):
        devices = _chip().i2c_devices
        return sorted(a for a in devices if devices[a].present())

    def writeto(self, addr, buf, stop=True):
        self._device(addr).write(buf)
        return 1

    def readfrom(self, addr, nbytes, stop=True):
        return self._device(addr).read(nbytes)

    def readfrom_into(self, addr, buf, stop=True):
        data = self.readfrom(addr, len(buf))
        buf[:] = data

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self._device(addr).write(bytes((memaddr,)) + bytes(buf))

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        device = self._device(addr)
        device.write(bytes((memaddr,)))
        return device.read(nbytes)

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        buf[:] = self.readfrom_mem(addr, memaddr, len(buf))


class SoftI2C(I2C):
    def __init__(self, scl=None, sda=None, *, freq=400000, timeout=50000):
        self.id = -1
        self.freq = freq


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id, **kwargs):
        if not -1 <= id <= 3:
            raise ValueError("Timer(%d) does not exist" % id)
        self.id = id
        self._generation = 0
        if kwargs:
            self.init(**kwargs)

    def init(self, *, mode=PERIODIC, period=-1, freq=-1, callback=None):
        if freq > 0:
            period = int(1000 / freq)
        if period <= 0:
            raise ValueError("period must be > 0")
        self._generation += 1
        if _thread is not None and callback is not None:
            _thread.start_new_thread(self._run, (self._generation, mode, period, callback))

    def _run(self, generation, mode, period, callback):
        due = [ticks_add(ticks_ms(), period)]

        def tick(idle):
            if generation != self._generation or _chip().closed:
                return False
            simchip.thread_sleep_ms(ticks_diff(due[0], ticks_ms()), idle)
            if generation != self._generation:
                return False
            due[0] = ticks_add(due[0], period)  # first: a MemoryError below loses this tick, not the timer
            if _schedule is not None:
                try:
                    _schedule(callback, self)
                except RuntimeError:
                    pass
            else:
                callback(self)
            return mode != Timer.ONE_SHOT

        simchip.thread_loop(tick)

    def deinit(self):
        self._generation += 1


class WDT:
    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%d) does not exist" % id)
        if timeout < 1:
            raise ValueError("WDT timeout too short")
        chip = _chip()
        started = chip.wdt_timeout_ms is not None
        chip.wdt_timeout_ms = timeout  # made again: the esp32 port reconfigures the timeout
        chip.wdt_fed = ticks_ms()
        if not started and chip.on_watchdog is not None and _thread is not None:
            _thread.start_new_thread(_watch, (chip,))

    def feed(self):
        chip = _chip()
        chip.wdt_fed = ticks_ms()
        chip.wdt_feeds += 1


def _watch(chip):
    """The watchdog's own timer: a timeout calls chip.on_watchdog (which ends the process)."""

    def check(idle):
        if chip.closed:
            return False
        simchip.thread_sleep_ms(50, idle)
        if _expired(chip):
            chip.on_watchdog()
            return False
        return True

    simchip.thread_loop(check)


def wdt_expired():
    """Stub only: would the watchdog have reset the chip by now?"""
    return _expired(_chip())


def _expired(chip):
    return chip.wdt_timeout_ms is not None and ticks_diff(ticks_ms(), chip.wdt_fed) > chip.wdt_timeout_ms


_EPOCH_2000 = 946684800  # seconds from 1970 to 2000


def _epoch_seconds(y, mo, d, h, mi, s):
    """UTC seconds since 1970 of a civil date (no mktime: it differs between interpreters)."""
    y -= mo <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + h * 3600 + mi * 60 + s


class RTC:
    MEMORY_MAX = 2048  # bytes of RTC user memory the esp32 port allows

    def __init__(self, id=0):
        pass

    def datetime(self, datetimetuple=None):
        chip = _chip()
        if datetimetuple is None:
            if chip.rtc_offset_s is None:  # never set since power-on: counts from 2000-01-01
                now = _EPOCH_2000 + ticks_diff(ticks_ms(), chip.booted_ms) // 1000
            else:
                now = int(time.time() + chip.rtc_offset_s)
            t = time.gmtime(now)
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        y, mo, d, _, h, mi, s = datetimetuple[:7]
        chip.rtc_offset_s = _epoch_seconds(y, mo, d, h, mi, s) - time.time()
        return None

    def init(self, datetimetuple):
        self.datetime(datetimetuple)

    def memory(self, data=None):
        chip = _chip()
        if data is None:
            return chip.rtc_memory
        if len(data) > RTC.MEMORY_MAX:
            raise ValueError("buffer too long")
        chip.rtc_memory = bytes(data)
        chip.rtc_written()
        return None


def reset():
    raise ResetRequested("hard")


def soft_reset():
    raise ResetRequested("soft")


def reset_cause():
    return _chip().reset_cause


def wake_reason():
    return _chip().wake_reason


def unique_id():
    return _chip().mac


def freq(hz=None):
    chip = _chip()
    if hz is None:
        return chip.freq
    if hz // 1000000 not in _VALID_MHZ or hz % 1000000:
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    chip.freq = hz
    return None


def deepsleep(time_ms=0):
    raise ResetRequested("deepsleep", time_ms)


def lightsleep(time_ms=0):
    if time_ms:
        sleep_ms(time_ms)


def idle():
    sleep_ms(1)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass
