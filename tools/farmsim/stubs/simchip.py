# The simulated ESP32 board behind the stub modules (machine, network, dht, esp32,
# ntptime). One current chip per process, as one ESP32 per board: the stubs find it
# through chip(); a test or the simulator installs a fresh one with new_chip(), and a
# process that plays several boards (farmsim/harness/virtual_fleet.py) makes each one current
# with use() before that board's code runs. The chip turns
# the field model's physical values into what the pins see: ADC counts through each
# probe's transfer curve, Modbus RTU frames from the NPK probe, DHT bytes, EZO replies,
# the DS18B20's OneWire time slots and anemometer edges. It records what the firmware did (pin writes with timestamps).
import select
import struct

from fieldmodel import Field
from ticks import sleep_ms, ticks_add, ticks_diff, ticks_ms

try:
    import _thread
except ImportError:
    _thread = None
try:
    from micropython import schedule
except ImportError:
    schedule = None

NO_GPIO = (20, 24, 28, 29, 30, 31)
INPUT_ONLY = (34, 35, 36, 37, 38, 39)
ADC1_PINS = (32, 33, 34, 35, 36, 37, 38, 39)
ADC2_PINS = (0, 2, 4, 12, 13, 14, 15, 25, 26, 27)
# Pin writes kept, in a ring allocated once: a long simulation must not grow the heap
# (a growing list here once took the virtual node's heap from the firmware).
LOG_MAX = 128

DEFAULT_WIRING = {
    "soil": {"pin": 34},
    "dht": {"pin": 4, "type": "DHT22"},
    "soil_temp": {"pin": 18},
    "npk": {"uart": 2, "tx": 17, "rx": 16, "de": 23, "baud": 9600, "addr": 1},
    "ec": {"pin": 35, "bus": "adc", "i2c_addr": 0x64},
    "ph": {"pin": 36, "bus": "adc", "i2c_addr": 0x63},
    "wind": {"pin": 27},
    # Wired only when fitted ("enabled", as in the config; firmware/sensors/battery.py).
    "battery": {"enabled": False, "pin": 39, "ratio": 2.0},
    "i2c": {"scl": 22, "sda": 21},
    "relays": {"irrigation": {"pin": 26, "active_low": False},
               "fertigation": {"pin": 25, "active_low": False}},
}

# Probe transfer curves (volts at the ADC pin).
SOIL_DRY_V = 2.4225  # 3200 counts at 11 dB: a capacitive probe in dry air
SOIL_WET_V = 0.9840  # 1300 counts: in saturated soil
PH_OFFSET_V = 1.5  # at pH 7, through a unity-gain board
NERNST_V = 0.05916  # per pH at 25 C
EC_V_PER_MS = 0.5  # the analog EC board: 2 mS/cm per volt
RAIL_V = 3.3  # an open analog input floats to the top rail here
NPK_REGISTERS = (0x1E, 0x1F, 0x20)
KMH_PER_HZ = 2.4  # the common one-pulse-per-turn cup anemometer
# The battery's divider (battery volts / ratio at the pin). Unplugged, its lower
# resistor pulls the pin to ground: near 0 V, not the rail.
BATTERY_OPEN_V = 0.01


def merge_wiring(wiring):
    out = {}
    for key in DEFAULT_WIRING:
        out[key] = dict(DEFAULT_WIRING[key])
    for key in wiring or {}:
        if type(wiring[key]) is dict and key in out:
            out[key].update(wiring[key])
        else:
            out[key] = wiring[key]
    return out


def wired_gpios(wiring):
    """Every GPIO a wiring uses (sensors, relays, the I2C bus), once each."""
    gpios = []
    for key in wiring:
        specs = wiring[key].values() if key == "relays" else [wiring[key]]
        for spec in specs:
            if key == "battery" and not spec.get("enabled"):
                continue  # not fitted: nothing of it is wired
            for field in ("pin", "tx", "rx", "de", "scl", "sda"):
                if type(spec.get(field)) is int and spec[field] not in gpios:
                    gpios.append(spec[field])
    return gpios


