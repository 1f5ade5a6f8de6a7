# Driver logic against scripted hardware: intervals, retries, medians, debounce, gusts,
# error mapping and the reader's isolation of failures. (The drivers on the stubs and
# the field model, end to end, are in test_sensors_on_field.py.)
import errno

from coop import run
from firmware.sensors.air import AirSensor
from firmware.sensors import HOLDS, KEYS, Sensor, Unavailable
from firmware.sensors.reader import SensorReader
from firmware.sensors.soil import SoilMoisture
from firmware.sensors.wind import Anemometer
from testkit import raises
from ticks import sleep_ms


def read(driver):
    values, errors = {}, {}
    run(driver.read_steps(values, errors), 0)
    return values, errors


class ScriptedADC:
    def __init__(self, counts):
        self.counts = list(counts)
        self.reads = 0

    def read_u16(self):
        value = self.counts[self.reads % len(self.counts)]
        self.reads += 1
        return value << 4


def test_soil_median_ignores_spikes_and_maps_calibration():
    # 9 samples, two wild spikes: the median is 2250 -> (3200-2250)/(3200-1300) = 50 %.
    adc = ScriptedADC([2250, 4000, 2250, 2250, 100, 2250, 2250, 2250, 2250])
    soil = SoilMoisture(adc, dry=3200, wet=1300, samples=9)
    assert read(soil) == ({"moisture": 50.0}, {})
    assert adc.reads == 9 and soil.raw == 2250


def test_soil_clamps_to_0_and_100_percent():
    assert read(SoilMoisture(ScriptedADC([3500])))[0]["moisture"] == 0.0
    assert read(SoilMoisture(ScriptedADC([900])))[0]["moisture"] == 100.0


def test_soil_open_input_is_unplugged_not_a_number():
    for counts in (0, 10, 4095):
        assert read(SoilMoisture(ScriptedADC([counts]))) == ({"moisture": None}, {"soil": "unplugged"})


def test_soil_calibration_can_change_and_must_differ():
    soil = SoilMoisture(ScriptedADC([2000]))
    soil.calibrate(dry=2500, wet=1500)
    assert read(soil)[0]["moisture"] == 50.0
    raises(ValueError, soil.calibrate, 2000, 2000)


class ScriptedDHT:
    """measure() outcomes in order: a (temp, humidity) tuple or an exception to raise."""

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.calls = 0
        self.last = (None, None)

    def measure(self):
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        self.last = outcome

    def temperature(self):
        return self.last[0]

    def humidity(self):
        return self.last[1]


def test_dht_returns_last_good_reading_inside_its_minimum_interval():
    device = ScriptedDHT([(21.5, 40.0), (22.5, 41.0)])
    air = AirSensor(device, "DHT11", interval_s=0)  # below the minimum: the minimum, 1 s
    assert read(air) == ({"temp": 21.5, "humidity": 40.0}, {})
    assert read(air) == ({"temp": 21.5, "humidity": 40.0}, {})
    assert device.calls == 1  # not asked again inside the interval
    sleep_ms(1050)
    assert read(air)[0]["temp"] == 22.5 and device.calls == 2


def test_dht_is_read_at_most_every_interval_s_and_passes_between_carry_the_last_read():
    device = ScriptedDHT([(21.5, 40.0), (22.5, 41.0)])
    air = AirSensor(device, "DHT11", interval_s=2)
    assert read(air) == ({"temp": 21.5, "humidity": 40.0}, {})
    sleep_ms(1100)  # past the sensor's own minimum, inside interval_s
    assert read(air) == ({"temp": 21.5, "humidity": 40.0}, {}) and device.calls == 1
    sleep_ms(1000)
    assert read(air)[0]["temp"] == 22.5 and device.calls == 2
    air.configure({"interval_s": 1})  # a live config change
    sleep_ms(1050)
    read(air)
    assert device.calls == 3


