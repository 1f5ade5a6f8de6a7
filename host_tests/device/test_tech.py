# The technician's REPL package (firmware/tech/) on the stubs: a device folder with its
# config, a chip on a field model, and a Tech whose printout, sleeps and input() are the test's.
import json
import sys

import machine
import network
from bootguard import BootGuard
from fieldmodel import Field
from firmware import CONFIG_CODE, config, unload
from firmware.startup import flash_log
from firmware.tech import Tech
from simchip import new_chip, wiring_from_config
from testkit import exists, raises, read_text, tmpdir, write_text
from ticks import sleep_ms, ticks_diff

SECRETS = {"wifi": {"ssid": "farm", "password": "farmpass"},
           "mqtt": {"host": "10.0.0.5", "user": "node7", "password": "Zq-s3cret"}}
CALM = {"wind_speed": 4.0, "ph": 6.5, "soil_temp": 25.0, "temp": 25.0}


class Bench:
    """A device folder holding config.json (patch) and secrets.json, a fresh chip on field,
    and a Tech printing into self.lines. answers: what input() returns, in turn; each may
    be (field values to set first, answer)."""

    def __init__(self, patch=None, values=None, answers=(), sleep=None, wind_s=0.3):
        self.root = tmpdir()
        write_text(self.root + "/config.json", json.dumps(patch or {}))
        write_text(self.root + "/secrets.json", json.dumps(SECRETS))
        self.field = Field()
        for name in values or {}:
            self.field.set(name, values[name])
        self.chip = new_chip(self.field, wiring_from_config(config.apply(config.defaults(), patch or {})))
        self.lines = []
        self.prompts = []
        self.answers = list(answers)
        self.tech = Tech(self.root, out=self.lines.append, sleep_ms=sleep, ask=self.ask, wind_s=wind_s)

    def ask(self, prompt):
        self.prompts.append(prompt)
        answer = self.answers.pop(0)
        if type(answer) is tuple:
            for name in answer[0]:
                self.field.set(name, answer[0][name])
            answer = answer[1]
        return answer

    def take(self):
        """Everything printed since the last take, as one text."""
        text = "\n".join(self.lines)
        self.lines.clear()
        return text

    def line(self, start):
        for text in "\n".join(self.lines).split("\n"):
            if text.startswith(start):
                return text
        raise AssertionError("no line starting %r in:\n%s" % (start, "\n".join(self.lines)))

    def stored(self, sensor):
        return config.load(self.root)[0]["sensors"][sensor]


def number_after(text, word):
    """The number that follows word in text ("ph 6.81, ..." -> 6.81)."""
    rest = text[text.index(word) + len(word):].strip()
    end = 0
    while end < len(rest) and rest[end] in "-0123456789.":
        end += 1
    return float(rest[:end])


def on_times(chip, gpio):
    """(ms on, writes) of the first time gpio went high and the first low after it."""
    writes = chip.writes(gpio)
    for i in range(len(writes)):
        if writes[i][1] == 1:
            for later in writes[i + 1:]:
                if later[1] == 0:
                    return ticks_diff(later[0], writes[i][0]), writes
            return None, writes
    return None, writes


# --- help and usage ---

def test_help_lists_every_function_on_one_line_each_and_a_tech_prints_it():
    bench = Bench()
    bench.tech.help()
    text = bench.take()
    for name in ("status()", "read()", "relay(name, seconds)", "calibrate(sensor", "wifi(ssid, password, add=False",
                 "broker(host, port=1883", "config(key=None, value=None)", "log(lines=20)",
                 "leave_safe_mode()", "restart()", "help()"):
        assert ("tech." + name) in text, (name, text)
    assert len(text.split("\n")) == 12  # a title and one line each
    assert repr(bench.tech) == text