def wiring_from_config(cfg):
    """The wiring a firmware config describes, so the simulated board matches it; a
    partial config (a device's config.json) gives the default wiring where it is silent.
    The battery's divider is wired only when the config enables it."""
    sensors = cfg.get("sensors", {})
    wiring = {name: dict(sensors[name]) for name in sensors}
    wiring["i2c"] = dict(cfg.get("i2c", {}))
    relays = cfg.get("relays", {})
    wiring["relays"] = {name: dict(relays[name]) for name in relays if relays[name] is not None}
    return merge_wiring(wiring)


class PinState:
    def __init__(self):
        self.mode = None
        self.pull = None
        self.level = 0
        self.handler = None
        self.trigger = 0
        self.pin = None


class NPKProbe:
    """An RS485 soil NPK probe answering Modbus RTU function 3/4 on its UART.

    mode (for tests): "ok", "late" (answers after 800 ms), "wrong_addr", "garbage",
    "exception" (illegal data address)."""

    def __init__(self, chip, spec):
        self.chip = chip
        self.spec = spec
        self.mode = "ok"
        self.requests = []

    def registers(self):
        field = self.chip.field
        return {NPK_REGISTERS[i]: int(round(field.value(k))) for i, k in enumerate(("n", "p", "k"))}

    def on_frame(self, frame):
        """A frame the master wrote; returns (reply bytes, delay ms) or None."""
        self.chip.keep(self.requests, bytes(frame))
        fault = self.chip.field.fault_of("npk")
        if fault in ("timeout", "unplugged") or len(frame) != 8:
            return None
        if crc16(frame[:6]) != frame[6] | (frame[7] << 8):
            return None  # a slave ignores a frame with a bad CRC
        addr, function, start, count = frame[0], frame[1], (frame[2] << 8) | frame[3], (frame[4] << 8) | frame[5]
        if addr != self.spec.get("addr", 1) or function not in (3, 4):
            return None
        registers = self.registers()
        wanted = [start + i for i in range(count)]
        if self.mode == "exception" or any(r not in registers for r in wanted):
            reply = bytearray((addr, function | 0x80, 2))
        else:
            reply = bytearray((addr, function, 2 * count))
            for r in wanted:
                reply += struct.pack(">H", registers[r] & 0xFFFF)
        if self.mode == "wrong_addr":
            reply[0] = addr + 1
        crc = crc16(reply)
        reply += bytes((crc & 0xFF, crc >> 8))
        if fault == "crc":
            reply[-1] ^= 0x5A
        if self.mode == "garbage":
            reply = bytearray(b"\x00\xff\x13\x37\xaa")
        char_ms = 10000 / self.spec.get("baud", 9600)
        delay = 10 + int(len(reply) * char_ms) + (800 if self.mode == "late" else 0)
        return bytes(reply), delay


class EzoCircuit:
    """An Atlas Scientific EZO-pH or EZO-EC circuit in I2C mode."""

    def __init__(self, chip, sensor):
        self.chip = chip
        self.sensor = sensor  # "ph" or "ec"
        self.read_ms = 900 if sensor == "ph" else 600
        self.temp_c = 25.0
        self.commands = []
        self._reply = None
        self._ready_at = None

    def present(self):
        return self.chip.field.fault_of(self.sensor) != "unplugged"

    def write(self, data):
        text = bytes(data).decode()
        self.chip.keep(self.commands, text)
        wait = self.read_ms
        body = ""
        status = 1
        parts = text.split(",")
        if text in ("R", "r"):
            value = self.chip.field.value(self.sensor)
            body = ("%.3f" % value) if self.sensor == "ph" else ("%.2f" % (value * 1000))
        elif parts[0] in ("T", "t") and len(parts) == 2:
            try:
                self.temp_c = float(parts[1])
                wait = 300
            except ValueError:
                status = 2
        elif parts[0] in ("Cal", "cal") and len(parts) >= 2:
            pass
        elif text in ("i", "I"):
            body = "?I,%s,2.10" % ("pH" if self.sensor == "ph" else "EC")
            wait = 300
        else:
            status = 2
        if self.chip.field.fault_of(self.sensor) == "crc":
            status = 2
        self._reply = bytes((status,)) + body.encode() + b"\x00"
        self._ready_at = ticks_add(ticks_ms(), wait)

    def read(self, n):
        if self._reply is None:
            reply = b"\xff"
        elif ticks_diff(ticks_ms(), self._ready_at) < 0 or self.chip.field.fault_of(self.sensor) == "timeout":
            reply = b"\xfe"
        else:
            reply = self._reply
            self._reply = None
        return (reply + b"\x00" * n)[:n]