def steps_of(driver):
    """Each step of driver.read_steps: (what it yielded before it, measure() calls in it)."""
    values, errors = {}, {}
    steps = driver.read_steps(values, errors)
    device = driver._device
    out = []
    yielded = None
    while True:
        before = device.calls
        try:
            got = next(steps)
        except StopIteration:
            out.append((yielded, device.calls - before))
            return out, values, errors
        out.append((yielded, device.calls - before))
        yielded = got


def test_each_dht_try_is_a_step_of_its_own_announced_as_holding_the_cpu():
    device = ScriptedDHT([OSError(errno.ETIMEDOUT), Exception("checksum error"), (20.0, 50.0)])
    steps, values, errors = steps_of(AirSensor(device, retries=2))
    # No step asks more than once (one turn of the loop holds the chip ~270 ms at most),
    # and every step that asks comes after a HOLDS.
    assert [calls for _, calls in steps] == [0, 1, 1, 1], steps
    assert all(yielded == HOLDS for yielded, calls in steps if calls)
    assert values == {"temp": 20.0, "humidity": 50.0} and errors == {}
    dead = ScriptedDHT([OSError(errno.ETIMEDOUT)])
    steps, values, errors = steps_of(AirSensor(dead, retries=2))
    assert max(calls for _, calls in steps) == 1 and dead.calls == 3
    assert values == {"temp": None, "humidity": None} and errors == {"dht": "timeout"}


def test_a_failed_dht_read_is_not_held_as_a_value():
    device = ScriptedDHT([(21.5, 40.0), OSError(errno.ETIMEDOUT)])
    air = AirSensor(device, "DHT11", retries=0, interval_s=1)
    assert read(air)[0]["temp"] == 21.5
    sleep_ms(1050)
    assert read(air) == ({"temp": None, "humidity": None}, {"dht": "timeout"})


def test_dht_retries_a_failed_measure_a_bounded_number_of_times():
    device = ScriptedDHT([OSError(errno.ETIMEDOUT), (20.0, 50.0)])
    assert read(AirSensor(device, retries=2)) == ({"temp": 20.0, "humidity": 50.0}, {})
    assert device.calls == 2
    dead = ScriptedDHT([OSError(errno.ETIMEDOUT)])
    assert read(AirSensor(dead, retries=2)) == ({"temp": None, "humidity": None}, {"dht": "timeout"})
    assert dead.calls == 3


def test_dht_checksum_error_is_crc():
    values, errors = read(AirSensor(ScriptedDHT([Exception("checksum error")])))
    assert values == {"temp": None, "humidity": None} and errors == {"dht": "crc"}


def test_dht_impossible_values_are_range_errors():
    values, errors = read(AirSensor(ScriptedDHT([(120.0, 50.0)]), retries=0))
    assert values["temp"] is None and errors == {"dht": "range"}


def test_dht_failure_inside_interval_is_not_retried_and_stays_reported():
    device = ScriptedDHT([OSError(errno.ETIMEDOUT)])
    air = AirSensor(device, retries=0)
    read(air)
    assert read(air) == ({"temp": None, "humidity": None}, {"dht": "timeout"})
    assert device.calls == 1


class IrqPin:
    IRQ_FALLING = 2

    def irq(self, handler=None, trigger=None):
        self.handler = handler
        self.trigger = trigger


def pulses(pin, count, period_ms):
    for _ in range(count):
        pin.handler(pin)
        sleep_ms(period_ms)


def test_wind_registers_a_falling_edge_irq():
    pin = IrqPin()
    Anemometer(pin)
    assert pin.trigger == IrqPin.IRQ_FALLING and pin.handler is not None


def test_wind_speed_is_pulse_rate_times_kmh_per_hz():
    pin = IrqPin()
    wind = Anemometer(pin, kmh_per_hz=2.4)
    pulses(pin, 20, 50)  # 20 Hz for 1 s -> 48 km/h
    speed = read(wind)[0]["wind_speed"]
    assert 40.0 <= speed <= 50.0, speed


def test_wind_debounce_drops_contact_bounce():
    pin = IrqPin()
    wind = Anemometer(pin, debounce_ms=5)
    for _ in range(10):
        for _ in range(4):  # one closure that bounces four times within a millisecond
            pin.handler(pin)
        sleep_ms(20)
    assert wind._count == 10