def test_wrong_arguments_print_how_to_call_never_a_traceback_and_move_nothing():
    bench = Bench()
    calls = [
        (bench.tech.relay, (), {}, "name: the relay's name"),
        (bench.tech.relay, ("irrigation",), {}, "seconds: how long"),
        (bench.tech.relay, ("irrigation", "10"), {}, "seconds:"),
        (bench.tech.relay, ("irrigation", -1), {}, "seconds:"),
        (bench.tech.relay, ("irrigation", True), {}, "seconds:"),
        (bench.tech.relay, ("irrigation", float("nan")), {}, "seconds:"),
        (bench.tech.relay, ("sprinkler", 5), {}, "no relay named 'sprinkler'; the relays are: fertigation, irrigation"),
        (bench.tech.relay, ("irrigation", 5, 6), {}, "unexpected argument: 6"),
        (bench.tech.relay, ("irrigation", 5), {"colour": 1}, "unexpected argument: colour="),
        (bench.tech.calibrate, (), {}, "sensor: 'ph', 'ec' or 'moisture'"),
        (bench.tech.calibrate, ("salinity",), {}, "sensor:"),
        (bench.tech.calibrate, ("ph", 7), {}, "point: a string"),
        (bench.tech.calibrate, ("ph", None, 7.0), {}, "a value goes with a point"),
        (bench.tech.wifi, (), {}, "ssid:"),
        (bench.tech.wifi, ("barn",), {}, "password:"),
        (bench.tech.wifi, ("barn", "short"), {}, "password of barn: 8 to 64 characters"),
        (bench.tech.broker, (), {}, "host:"),
        (bench.tech.broker, ("10.0.0.9", "1883"), {}, "port: a whole number"),
        (bench.tech.broker, ("10.0.0.9",), {"tls": "yes"}, "tls: True or False"),
        (bench.tech.broker, ("10.0.0.9",), {"user": 7}, "user: a string"),
        (bench.tech.config, (5,), {}, "key: a dotted name"),
        (bench.tech.config, (), {"value": 3}, "a value needs a key"),
        (bench.tech.log, (0,), {}, "lines: how many"),
        (bench.tech.log, ("all",), {}, "lines: how many"),
        (bench.tech.status, (1,), {}, "unexpected argument: 1"),
        (bench.tech.read, (), {"now": True}, "unexpected argument: now="),
        (bench.tech.restart, ("now",), {}, "unexpected argument"),
        (bench.tech.leave_safe_mode, (1,), {}, "unexpected argument"),
    ]
    for method, args, kwargs, expected in calls:
        assert method(*args, **kwargs) is None
        text = bench.take()
        name = text.split("usage: tech.")[-1].split("(")[0]
        assert expected in text and "\nusage: tech." + name + "(" in text, (args, kwargs, text)
        assert "Traceback" not in text
    assert [level for _, level in bench.chip.writes(26) + bench.chip.writes(25) if level] == []
    assert json.loads(read_text(bench.root + "/secrets.json")) == SECRETS  # nothing saved


def test_module_functions_use_a_fresh_tech_on_the_devices_own_folder():
    from firmware import tech

    made = tech._tech()
    assert isinstance(made, Tech) and made.root == "" and tech._tech() is not made  # nothing kept
    tech.help()  # prints; never raises
    tech.relay("irrigation")


def test_a_call_forgets_every_module_it_loaded_its_part_first():
    from firmware import tech

    bench = Bench(values=CALM)
    before = set(sys.modules)
    calls = ((bench.tech.status, ()), (bench.tech.read, ()), (bench.tech.relay, ("irrigation", 0.05)),
             (bench.tech.relay, ("irrigation", 0)), (bench.tech.calibrate, ("ph", "mid", 7.0)),
             (bench.tech.config, ("interval_s",)), (bench.tech.config, ("interval_s", 30)),
             (bench.tech.wifi, ("barn", "barn-pass-1")), (bench.tech.log, ()), (bench.tech.status, (1,)),
             (tech.help, ()))
    for call, args in calls:
        call(*args)
        assert [name for name in sys.modules if name.startswith("firmware.tech.")] == [], args
        assert [name for name in sys.modules if name not in before] == [], args
    raises(machine.ResetRequested, bench.tech.restart)
    assert [name for name in sys.modules if name not in before] == []
    text = bench.take()
    assert "saved interval_s" in text, text  # the calls did their work
    # Nor are the parts left as the package's attributes, where a part named after a
    # call would have replaced the function.
    modules = [getattr(tech, name) for name in dir(tech) if type(getattr(tech, name)) is type(sys)]
    assert [module.__name__ for module in modules if module.__name__.startswith("firmware.")] == []
    for name in ("help", "status", "read", "relay", "calibrate", "wifi", "broker", "config", "log",
                 "leave_safe_mode", "restart"):
        assert callable(getattr(tech, name)), name