class DS18B20:
    """A DS18B20 temperature probe on a OneWire bus, modelled at the level of its time
    slots (the stub onewire module's OneWire drives it): a reset with its presence
    pulse, the bits the master writes and the bits it reads, least significant first,
    answered as the datasheet says. ROM commands: 0x33 Read ROM, 0xCC Skip ROM, 0x55
    Match ROM, 0xF0 Search ROM. Function commands: 0x44 Convert T (12 bits, 750 ms; read
    slots answer 0 until it is done, 1 after), 0xBE Read Scratchpad (9 bytes, the last
    the Dallas/Maxim CRC8 of the others). Powered from VDD, not parasitically. Until a
    conversion finishes the temperature register holds the power-on 85.0 C.

    The conversion takes 750 ms of the chip's clock (ticks_ms, the clock the firmware's
    waits use, as the EZO circuits' processing times and the NPK probe's reply delays);
    the field model's speed runs its physics faster, not the chip's clock.

    Field faults ("soil_temp"): unplugged and timeout (no presence pulse), crc (the
    scratchpad's CRC byte damaged on the wire), stuck (frozen value), hang (the reset
    never returns). mode (for tests): "ok"; "shorted" (the data line held low: a
    presence, then zeros); "brownout" (the probe resets during each conversion: the
    power-on value stays)."""

    FAMILY = 0x28
    CONVERT_MS = 750
    POWER_ON = (0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10)  # 85.0 C, TH, TL, 12 bits

    def __init__(self, chip, spec):
        self.chip = chip
        self.spec = spec
        self.mode = "ok"
        self.commands = []  # the ROM and function command bytes received
        rom = bytearray(8)
        rom[0] = self.FAMILY
        rom[1:7] = bytes(reversed(chip.mac))  # a 48-bit serial number
        rom[7] = crc8(rom, 7)
        self.rom = bytes(rom)
        self.scratchpad = bytearray(9)
        self._power_on()
        self._state = "idle"  # what the next slots are: see write_bit() and read_bit()
        self._byte = 0  # the byte being written, and its bits so far
        self._nbits = 0
        self._match = bytearray(8)
        self._matched = 0
        self._out = None  # the bytes being read out, the bit reached, the state after
        self._out_bit = 0
        self._out_then = None
        self._damaged = False
        self._search_bit = 0  # Search ROM: the ROM bit reached, and its step (0, 1, 2)
        self._search_step = 0
        self._done_at = None  # ticks_ms when the conversion asked for ends
        self._converted = None  # the temperature it measures

    def _power_on(self):
        self.scratchpad[:8] = bytes(self.POWER_ON)
        self.scratchpad[8] = crc8(self.scratchpad, 8)

    def _fault(self):
        return self.chip.field.fault_of("soil_temp")

    def _finish_conversion(self):
        """The register takes the new value once the conversion's time is up."""
        if self._done_at is None or ticks_diff(ticks_ms(), self._done_at) < 0:
            return
        self._done_at = None
        if self.mode == "brownout":
            self._power_on()
            return
        raw = int(round(self._converted * 16)) & 0xFFFF
        pad = self.scratchpad
        pad[0] = raw & 0xFF
        pad[1] = raw >> 8
        pad[8] = crc8(pad, 8)

    def converting(self):
        self._finish_conversion()
        return self._done_at is not None

    # --- the slots ---

    def reset(self):
        """A reset pulse; True when the probe answers with its presence pulse."""
        fault = self._fault()
        while fault == "hang" and not self.chip.closed:
            sleep_ms(100)
        self._state = "idle"
        if fault in ("unplugged", "timeout"):
            return False
        if self.mode == "shorted":
            return True  # the line is low: it reads as a presence pulse
        self._state = "rom"
        self._byte = 0
        self._nbits = 0
        return True

    def write_bit(self, bit):
        state = self._state
        if state == "search":
            self._search_write(bit)
            return
        if state not in ("rom", "match", "function"):
            return  # not listening until the next reset
        self._byte |= (bit & 1) << self._nbits
        self._nbits += 1
        if self._nbits == 8:
            byte = self._byte
            self._byte = 0
            self._nbits = 0
            self._on_byte(state, byte)

    def read_bit(self):
        if self.mode == "shorted":
            return 0
        state = self._state
        if state == "out":
            out = self._out
            n = self._out_bit
            if n >= 8 * len(out):
                return 1  # past the end: the pull-up
            self._out_bit = n + 1
            if n == 8 * len(out) - 1 and self._out_then is not None:
                self._state = self._out_then
            byte = out[n >> 3] ^ (0x24 if self._damaged and n >= 64 else 0)
            return (byte >> (n & 7)) & 1
        if state == "converting":
            return 0 if self.converting() else 1
        if state == "search":
            return self._search_read()
        return 1  # nothing drives the line: the pull-up

    # --- commands ---

    def _send(self, data, then=None):
        self._state = "out"
        self._out = data
        self._out_bit = 0
        self._out_then = then
        self._damaged = False

    def _on_byte(self, state, byte):
        if state == "match":
            self._match[self._matched] = byte
            self._matched += 1
            if self._matched == 8:
                self._state = "function" if bytes(self._match) == self.rom else "idle"
            return
        self.chip.keep(self.commands, byte)
        if state == "rom":
            if byte == 0xCC:
                self._state = "function"
            elif byte == 0x33:
                self._send(self.rom, "function")
            elif byte == 0x55:
                self._state = "match"
                self._matched = 0
            elif byte == 0xF0:
                self._state = "search"
                self._search_bit = 0
                self._search_step = 0
            else:
                self._state = "idle"
            return
        if byte == 0x44:
            self._finish_conversion()
            field = self.chip.field
            noise = 0.0 if self._fault() == "stuck" else 0.02  # a stuck probe repeats itself exactly
            self._converted = field.noisy("soil_temp", noise)
            self._done_at = ticks_add(ticks_ms(), self.CONVERT_MS)
            self._state = "converting"
        elif byte == 0xBE:
            self._finish_conversion()
            self._send(self.scratchpad)
            self._damaged = self._fault() == "crc"  # the CRC byte damaged on the wire
        else:
            self._state = "idle"

    def _rom_bit(self, n):
        return (self.rom[n >> 3] >> (n & 7)) & 1

    def _search_read(self):
        """Search ROM, per ROM bit: the probe sends the bit, then its complement..."""
        step = self._search_step
        if step > 1:
            return 1
        self._search_step = step + 1
        bit = self._rom_bit(self._search_bit)
        return bit if step == 0 else bit ^ 1

    def _search_write(self, bit):
        """...and then takes the master's choice: a probe whose bit differs drops out."""
        if (bit & 1) != self._rom_bit(self._search_bit):
            self._state = "idle"
            return
        self._search_bit += 1
        self._search_step = 0
        if self._search_bit == 64:
            self._state = "function"  # found and selected