def test_wind_gust_is_highest_three_second_mean():
    pin = IrqPin()
    wind = Anemometer(pin, kmh_per_hz=2.4, debounce_ms=0)
    sleep_ms(1000)
    wind.poll()
    pulses(pin, 30, 10)  # a burst of 30 pulses inside one second
    sleep_ms(700)
    for _ in range(4):  # three more quiet seconds close the windows
        sleep_ms(1000)
        wind.poll()
    values = read(wind)[0]
    assert values["wind_gust"] == 24.0  # 30 pulses / 3 s * 2.4
    assert values["wind_speed"] < values["wind_gust"]
    assert read(wind)[0]["wind_gust"] == 0.0  # the gust is per interval


def test_wind_without_pulses_reads_calm():
    assert read(Anemometer(IrqPin())) == ({"wind_speed": 0.0, "wind_gust": 0.0}, {})


class Exploding(Sensor):  # its values are never published: no decimals needed
    name = "ph"
    keys = ("ph",)
    compensates = True

    def read_steps(self, values, errors):
        yield
        raise RuntimeError("driver bug")


def test_reader_isolates_a_failing_driver_and_reports_all_keys():
    reader = SensorReader([Exploding(), SoilMoisture(ScriptedADC([2250])), Unavailable("npk", ("n", "p", "k"), "setup")])
    values, errors = reader.read()
    assert values["moisture"] == 50.0
    assert values["ph"] is None and errors["ph"] == "error"
    assert (values["n"], values["p"], values["k"]) == (None, None, None) and errors["npk"] == "setup"
    for key in KEYS:
        assert key in values  # a sensor not fitted is null, not missing
    assert values["temp"] is None and "dht" not in errors
    assert isinstance(reader.last_exception, RuntimeError)


def test_reader_hands_the_soil_else_the_air_temperature_to_compensating_drivers():
    class Compensating(Sensor):
        name = "ec"
        keys = ("ec",)
        decimals = (3,)
        compensates = True

        def read_steps(self, values, errors):
            values["ec"] = self.temp_c
            yield

    class SoilProbe(Sensor):
        name = "soil_temp"
        keys = ("soil_temp",)
        decimals = (1,)
        reading = 18.04

        def read_steps(self, values, errors):
            values["soil_temp"] = self.reading
            yield

    ec = Compensating()
    reader = SensorReader([ec, AirSensor(ScriptedDHT([(31.0, 40.0)]))])
    assert reader.read()[0]["ec"] == 31.0  # read after the DHT, whatever the list order
    assert reader.temp_source == "temp"
    soil = SoilProbe()
    reader = SensorReader([ec, AirSensor(ScriptedDHT([(31.0, 40.0)])), soil])
    assert reader.read()[0]["ec"] == 18.0  # the soil's, as published (rounded), over the air's
    assert reader.temp_source == "soil_temp"
    soil.reading = None
    assert reader.read()[0]["ec"] == 31.0 and reader.temp_source == "temp"
    assert SensorReader([SoilProbe()]).temp_source is None  # nothing compensates: nothing to say


def test_values_are_trimmed_then_rounded_to_the_sensors_resolution():
    class Noisy(Sensor):
        name = "npk"
        keys = ("n", "p", "k")
        decimals = (0, 0, 0)

        def read_steps(self, values, errors):
            values["n"], values["p"], values["k"] = 40.6, 12.2, None
            yield

    class Probe(Sensor):
        name = "ph"
        keys = ("ph",)
        decimals = (2,)

        def read_steps(self, values, errors):
            values["ph"] = 6.123456
            yield

    reader = SensorReader([Noisy(), Probe()])
    reader.trims = {"n": {"scale": 1.0, "offset": 0.3}}
    values = reader.read()[0]
    assert (values["n"], values["p"], values["k"], values["ph"]) == (41, 12, None, 6.12)
    assert type(values["n"]) is int