def test_importing_tech_loads_none_of_its_parts_nor_the_config_code():
    import firmware

    kept = sys.modules["firmware.tech"]
    unload("firmware.tech", *CONFIG_CODE)
    try:
        before = set(sys.modules)
        import firmware.tech  # noqa: F401
        assert [name for name in sys.modules if name not in before] == ["firmware.tech"]
    finally:
        sys.modules["firmware.tech"] = kept  # the one whose Tech and Usage this module uses
        firmware.tech = kept


# --- status ---

def test_status_reports_identity_boot_guard_link_memory_clock_and_relays():
    bench = Bench()
    guard = BootGuard(machine.RTC(), 3)
    for _ in range(4):  # three failed boots, then this one
        guard.boot()
    flash_log(bench.root).write("boot: reset cause 1, 3 boots in a row failed before reaching the broker")
    machine.Pin(26, machine.Pin.OUT, value=1)  # a relay someone left on
    bench.tech.status()
    text = bench.take()
    for expected in ("farmnode 0.1.0, device node-240ac45e1107, reset cause power_on",
                     "boot guard: 3 failed boots before this one: safe mode (tech.leave_safe_mode() clears it)",
                     "last boot (flash log): 3 boots in a row failed before reaching the broker",
                     "Wi-Fi: not connected (off, idle), configured: 'farm'",
                     "broker: 10.0.0.5:1883, user 'node7', no TLS, profile farmnode",
                     "flash: ", " KiB free of ", "outbox: empty", "clock: not set",
                     "relays: fertigation off, irrigation ON (expected off!)"):
        assert expected in text, (expected, text)
    if hasattr(__import__("gc"), "mem_free"):
        assert "heap: " in text and " bytes free" in text
    assert "Zq-s3cret" not in text and "farmpass" not in text
    assert bench.chip.relay_on("irrigation")  # status reads the pins, it does not drive them
    assert guard.count() == 4  # read, not counted
    # Online, after a good boot, with the clock set.
    guard.healthy()
    with open(bench.root + "/outbox.txt", "w") as f:
        f.write('10\tfarm/n/telemetry\t{"seq": 1}\n')
    machine.RTC().datetime((2026, 1, 24, 5, 22, 30, 0, 0))
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    wlan.connect("farm", "farmpass")
    sleep_ms(350)
    made = network.WLAN
    network.WLAN = lambda interface=0: wlan  # the esp32 port's WLAN(STA_IF) is one object
    try:
        bench.tech.status()
    finally:
        network.WLAN = made
    text = bench.take()
    for expected in ("boot guard: clear (this boot reached the broker)", "Wi-Fi: connected to 'farm', ip 192.168.4.23, rssi -62 dBm",
                     "outbox: 31 bytes of readings taken offline", "clock: 2026-01-24 22:30:"):
        assert expected in text, (expected, text)


# --- read ---

def test_read_prints_calibrated_and_raw_values_and_errors_and_lets_the_hardware_go():
    bench = Bench({"trims": {"ph": {"scale": 1.0, "offset": 0.1}}},
                  dict(CALM, moisture=50.0, ec=1.2, ph=6.8, n=38, p=15, k=152, wind_speed=30.0), wind_s=0.6)
    bench.field.fault("npk", "crc")
    bench.tech.read()
    soil = bench.line("soil")
    assert abs(number_after(soil, "moisture") - 50.0) < 1.5 and "raw " in soil and "counts (dry 3200, wet 1300)" in soil
    assert abs(number_after(soil, "raw") - 2250) < 30, soil
    assert abs(number_after(bench.line("ph"), " ph ") - 6.9) < 0.05  # trimmed: + 0.1
    assert abs(number_after(bench.line("ph"), "raw") - 1.5118) < 0.002, bench.line("ph")  # 1.5 + 0.2 x 59.16 mV
    assert abs(number_after(bench.line("ec"), " ec ") - 1.2) < 0.03 and " V at 25.0 C" in bench.line("ec")
    assert abs(number_after(bench.line("dht"), "temp") - 25.0) < 0.2 and "humidity" in bench.line("dht")
    assert bench.line("npk") == "npk   no reading   error: crc"
    wind = bench.line("wind")
    assert 12 < number_after(wind, "wind_speed") < 45 and " Hz" in wind, wind  # pulses in a short window
    assert "ph is trimmed: x 1.0 + 0.1" in bench.take()
    assert bench.chip.pin(27).handler is None  # the anemometer's IRQ is released
    # Only the enabled sensors; no wind, no wait for its pulses.
    bench = Bench({"sensors": {"ec": {"enabled": False}, "ph": {"enabled": False}, "wind": {"enabled": False},
                               "npk": {"enabled": False}}})
    bench.field.fault("dht", "timeout")
    bench.tech.read()
    text = bench.take()
    assert "dht   no reading   error: timeout" in text and "soil  moisture" in text, text
    assert "wind" not in text and "ph" not in text and "npk" not in text, text