def crc8(data, n=None):
    """The Dallas/Maxim CRC8 of OneWire ROM codes and scratchpads (of data's first n
    bytes: all by default): x^8 + x^5 + x^4 + 1, bits taken least significant first,
    starting from 0. Over data followed by its own CRC it is 0."""
    crc = 0
    for i in range(len(data) if n is None else n):
        byte = data[i]
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C  # the polynomial, bit-reversed (x^8 implied)
            byte >>= 1
    return crc


def thread_sleep_ms(ms, idle=None):
    """sleep_ms for a thread: the unix port's sleep_ms wakes every millisecond to run
    pending callbacks (most of an idle virtual node's CPU); poll() sleeps in one call.
    idle: the thread's own select.poll(), made once."""
    try:
        (idle or select.poll()).poll(max(0, ms))
    except MemoryError:
        pass


def thread_loop(turn):
    """A stub's timer thread: turn(idle) until it returns False (idle: the thread's own
    select.poll() for thread_sleep_ms). A chip's timers do not share the firmware's
    heap: a MemoryError anywhere in a turn (the firmware filled the heap for an instant,
    as a hostile message may) must not end the thread, as it would not stop a timer;
    the turn is run again a millisecond later."""
    idle = select.poll()
    while True:
        try:
            if not turn(idle):
                return
        except MemoryError:
            thread_sleep_ms(1, idle)


