# Board setup: the one module that imports machine (and dht). It builds each
# configured sensor's hardware from the config and hands it to the driver, so every
# other module can be given stubs instead; start-up, maintenance and the technician's
# module reach the chip (RTC, buttons, timer, reset) through the small functions below.
# Drivers are imported by their builders: only enabled sensors cost heap, and safe mode
# imports this module without any driver.
import machine

reset = machine.reset
reset_cause = machine.reset_cause
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


def analog_input(gpio):
    # 11 dB: the full 0-3.1 V range the probes' outputs span.
    return machine.ADC(machine.Pin(gpio), atten=machine.ADC.ATTN_11DB)


class _Buses:
    """Buses shared by several sensors, made once when first needed."""

    def __init__(self, cfg):
        self._cfg = cfg
        self._i2c = None

    def i2c(self):
        if self._i2c is None:
            c = self._cfg["i2c"]
            self._i2c = machine.I2C(c["id"], scl=machine.Pin(c["scl"]), sda=machine.Pin(c["sda"]),
                                    freq=c["freq"])
        return self._i2c


def _soil(spec, buses):
    from firmware.sensors.soil import SoilMoisture

    return SoilMoisture(analog_input(spec["pin"]), spec["dry"], spec["wet"], spec["samples"])


def _dht(spec, buses):
    import dht

    from firmware.sensors.air import AirSensor

    kind = spec["type"]
    device = (dht.DHT22 if kind == "DHT22" else dht.DHT11)(machine.Pin(spec["pin"]))
    return AirSensor(device, kind)


def _npk(spec, buses):
    from firmware.sensors.npk import NPKProbe
    from modbus_rtu import ModbusRTU

    uart = machine.UART(spec["uart"], baudrate=spec["baud"], tx=spec["tx"], rx=spec["rx"])
    de = machine.Pin(spec["de"], machine.Pin.OUT, value=0)
    bus = ModbusRTU(uart, de, spec["baud"], spec["timeout_ms"])
    return NPKProbe(bus, spec["addr"], spec["reg_n"], spec["reg_p"], spec["reg_k"])


def _ec(spec, buses):
    if spec["bus"] == "i2c":
        from ezo import EzoCircuit
        from firmware.sensors.ezo_probes import EzoEC

        return EzoEC(EzoCircuit(buses.i2c(), spec["i2c_addr"]))
    from firmware.sensors.ec import AnalogEC

    return AnalogEC(analog_input(spec["pin"]), spec["k"], spec["offset"], spec["temp_coef"])


def _ph(spec, buses):
    if spec["bus"] == "i2c":
        from ezo import EzoCircuit
        from firmware.sensors.ezo_probes import EzoPH

        return EzoPH(EzoCircuit(buses.i2c(), spec["i2c_addr"]))
    from firmware.sensors.ph import AnalogPH

    return AnalogPH(analog_input(spec["pin"]), spec["slope_mv"], spec["offset_v"])


def _wind(spec, buses):
    from firmware.sensors.wind import Anemometer

    pin = machine.Pin(spec["pin"], machine.Pin.IN, machine.Pin.PULL_UP)
    return Anemometer(pin, spec["kmh_per_hz"], spec["debounce_ms"])


_BUILDERS = (("soil", _soil), ("dht", _dht), ("npk", _npk), ("ec", _ec), ("ph", _ph), ("wind", _wind))


def build_sensors(cfg):
    """A driver for every enabled sensor. Hardware that refuses to be set up (a pin
    the chip rejects, a bus that fails) gives a driver that reports 'setup' instead,
    with the reason in problems as (key, reason)."""
    from firmware.sensors.reader import Unavailable

    buses = _Buses(cfg)
    drivers = []
    problems = []
    for name, build in _BUILDERS:
        spec = cfg["sensors"][name]
        if not spec["enabled"]:
            continue
        try:
            drivers.append(build(spec, buses))
        except (OSError, ValueError) as exc:
            problems.append(("sensors." + name, "hardware setup failed: %s" % exc))
            drivers.append(Unavailable(name, "setup"))
    return drivers, problems


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


def watchdog(timeout_s):
    """The hardware watchdog, (re)started with this timeout: once running it cannot be
    stopped; making it again sets a new timeout (the esp32 port reconfigures it)."""
    return machine.WDT(timeout=timeout_s * 1000)


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
    return hw, problems