# --- relays ---

def test_relay_is_on_for_its_seconds_then_off():
    bench = Bench(sleep=None)
    bench.tech.relay("irrigation", 0.2)
    on_ms, writes = on_times(bench.chip, 26)
    assert on_ms is not None and 190 <= on_ms <= 300, writes
    assert not bench.chip.relay_on("irrigation") and writes[-1][1] == 0
    text = bench.take()
    assert "irrigation on for 0.2 s (Ctrl-C switches it off)" in text and "irrigation off after 0.2 s" in text, text
    assert "interlock" not in text  # irrigation has none: no sensor pass before it
    assert bench.chip.writes(25)[-1][1] == 0  # the other relay driven off, never on
    assert [level for _, level in bench.chip.writes(25) if level] == []


def test_relay_countdown_and_max_on_s():
    bench = Bench({"relays": {"irrigation": {"max_on_s": 2}}})
    bench.tech.relay("irrigation", 3)
    assert "refused: irrigation may stay on at most 2 s (relays.irrigation.max_on_s)" in bench.take()
    assert [level for _, level in bench.chip.writes(26) if level] == []
    bench.tech.relay("irrigation", 1.5)
    text = bench.take()
    assert "  1 s left" in text and "irrigation off after 1.5 s" in text, text


def test_ctrl_c_switches_the_relay_off_at_once_and_anything_else_too():
    bench = Bench()

    def ctrl_c(ms):
        if bench.chip.relay_on("irrigation"):
            raise KeyboardInterrupt
        sleep_ms(ms)

    bench.tech._sleep = ctrl_c
    assert bench.tech.relay("irrigation", 30) is None  # nothing re-raised
    on_ms, writes = on_times(bench.chip, 26)
    assert on_ms is not None and on_ms < 50, writes
    assert not bench.chip.relay_on("irrigation")
    assert "stopped: irrigation off after 0.0 s" in bench.take()

    def broken(ms):
        if bench.chip.relay_on("irrigation"):
            raise OSError(5, "EIO")
        sleep_ms(ms)

    bench.tech._sleep = broken
    bench.tech.relay("irrigation", 30)
    assert not bench.chip.relay_on("irrigation") and "relay failed: OSError" in bench.take()

    def reset(ms):
        if bench.chip.relay_on("irrigation"):
            machine.reset()
        sleep_ms(ms)

    bench.tech._sleep = reset
    raises(machine.ResetRequested, bench.tech.relay, "irrigation", 30)  # a reset goes through...
    assert not bench.chip.relay_on("irrigation")  # ...with the relay off


def test_an_interlock_refuses_fertigation_in_wind_or_bad_ph():
    bench = Bench(values=dict(CALM, wind_speed=45.0), wind_s=0.5)  # ~9 pulses: surely above 20 km/h
    bench.tech.relay("fertigation", 1)
    text = bench.take()
    assert "interlocks nutrient_lockout, spray_drift: reading the sensors first" in text, text
    assert "refused: interlock spray_drift: wind_speed" in text and "outside 0.0..20.0" in text, text
    assert [level for _, level in bench.chip.writes(25) if level] == []
    assert bench.chip.pin(27).handler is None
    bench.field.set("wind_speed", 4.0)
    bench.field.set("ph", 4.9)
    bench.tech.relay("fertigation", 1)
    assert "refused: interlock nutrient_lockout: ph" in bench.take()
    bench.field.set("ph", 6.5)
    bench.tech.relay("fertigation", 0.2)
    assert "fertigation off after 0.2 s" in bench.take()
    assert 190 <= on_times(bench.chip, 25)[0] <= 300