def crc16(data):
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


class Chip:
    def __init__(self, field=None, wiring=None, mac=b"\x24\x0a\xc4\x5e\x11\x07"):
        self.field = field if field is not None else Field()
        self.wiring = merge_wiring(wiring)
        self.mac = mac
        self.pins = {}
        self.adcs = {}  # gpio -> its machine.ADC (static on a chip: one per pin)
        self._log = [0] * (3 * LOG_MAX)  # ticks_ms, gpio, level of the latest pin writes
        self._logged = 0
        self.logging = True  # the logs below, for tests (see keep())
        self.adc_reads = []  # (ticks_ms, gpio, raw)
        self.uart_log = []  # (uart id, bytes written)
        self.wifi_active = False
        self.ap = {"ssid": "farm", "password": "farmpass", "up": True, "rssi": -62}
        self.more_aps = []  # other access points in reach, each like ap
        self.rtc_offset_s = None  # None: the clock was never set since power-on
        self.rtc_memory = b""
        self.nvs = {}
        self.wdt_timeout_ms = None
        self.wdt_fed = None
        self.wdt_feeds = 0
        # What a watchdog timeout does: None only records it (machine.wdt_expired());
        # a process that plays a whole device installs a callable that ends it.
        self.on_watchdog = None
        # What C code that holds the CPU does (dht_readinto): None blocks the caller for
        # that long, as the chip's interpreter is blocked; a process that plays several
        # boards installs a callable(ms) that charges the time to this board alone.
        self.on_hold = None
        self.rtc_store = None  # a file keeping RTC memory across processes ("resets")
        self.boot_button = False  # GPIO0 held low (the BOOT button) while this boot starts
        self.reset_cause = 1  # PWRON_RESET
        self.wake_reason = 0
        self.freq = 160000000
        self.closed = False
        self.booted_ms = ticks_ms()
        self.npk = NPKProbe(self, self.wiring["npk"])
        self.ds18b20 = DS18B20(self, self.wiring["soil_temp"])
        self.i2c_devices = {}
        for sensor in ("ec", "ph"):
            spec = self.wiring[sensor]
            if spec.get("bus") == "i2c":
                self.i2c_devices[spec["i2c_addr"]] = EzoCircuit(self, sensor)
        self._wind_running = False
        # False: no thread of its own delivers the anemometer's edges, the caller's loop
        # does, through wind_step() (a process of many chips: a thread per chip, each
        # waking every millisecond in the unix port's sleep, would cost most of its CPU).
        self.wind_thread = True
        self._wind_pin = None
        self._wind_due = None
        self._wind_armed = False

    # --- Wi-Fi ---

    def on_air(self):
        """The access points in reach now, as (ap, rssi): switched on (ap["up"]), the
        field's one not switched off, and heard (the field's steering may list them)."""
        if not self.field.access_point_up():
            return []
        heard = []
        for ap in [self.ap] + self.more_aps:
            rssi = self.field.access_point_rssi(ap["ssid"], ap["rssi"]) if ap["up"] else None
            if rssi is not None:
                heard.append((ap, rssi))
        return heard

    # --- pins ---

    def pin(self, gpio):
        if not isinstance(gpio, int) or not 0 <= gpio <= 39 or gpio in NO_GPIO:
            raise ValueError("invalid pin")
        state = self.pins.get(gpio)
        if state is None:
            state = self.pins[gpio] = PinState()
            if gpio == self.wiring["wind"]["pin"] or gpio == self.wiring["dht"]["pin"]:
                state.level = 1  # pulled up on the board
            elif gpio == 0:  # the BOOT button: pulled up, low while pressed
                state.level = 0 if self.boot_button else 1
        return state

    def write_pin(self, gpio, level):
        level = 1 if level else 0
        self.pin(gpio).level = level
        at = 3 * (self._logged % LOG_MAX)
        self._log[at] = ticks_ms()
        self._log[at + 1] = gpio
        self._log[at + 2] = level
        self._logged += 1
        relays = self.wiring["relays"]
        for name in relays:
            relay = relays[name]
            if relay["pin"] == gpio:
                self.field.set_actuator(name, level != (1 if relay.get("active_low") else 0))

    def writes(self, gpio):
        """[(ticks_ms, level), ...] written to gpio, oldest first."""
        log = self._log
        first = max(0, self._logged - LOG_MAX)
        out = []
        for n in range(first, self._logged):
            at = 3 * (n % LOG_MAX)
            if log[at + 1] == gpio:
                out.append((log[at], log[at + 2]))
        return out

    def relay_on(self, name):
        relay = self.wiring["relays"][name]
        level = self.pin(relay["pin"]).level
        return level != (1 if relay.get("active_low") else 0)

    def onewire_device(self, gpio):
        """The OneWire device wired to gpio (the soil's DS18B20), or None."""
        return self.ds18b20 if gpio == self.wiring["soil_temp"].get("pin") else None

    def hold(self, ms):
        """The CPU held for ms by C code that does not return to Python until done."""
        if self.on_hold is None:
            sleep_ms(ms)
        else:
            self.on_hold(ms)

    # --- analog ---

    def sensor_on_adc(self, gpio):
        battery = self.wiring["battery"]
        if battery.get("enabled") and battery.get("pin") == gpio:
            return "battery"  # first: fitted on purpose, even on another probe's pin
        for sensor in ("soil", "ec", "ph"):
            spec = self.wiring[sensor]
            if spec.get("pin") == gpio and spec.get("bus", "adc") == "adc":
                return sensor
        return None

    def volts(self, gpio):
        """What the probe wired to gpio puts on the pin now."""
        field = self.field
        sensor = self.sensor_on_adc(gpio)
        if sensor is None:
            return abs(field._noise(0.02))  # an unconnected input near ground
        if sensor == "battery":
            return self._battery_volts()
        if field.fault_of(sensor) in ("unplugged", "timeout", "crc"):
            return RAIL_V
        if sensor == "soil":
            m = min(100.0, max(0.0, field.value("moisture")))
            return SOIL_DRY_V + (SOIL_WET_V - SOIL_DRY_V) * m / 100 + field._noise(0.004)
        temp = field.physical("soil_temp")  # the medium's, even while its own probe is stuck
        if sensor == "ph":
            slope = NERNST_V * (temp + 273.15) / 298.15
            return PH_OFFSET_V - slope * (field.value("ph") - 7) + field._noise(0.0005)
        ec_t = field.value("ec") * (1 + 0.02 * (temp - 25))
        return ec_t * EC_V_PER_MS + field._noise(0.001)

    def _battery_volts(self):
        field = self.field
        if field.fault_of("battery") in ("unplugged", "timeout", "crc"):
            return BATTERY_OPEN_V
        ratio = max(1.0, float(self.wiring["battery"].get("ratio") or 1.0))  # a divider only divides
        return field.value("battery_v") / ratio + field._noise(0.002)

    # --- Wi-Fi ---

    def ap_reachable(self):
        return self.ap["up"]

    # --- anemometer ---

    def start_wind(self, state):
        """Deliver anemometer edges to state.handler in real time until the chip is
        replaced: from a thread, or through wind_step() when wind_thread is False."""
        if not self.wind_thread:
            self._wind_pin = state
            self._wind_due = ticks_ms()
            return
        if self._wind_running or _thread is None:
            return
        self._wind_running = True
        _thread.start_new_thread(self._wind_loop, (state,))

    def _wind_period_ms(self, state):
        """ms between the anemometer's edges now; None while it gives none."""
        fault = self.field.fault_of("wind")
        if fault == "stuck":
            state.level = 0  # the reed switch stays closed: no edges
            return None
        hz = 0.0 if fault in ("unplugged", "timeout") else self.field.value("wind_speed") / KMH_PER_HZ
        return int(1000 / hz) if hz >= 0.2 else None

    def _wind_loop(self, state):
        try:
            thread_loop(lambda idle: self._wind_turn(state, idle))
        finally:
            self._wind_running = False

    def _wind_turn(self, state, idle):
        """One anemometer pulse (or 50 ms of calm); False once the pin is let go."""
        if self.closed or state.handler is None:
            return False
        period_ms = self._wind_period_ms(state)
        if period_ms is None:
            thread_sleep_ms(50, idle)
            return True
        thread_sleep_ms(period_ms - 3, idle)
        self._edge(state)
        thread_sleep_ms(3, idle)
        state.level = 1
        return True

    def wind_step(self, now):
        """The anemometer driven by the caller's loop (wind_thread False): the edge due
        by now, if any, goes to the handler at once (the loop is where a soft IRQ runs);
        one edge per call. Returns when to call again (ticks_ms), or None: no anemometer."""
        state = self._wind_pin
        if state is None or state.handler is None or self.closed:
            return None
        if ticks_diff(now, self._wind_due) < 0:
            return self._wind_due
        period_ms = self._wind_period_ms(state)
        if period_ms is None:
            self._wind_armed = False
            self._wind_due = ticks_add(now, 50)
            return self._wind_due
        if self._wind_armed and state.trigger & 2:  # IRQ_FALLING
            state.level = 0
            state.handler(state.pin)
            state.level = 1  # a pulse shorter than the loop's turn
        self._wind_armed = True
        due = ticks_add(self._wind_due, period_ms)  # from the last due: late calls keep the rate
        self._wind_due = due if ticks_diff(due, now) > -period_ms else ticks_add(now, period_ms)
        return self._wind_due

    def _edge(self, state):
        state.level = 0
        handler = state.handler
        if handler is not None and state.trigger & 2:  # IRQ_FALLING
            if schedule is not None:
                try:
                    schedule(handler, state.pin)
                except RuntimeError:
                    pass  # schedule queue full: the real chip drops the IRQ as well
            else:
                handler(state.pin)

    def pulse(self, gpio, count, period_ms):
        """Deliver count falling edges on gpio, period_ms apart, from this thread (tests)."""
        state = self.pin(gpio)
        for _ in range(count):
            state.level = 0
            if state.handler is not None and state.trigger & 2:
                state.handler(state.pin)
            sleep_ms(max(1, period_ms // 2))
            state.level = 1
            sleep_ms(max(0, period_ms - period_ms // 2))

    def keep(self, log, item):
        """Append to a log tests read, keeping only the newest LOG_MAX entries; nothing at
        all when self.logging is off (a virtual node: the heap must hold the firmware's
        objects, not the stubs' records)."""
        if not self.logging:
            return
        log.append(item)
        if len(log) > LOG_MAX:
            del log[: LOG_MAX // 4]

    def keep_rtc_in(self, path):
        """RTC memory survives this process: loaded from path now, saved there on write."""
        self.rtc_store = path
        try:
            with open(path, "rb") as f:
                self.rtc_memory = f.read()
        except OSError:
            self.rtc_memory = b""

    def rtc_written(self):
        if self.rtc_store is not None:
            with open(self.rtc_store, "wb") as f:
                f.write(self.rtc_memory)

    def close(self):
        self.closed = True


_current = [None]


def chip():
    """The chip of this process (a default one, on a default field, if none was made)."""
    if _current[0] is None:
        new_chip()
    return _current[0]


def new_chip(field=None, wiring=None, **kwargs):
    """Install and return a fresh chip, as after a power cycle."""
    if _current[0] is not None:
        _current[0].close()
    _current[0] = Chip(field, wiring, **kwargs)
    return _current[0]


def use(chip):
    """Make chip the current one, leaving the one before running (several boards in
    one process: each is made current before its code runs)."""
    _current[0] = chip
    return chip
