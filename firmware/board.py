# Board setup: the one module that imports machine (and dht, onewire). Board hands each
# sensor the hardware its settings name (firmware/sensors builds the drivers), so every
# other module can be given stubs instead; start-up, maintenance and the technician's module
# reach the chip (RTC, buttons, timer, reset) through the small functions below.
import machine

reset = machine.reset
reset_cause = machine.reset_cause
DEEPSLEEP_RESET = machine.DEEPSLEEP_RESET
unique_id = machine.unique_id


def boot_guard(limit):
    """lib/bootguard's count of failed boots, kept in the RTC's user memory."""
    from bootguard import BootGuard

    return BootGuard(machine.RTC(), limit)


def button_held(gpio):
    """A button to ground on gpio (BOOT is GPIO0), read with the pull-up on."""
    return machine.Pin(gpio, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0


def pin_level(gpio):
    """A pin's level, read without driving it."""
    return machine.Pin(gpio).value()


def stop_pulses(gpio):
    """Detach a pin's interrupt handler (the anemometer's), so nothing keeps running."""
    machine.Pin(gpio).irq(handler=None)


def rtc_datetime():
    return machine.RTC().datetime()


def periodic(period_ms, callback):
    """callback(timer) every period_ms, scheduled between bytecodes (a soft timer);
    returns the timer, whose deinit() stops it."""
    timer = machine.Timer(0)
    timer.init(mode=machine.Timer.PERIODIC, period=period_ms, callback=callback)
    return timer


def watchdog(timeout_s):
    """The hardware watchdog, (re)started with this timeout: once running it cannot be
    stopped; making it again sets a new timeout (the esp32 port reconfigures it)."""
    return machine.WDT(timeout=timeout_s * 1000)


class Board:
    """The hardware a sensor's build() asks for, by GPIO number. Buses shared by several
    sensors (I2C) are made once, when first needed."""

    def __init__(self, cfg):
        self._i2c_cfg = cfg["i2c"]
        self._i2c = None

    def adc(self, gpio):
        # 11 dB: the full 0-3.1 V range the probes' outputs span.
        return machine.ADC(machine.Pin(gpio), atten=machine.ADC.ATTN_11DB)

    def output(self, gpio, level):
        return machine.Pin(gpio, machine.Pin.OUT, value=level)

    def pulse_input(self, gpio):
        """A switch to ground (the anemometer's reed), read with the pull-up on."""
        return machine.Pin(gpio, machine.Pin.IN, machine.Pin.PULL_UP)

    def uart(self, uart_id, baud, tx, rx):
        return machine.UART(uart_id, baudrate=baud, tx=tx, rx=rx)

    def dht(self, kind, gpio):
        import dht

        return (dht.DHT22 if kind == "DHT22" else dht.DHT11)(machine.Pin(gpio))

    def onewire(self, gpio):
        """A OneWire bus on gpio (the onewire module makes it open drain, pulled up; the
        bus wants an external 4.7 kOhm pull-up to 3.3 V as well)."""
        import onewire

        return onewire.OneWire(machine.Pin(gpio))

    def i2c(self):
        if self._i2c is None:
            c = self._i2c_cfg
            self._i2c = machine.I2C(c["id"], scl=machine.Pin(c["scl"]), sda=machine.Pin(c["sda"]),
                                    freq=c["freq"])
        return self._i2c


def build_sensors(cfg):
    """A driver for every enabled sensor, and the setup problems (firmware/sensors)."""
    from firmware.sensors import build_all

    return build_all(cfg, Board(cfg))


def build_relays(cfg):
    """Every configured relay, its pin driven to "off" before anything else happens."""
    from firmware.relays import Relay

    relays = {}
    for name in cfg["relays"]:
        spec = cfg["relays"][name]
        off = 1 if spec["active_low"] else 0
        pin = machine.Pin(spec["pin"], machine.Pin.OUT, value=off)
        relays[name] = Relay(name, pin, spec["active_low"], spec["max_on_s"])
    return relays


def build(cfg):
    """Everything the node needs from the board, as a dict, and the setup problems."""
    import network

    try:
        import ntptime
    except ImportError:
        ntptime = None
    relays = build_relays(cfg)  # first: a relay must be off however the rest goes
    sensors, problems = build_sensors(cfg)
    hw = {
        "relays": relays,
        "wlan": network.WLAN(network.STA_IF),
        "mac": machine.unique_id(),
        "reset_cause": machine.reset_cause(),
        "sensors": sensors,
        "ntptime": ntptime,
        "reset": machine.reset,
    }
    if cfg["power"]["mode"] == "deepsleep":  # firmware/sleep.py
        hw["rtc"] = machine.RTC()
        hw["deepsleep"] = machine.deepsleep
    return hw, problems