def test_a_running_fertigation_stops_when_the_wind_rises():
    # No DHT: its first read (~270 ms) would move the relay's start against the stub
    # anemometer's calm pulses, which notice the gust only at their next edge (600 ms).
    bench = Bench({"interval_s": 1, "sensors": {"dht": {"enabled": False}}}, values=CALM)

    def gust(ms):  # the wind rises as soon as the pump runs
        if bench.chip.relay_on("fertigation"):
            bench.field.set("wind_speed", 35.0)
        sleep_ms(ms)

    bench.tech._sleep = gust
    bench.tech.relay("fertigation", 4)
    on_ms, writes = on_times(bench.chip, 25)
    assert on_ms is not None and 950 <= on_ms <= 2000, writes
    text = bench.take()
    assert "fertigation off after 1." in text and ": interlock spray_drift: wind_speed" in text, text


# --- calibration ---

def test_ph_calibration_one_step_per_call_as_the_command_does_it():
    bench = Bench({"sensors": {"ph": {"slope_mv": -50.0, "offset_v": 1.62}}}, dict(CALM, ph=7.0))
    bench.tech.calibrate("ph", "mid", 7.0)
    text = bench.take()
    assert text.startswith("now: ph    ph ") and "raw 1.50" in text, text
    assert "ph mid: saved sensors.ph.offset_v = 1." in text and "(points 1, temp_c 25, volts 1." in text, text
    assert abs(bench.stored("ph")["offset_v"] - 1.5) < 0.002 and bench.stored("ph")["slope_mv"] == -50.0
    bench.field.set("ph", 4.0)
    assert exists(bench.root + "/calibration-points.json")  # the mid point waits on flash
    bench.tech = Tech(bench.root, out=bench.lines.append, wind_s=0.3)  # as a new REPL call makes one
    bench.tech.calibrate("ph", "low")  # the default buffer: 4.0
    text = bench.take()
    assert "ph low: saved sensors.ph.slope_mv = -59." in text and "efficiency_pct" in text, text
    stored = bench.stored("ph")
    assert abs(stored["slope_mv"] + 59.16) < 0.6 and abs(stored["offset_v"] - 1.5) < 0.002
    bench.field.set("ph", 7.0)  # a "low" buffer that is a mid one: the slope is refused
    bench.tech.calibrate("ph", "low", 4.0)
    assert "refused: pH slope" in bench.take() and bench.stored("ph") == stored
    bench.tech.calibrate("ph", "neutral")
    assert "refused: ph calibration point must be mid, low, high or clear" in bench.take()
    bench.tech.calibrate("ph", "clear")
    assert "saved sensors.ph.slope_mv = -59.16, sensors.ph.offset_v = 1.5" in bench.take()
    assert config.load(bench.root)[0]["sensors"]["ph"]["slope_mv"] == -59.16
    bench.field.fault("ph", "unplugged")
    bench.tech.calibrate("ph", "mid")
    assert "refused: the ph probe reads 3.100 V: not connected?" in bench.take()


def test_guided_ph_calibration_shows_the_reading_and_records_each_buffer():
    answers = [({"ph": 7.0}, "r"), "", ({"ph": 4.0}, "x"), "", "s"]
    bench = Bench({"sensors": {"ph": {"slope_mv": -50.0, "offset_v": 1.62}}}, CALM, answers)
    bench.tech.calibrate("ph")
    done = bench.line("done")
    text = bench.take()
    for expected in ("calibrating ph in 3 steps",
                     "step 1/3 (mid): rinse the probe, put it in the pH 7.00 buffer, press Enter when the reading is stable",
                     "step 2/3 (low): rinse the probe, put it in the pH 4.00 buffer",
                     "step 3/3 (high)", "not understood: 'x'", "skipped",
                     "ph mid: saved sensors.ph.offset_v", "ph low: saved sensors.ph.slope_mv", "done; it now reads: ph"):
        assert expected in text, (expected, text)
    assert text.count("  ph    ph ") == 5  # the live reading before each answer
    assert "s: skip" not in bench.prompts[0] and "s: skip" in bench.prompts[2]
    assert "type your buffer's pH" in bench.prompts[0]
    stored = bench.stored("ph")
    assert abs(stored["slope_mv"] + 59.16) < 0.6 and abs(stored["offset_v"] - 1.5) < 0.002
    assert abs(number_after(done, "    ph ") - 4.0) < 0.03, done


def test_guided_moisture_and_ec_calibration_with_typed_values_and_quitting():
    bench = Bench(values=CALM, answers=[({"moisture": 0.0}, ""), ({"moisture": 100.0}, "")])
    bench.tech.calibrate("moisture")
    soil = bench.stored("soil")
    assert abs(soil["dry"] - 3200) < 30 and abs(soil["wet"] - 1300) < 30, soil
    text = bench.take()
    assert "hold the probe in the air" in text and "moisture wet: saved sensors.soil.wet = " in text, text
    # EC: two solutions, the second one typed in; the probe board is 2 mS/cm per volt.
    bench = Bench({"sensors": {"ec": {"k": 3.1}}}, CALM, [({"ec": 1.413}, ""), ({"ec": 5.0}, "5.0")])
    bench.tech.calibrate("ec")
    ec = bench.stored("ec")
    assert abs(ec["k"] - 2.0) < 0.03 and abs(ec["offset"]) < 0.05, ec
    assert "1.413 mS/cm solution" in bench.take()
    # Quitting at the first step stores nothing; Ctrl-C at input() stops too.
    bench = Bench(values=CALM, answers=["q"])
    bench.tech.calibrate("moisture")
    assert "stopped; the steps recorded before are saved" in bench.take()
    assert read_text(bench.root + "/config.json") == "{}"

    def ctrl_c(prompt):
        raise KeyboardInterrupt

    bench.tech._ask = ctrl_c
    bench.tech.calibrate("ph")
    assert bench.take().endswith("stopped") and read_text(bench.root + "/config.json") == "{}"
    bench.tech.calibrate("moisture", "dry", 2900)  # a step with a value: raw counts
    assert bench.stored("soil")["dry"] == 2900 and "(raw 2900)" in bench.take()


# --- settings ---

def test_config_shows_hides_refuses_and_saves():
    bench = Bench()
    bench.tech.config()
    text = bench.take()
    for expected in ("interval_s = 60", "mqtt.host = '10.0.0.5'", "relays.irrigation.max_on_s = 1800",
                     "mqtt.password = (set, hidden)", "wifi.password = (set, hidden)", "relay_groups = {}"):
        assert expected in text, (expected, text)
    assert "Zq-s3cret" not in text and "farmpass" not in text
    bench.tech.config("relays.irrigation")
    assert bench.take().split("\n")[0] == "relays.irrigation.active_low = False"
    bench.tech.config("mqtt.password")
    assert bench.take() == "mqtt.password = (set, hidden)"
    bench.tech.config("relays.sprinkler")
    assert "no key 'relays.sprinkler' in the config" in bench.take()
    before = read_text(bench.root + "/config.json")
    bench.tech.config("interval_s", 0)
    assert bench.take() == "refused, nothing changed:\n  interval_s: must be between 1 and 86400, got 0"
    bench.tech.config("relays", {"irrigation": {"pin": 35, "max_on_s": "long"}})
    text = bench.take()
    assert "relays.irrigation.pin: GPIO 35 is input-only" in text and "relays.irrigation.max_on_s: must be" in text
    assert read_text(bench.root + "/config.json") == before
    bench.tech.config("interval_s", 30)
    assert bench.take() == ("saved interval_s\nrestart needed: no (a running node takes it at once; "
                            "the application uses it when it starts)")
    bench.tech.config("relays.irrigation.pin", 13)
    assert "restart needed: yes (the wiring or a boot setting)" in bench.take()
    bench.tech.config("alerts.heat", {"sensor": "temp", "max": 40.0})  # a new named entry
    assert "saved alerts.heat" in bench.take() and config.load(bench.root)[0]["alerts"]["heat"]["max"] == 40.0
    bench.tech.config("alerts.heat", None)  # None removes it
    assert "saved alerts.heat" in bench.take()
    bench.tech.config("interval_s", 30)
    assert bench.take() == "no change"
    cfg = config.load(bench.root)[0]
    assert cfg["interval_s"] == 30 and cfg["relays"]["irrigation"]["pin"] == 13 and "heat" not in cfg["alerts"]
    assert json.loads(read_text(bench.root + "/secrets.json")) == SECRETS
    write_text(bench.root + "/config.json", '{"interval_s": 0}')
    bench.tech.config()
    assert "ignored at load: interval_s: must be between 1 and 86400, got 0 (in config.json, ignored)" in bench.take()


def test_wifi_and_broker_are_saved_in_secrets_json_for_the_next_reset():
    bench = Bench()
    bench.tech.wifi("barn", "barn-pass-1")
    assert bench.take() == "saved Wi-Fi 'barn', with a password\nused from the next reset: tech.restart()"
    secrets = json.loads(read_text(bench.root + "/secrets.json"))
    assert secrets["wifi"] == {"ssid": "barn", "password": "barn-pass-1"}
    bench.tech.broker("192.168.1.10", 8883, "node9", "Xy-pw-77", True)
    text = bench.take()
    assert text == "saved broker 192.168.1.10:8883\nused from the next reset: tech.restart()" and "Xy-pw-77" not in text
    secrets = json.loads(read_text(bench.root + "/secrets.json"))
    assert secrets["mqtt"] == {"host": "192.168.1.10", "port": 8883, "user": "node9", "password": "Xy-pw-77", "tls": True}
    assert read_text(bench.root + "/config.json") == "{}"  # no secret in config.json
    bench.tech.broker("192.168.1.11")  # port 1883; user, password and TLS left as they are
    mqtt = config.load(bench.root)[0]["mqtt"]
    assert (mqtt["host"], mqtt["port"], mqtt["user"], mqtt["password"], mqtt["tls"]) == (
        "192.168.1.11", 1883, "node9", "Xy-pw-77", True)
    secrets = json.loads(read_text(bench.root + "/secrets.json"))
    bench.take()
    bench.tech.broker("192.168.1.12", 70000)
    assert bench.take() == "refused, nothing changed:\n  mqtt.port: must be between 1 and 65535, got 70000"
    assert json.loads(read_text(bench.root + "/secrets.json")) == secrets
    bench.tech.wifi("barn", "")
    assert "open" in bench.take() and config.load(bench.root)[0]["wifi"] == {"ssid": "barn", "password": "", "networks": []}


# --- the flash log, safe mode, restart ---

def test_log_prints_the_tail_of_the_flash_log():
    bench = Bench()
    bench.tech.log()
    assert bench.take() == "the flash log (%s/log.txt) is empty" % bench.root
    log = flash_log(bench.root)
    for n in range(30):
        log.write("event %d" % n)
    bench.tech.log(3)
    assert [line.split("event ")[1] for line in bench.lines] == ["27", "28", "29"]
    bench.take()
    bench.tech.log()
    assert len(bench.lines) == 20 and bench.lines[0].endswith("event 10")


def test_leave_safe_mode_clears_the_boot_guard_and_resets():
    bench = Bench()
    guard = BootGuard(machine.RTC(), 3)
    for _ in range(4):
        guard.boot()
    assert guard.tripped()
    raises(machine.ResetRequested, bench.tech.leave_safe_mode)
    assert machine.RTC().memory() == b"BGv1\x00"
    assert BootGuard(machine.RTC(), 3).boot() == 0  # the next boot starts the application
    text = bench.take()
    assert text == "boot guard cleared (it counted 4 boot(s) without the broker); restarting", text
    bench.chip.boot_button = True
    bench.chip.pins.pop(0, None)
    raises(machine.ResetRequested, bench.tech.leave_safe_mode)
    assert "the BOOT button is held" in bench.take()
    err = raises(machine.ResetRequested, bench.tech.restart)
    assert err.kind == "hard" and bench.take() == "restarting"


def test_wifi_networks_are_added_and_removed():
    bench = Bench()  # its secrets: the "farm" network
    bench.tech.wifi("shed", "shed-pass-2", add=True)
    assert bench.take() == ("saved Wi-Fi 'shed' added (with a password)\n"
                            "networks: farm, shed (the strongest in range is joined); used from the next reset: "
                            "tech.restart()")
    bench.tech.wifi("barn", "", add=True)
    bench.take()
    wifi = config.load(bench.root)[0]["wifi"]
    assert (wifi["ssid"], [n["ssid"] for n in wifi["networks"]]) == ("farm", ["shed", "barn"])
    bench.tech.wifi("shed", "shed-pass-3", add=True)  # again: its password replaced, not listed twice
    bench.take()
    assert config.load(bench.root)[0]["wifi"]["networks"][-1] == {"ssid": "shed", "password": "shed-pass-3"}
    bench.tech.wifi("farm", remove=True)
    assert bench.take().startswith("saved Wi-Fi without 'farm'\nnetworks: barn, shed")
    bench.tech.wifi("nowhere", remove=True)
    assert bench.take() == "no network 'nowhere' (have: barn, shed)"
    bench.tech.wifi("barn", "x", remove=True)
    assert "remove=True takes the ssid alone" in bench.take()
    wifi = config.load(bench.root)[0]["wifi"]
    assert (wifi["ssid"], [n["ssid"] for n in wifi["networks"]]) == ("", ["barn", "shed"])
