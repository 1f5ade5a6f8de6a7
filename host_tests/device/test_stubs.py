# The hardware stubs behave like the ESP32 port: refusals, records, raw signals.
import errno

import dht
import esp32
import machine
import network
import ntptime
import simchip
from fieldmodel import Field
from testkit import raises
from ticks import sleep_ms, ticks_diff, ticks_ms


def fresh(**field_kwargs):
    return simchip.new_chip(Field(**field_kwargs))


def test_pins_that_do_not_exist_are_refused():
    fresh()
    for gpio in (20, 24, 28, 29, 30, 31, 40, -1):
        assert str(raises(ValueError, machine.Pin, gpio)) == "invalid pin"


def test_gpio_34_to_39_are_input_only_without_pulls():
    fresh()
    for gpio in range(34, 40):
        assert str(raises(ValueError, machine.Pin, gpio, machine.Pin.OUT)) == "pin can only be input"
        assert "no pull resistors" in str(raises(ValueError, machine.Pin, gpio, machine.Pin.IN,
                                                 machine.Pin.PULL_UP))
        machine.Pin(gpio, machine.Pin.IN)  # plain input is fine


def test_pin_writes_are_recorded_with_timestamps():
    chip = fresh()
    started = ticks_ms()
    pin = machine.Pin(26, machine.Pin.OUT, value=0)
    pin.on()
    sleep_ms(20)
    pin.value(0)
    pin(1)
    writes = chip.writes(26)
    assert [level for _, level in writes] == [0, 1, 0, 1]
    assert ticks_diff(writes[2][0], writes[1][0]) >= 20
    assert ticks_diff(writes[0][0], started) >= 0
    assert pin.value() == 1


def test_relay_pin_drives_the_field_actuator_honouring_active_low():
    chip = simchip.new_chip(Field(), wiring={"relays": {"irrigation": {"pin": 26, "active_low": True}}})
    relay = machine.Pin(26, machine.Pin.OUT, value=1)  # active low: 1 is off
    assert chip.field.actuators["irrigation"] is False
    relay.value(0)
    assert chip.field.actuators["irrigation"] is True and chip.relay_on("irrigation")


def test_adc_pins_and_the_adc2_wifi_conflict():
    fresh()
    assert str(raises(ValueError, machine.ADC, machine.Pin(5))) == "invalid Pin for ADC"
    adc2 = machine.ADC(machine.Pin(4))
    adc2.read()  # fine while Wi-Fi is off
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    assert raises(OSError, adc2.read).args[0] == errno.ETIMEDOUT
    machine.ADC(machine.Pin(34)).read()  # ADC1 is unaffected
    wlan.active(False)
    adc2.read()


def test_soil_probe_counts_follow_the_transfer_curve():
    chip = fresh()
    adc = machine.ADC(machine.Pin(34), atten=machine.ADC.ATTN_11DB)
    expected = {0: 3200, 50: 2250, 100: 1300}
    for moisture in expected:
        chip.field.set("moisture", moisture)
        counts = adc.read()
        assert abs(counts - expected[moisture]) <= 15, (moisture, counts)
        assert abs((adc.read_u16() >> 4) - expected[moisture]) <= 15


def test_adc_width_and_attenuation_scale_the_counts():
    chip = fresh()
    chip.field.set("moisture", 50)  # about 1.70 V on the pin
    adc = machine.ADC(machine.Pin(34), atten=machine.ADC.ATTN_11DB)
    full = adc.read()
    adc.width(machine.ADC.WIDTH_9BIT)
    assert abs(adc.read() - full / 8) <= 4
    adc.atten(machine.ADC.ATTN_0DB)  # 1.1 V full scale: the input saturates
    assert adc.read() == 511 and adc.read_uv() == 1100000
    adc.atten(machine.ADC.ATTN_11DB)
    assert 1650000 <= adc.read_uv() <= 1750000


def test_unplugged_analog_probe_reads_the_rail():
    chip = fresh()
    chip.field.fault("soil", "unplugged")
    assert machine.ADC(machine.Pin(34), atten=machine.ADC.ATTN_11DB).read() == 4095


def test_ph_probe_voltage_is_nernstian_and_temperature_dependent():
    chip = fresh()
    chip.field.set("soil_temp", 25)
    adc = machine.ADC(machine.Pin(36), atten=machine.ADC.ATTN_11DB)
    chip.field.set("ph", 7.0)
    assert abs(adc.read_uv() - 1500000) < 2000
    chip.field.set("ph", 4.0)
    assert abs(adc.read_uv() - (1500000 + 3 * 59160)) < 2000
    chip.field.set("soil_temp", 35)
    assert abs(adc.read_uv() - (1500000 + 3 * 59160 * 308.15 / 298.15)) < 2000


def npk_request(start=0x1E, count=3, addr=1):
    frame = bytearray((addr, 3, start >> 8, start & 0xFF, 0, count))
    crc = simchip.crc16(frame)
    return bytes(frame + bytes((crc & 0xFF, crc >> 8)))


def npk_exchange(chip, request, wait_ms=60):
    de = machine.Pin(23, machine.Pin.OUT, value=1)
    uart = machine.UART(2, baudrate=9600, tx=17, rx=16)
    uart.write(request)
    de.value(0)
    sleep_ms(wait_ms)
    return uart.read()


def test_npk_probe_answers_a_real_modbus_frame_with_16_bit_values():
    chip = fresh()
    chip.field.set("n", 38)
    chip.field.set("p", 15)
    chip.field.set("k", 300)  # above 255: needs both bytes
    reply = npk_exchange(chip, npk_request())
    assert reply[:3] == b"\x01\x03\x06"
    assert reply[3:9] == b"\x00\x26\x00\x0f\x01\x2c"
    crc = simchip.crc16(reply[:-2])
    assert reply[-2:] == bytes((crc & 0xFF, crc >> 8))


def test_npk_probe_is_silent_when_de_is_not_driven_or_crc_is_wrong():
    chip = fresh()
    uart = machine.UART(2, baudrate=9600)
    uart.write(npk_request())  # DE low: the transceiver never put it on the bus
    sleep_ms(60)
    assert uart.read() is None
    bad = bytearray(npk_request())
    bad[-1] ^= 0xFF
    assert npk_exchange(chip, bytes(bad)) is None


def test_npk_faults_and_modes():
    chip = fresh()
    chip.field.fault("npk", "timeout")
    assert npk_exchange(chip, npk_request()) is None
    chip.field.fault("npk", "crc")
    reply = npk_exchange(chip, npk_request())
    crc = simchip.crc16(reply[:-2])
    assert reply[-2:] != bytes((crc & 0xFF, crc >> 8))
    chip.field.fault("npk", None)
    assert npk_exchange(chip, npk_request(start=0x99, count=1))[:3] == b"\x01\x83\x02"
    chip.npk.mode = "late"
    assert npk_exchange(chip, npk_request()) is None  # not within 60 ms


def test_dht22_bytes_decode_to_the_field_values():
    chip = fresh()
    chip.field.set("temp", -3.4)
    chip.field.set("humidity", 55.5)
    sensor = dht.DHT22(machine.Pin(4))
    sensor.measure()
    assert abs(sensor.temperature() - -3.4) <= 0.15 and abs(sensor.humidity() - 55.5) <= 0.5
    assert sensor.buf[2] & 0x80  # the sign bit
    small = dht.DHT11(machine.Pin(4))
    chip.field.set("temp", 21.4)
    small.measure()
    assert small.temperature() == 21 and isinstance(small.humidity(), int)


def test_dht_fails_the_way_the_real_driver_does():
    chip = fresh()
    sensor = dht.DHT22(machine.Pin(4))
    chip.field.fault("dht", "timeout")
    assert raises(OSError, sensor.measure).args[0] == errno.ETIMEDOUT
    chip.field.fault("dht", "crc")
    assert str(raises(Exception, sensor.measure)) == "checksum error"
    chip.field.fault("dht", None)
    assert raises(OSError, dht.DHT22(machine.Pin(5)).measure).args[0] == errno.ETIMEDOUT  # nothing wired


def test_a_dht_measure_holds_the_caller_as_the_c_driver_does_answer_or_not():
    chip = fresh()
    sensor = dht.DHT22(machine.Pin(4))
    for fault in (None, "timeout", "crc"):
        chip.field.fault("dht", fault)
        started = ticks_ms()
        try:
            sensor.measure()
        except Exception:  # the faults raise: the time is what is checked here
            pass
        assert ticks_diff(ticks_ms(), started) >= dht.START_MS == 268, fault
    started = ticks_ms()
    raises(OSError, dht.DHT22(machine.Pin(5)).measure)  # nothing wired: the start pulse still goes out
    assert ticks_diff(ticks_ms(), started) >= 268
    chip.field.fault("dht", None)
    held = []
    chip.on_hold = held.append  # a process of several boards charges the board, not the process
    started = ticks_ms()
    sensor.measure()
    assert held == [268, 4] and ticks_diff(ticks_ms(), started) < 268


def test_anemometer_edges_arrive_through_the_irq_at_the_wind_rate():
    chip = fresh()
    chip.field.set("wind_speed", 24.0)  # 10 Hz at 2.4 km/h per Hz
    count = [0]

    def on_edge(pin):
        count[0] += 1

    pin = machine.Pin(27, machine.Pin.IN, machine.Pin.PULL_UP)
    pin.irq(handler=on_edge, trigger=machine.Pin.IRQ_FALLING)
    started = ticks_ms()
    while ticks_diff(ticks_ms(), started) < 1000:
        sleep_ms(5)  # scheduled IRQs run between bytecodes, as on the ESP32
    pin.irq(handler=None)
    assert 7 <= count[0] <= 12, count[0]
    chip.close()


def test_synchronous_pulses_for_driver_tests():
    chip = fresh()
    hits = []
    pin = machine.Pin(13, machine.Pin.IN, machine.Pin.PULL_UP)
    pin.irq(handler=hits.append, trigger=machine.Pin.IRQ_FALLING)
    chip.pulse(13, 3, 10)
    assert hits == [pin, pin, pin]


def test_i2c_missing_device_is_enodev_and_ezo_circuit_answers():
    chip = simchip.new_chip(Field(), wiring={"ph": {"bus": "i2c"}})
    chip.field.set("ph", 6.5)
    i2c = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21))
    assert i2c.scan() == [0x63]
    assert raises(OSError, i2c.writeto, 0x64, b"R").args[0] == 19
    i2c.writeto(0x63, b"R")
    assert i2c.readfrom(0x63, 1) == b"\xfe"  # still processing
    sleep_ms(950)
    reply = i2c.readfrom(0x63, 10)
    assert reply[0] == 1 and reply[1:6] == b"6.500"
    i2c.writeto(0x63, b"Bogus")
    sleep_ms(950)
    assert i2c.readfrom(0x63, 1) == b"\x02"  # syntax error
    chip.field.fault("ph", "unplugged")
    assert i2c.scan() == []


def test_uart_read_honours_its_timeout():
    fresh()
    uart = machine.UART(1, baudrate=9600, timeout=80)
    started = ticks_ms()
    assert uart.read(4) is None
    assert 80 <= ticks_diff(ticks_ms(), started) < 300
    raises(ValueError, machine.UART, 3)


def test_wdt_rtc_reset_freq_and_identity():
    chip = fresh()
    wdt = machine.WDT(timeout=100)
    wdt.feed()
    assert not machine.wdt_expired()
    sleep_ms(150)
    assert machine.wdt_expired()
    wdt.feed()
    assert not machine.wdt_expired() and chip.wdt_feeds == 2
    rtc = machine.RTC()
    assert rtc.datetime()[0] == 2000  # never set since power-on
    rtc.datetime((2026, 3, 1, 0, 12, 30, 0, 0))
    assert rtc.datetime()[:3] == (2026, 3, 1) and rtc.datetime()[4:6] == (12, 30)
    rtc.memory(b"boots=3")
    assert rtc.memory() == b"boots=3"
    raises(ValueError, rtc.memory, b"x" * 2049)
    assert machine.reset_cause() == machine.PWRON_RESET
    assert raises(machine.ResetRequested, machine.reset).kind == "hard"
    assert raises(SystemExit, machine.deepsleep, 1000).sleep_ms == 1000
    assert machine.unique_id() == chip.mac and len(machine.unique_id()) == 6
    machine.freq(240000000)
    assert machine.freq() == 240000000
    raises(ValueError, machine.freq, 100000000)


def test_timer_callback_is_scheduled():
    chip = fresh()
    fired = []
    timer = machine.Timer(0)
    timer.init(mode=machine.Timer.PERIODIC, period=20, callback=fired.append)
    started = ticks_ms()
    while ticks_diff(ticks_ms(), started) < 200:
        sleep_ms(5)
    timer.deinit()
    assert 4 <= len(fired) <= 12
    chip.close()


def test_wlan_connects_reports_rssi_and_loses_the_ap():
    chip = fresh()
    wlan = network.WLAN(network.STA_IF)
    assert str(raises(OSError, wlan.connect, "farm", "farmpass")) == "Wifi Not Started"
    wlan.active(True)
    wlan.connect("farm", "farmpass")
    assert wlan.status() == network.STAT_CONNECTING and not wlan.isconnected()
    sleep_ms(350)
    assert wlan.isconnected() and wlan.status("rssi") == -62
    assert wlan.config("mac") == chip.mac
    assert wlan.ifconfig()[0] != "0.0.0.0"
    raises(ValueError, wlan.config, "rssi")  # the esp32 port has it under status()
    chip.ap["up"] = False
    assert not wlan.isconnected() and wlan.status() == network.STAT_BEACON_TIMEOUT


def test_wlan_wrong_password_and_missing_ap():
    fresh()
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    wlan.connect("farm", "nope")
    sleep_ms(350)
    assert wlan.status() == network.STAT_WRONG_PASSWORD
    wlan.connect("other", "farmpass")
    sleep_ms(350)
    assert wlan.status() == network.STAT_NO_AP_FOUND


def test_ntptime_needs_the_network_then_sets_the_rtc():
    fresh()
    raises(OSError, ntptime.settime)
    network.WLAN(network.STA_IF).active(True)
    ntptime.settime()
    assert machine.RTC().datetime()[0] >= 2026


def test_nvs_keeps_committed_values_on_the_chip():
    fresh()
    nvs = esp32.NVS("farmnode")
    nvs.set_i32("boots", 3)
    raises(OSError, esp32.NVS("farmnode").get_i32, "boots")  # not committed yet
    nvs.commit()
    assert esp32.NVS("farmnode").get_i32("boots") == 3
    nvs.set_blob("cal", b"\x01\x02")
    nvs.commit()
    buf = bytearray(4)
    assert nvs.get_blob("cal", buf) == 2 and buf[:2] == b"\x01\x02"


def test_pin_and_adc_objects_are_static_as_on_an_esp32():
    # ports/esp32 keeps them in flash: Pin(n) and ADC(pin) give the same object each
    # time, initialised again, so the heap a benchmark charges the firmware holds none.
    simchip.new_chip()
    relay = machine.Pin(26)
    assert machine.Pin(26, machine.Pin.OUT) is relay and relay.id == 26
    relay.value(1)
    assert machine.Pin(26).value() == 1  # the same pin, as it was left
    adc = machine.ADC(machine.Pin(34), atten=machine.ADC.ATTN_11DB)
    assert machine.ADC(34) is adc and adc._atten == machine.ADC.ATTN_11DB  # kept when not given
    assert machine.ADC(34, atten=machine.ADC.ATTN_0DB)._atten == machine.ADC.ATTN_0DB
    assert machine.Pin(25) is not relay
    simchip.new_chip()  # another board: its own
    assert machine.Pin(26) is not relay


def battery_chip(**battery):
    return simchip.new_chip(Field(), wiring=simchip.wiring_from_config({"sensors": {"battery": battery}}))


def test_a_fitted_batterys_divider_puts_its_share_of_the_cell_on_its_pin():
    chip = battery_chip(enabled=True, pin=33, ratio=2.0)
    chip.field.set("battery_v", 4.0)
    adc = machine.ADC(machine.Pin(33), atten=machine.ADC.ATTN_11DB)
    assert abs(adc.read_uv() - 2000000) < 5000, adc.read_uv()
    assert 33 in simchip.wired_gpios(chip.wiring)
    chip.field.fault("battery", "unplugged")  # the lower resistor pulls the pin to ground
    assert adc.read_uv() < 50000
    chip = battery_chip(enabled=True, pin=33, ratio=3.0)
    chip.field.set("battery_v", 3.6)
    assert abs(machine.ADC(machine.Pin(33), atten=machine.ADC.ATTN_11DB).read_uv() - 1200000) < 5000


def test_a_battery_not_fitted_is_not_wired():
    chip = battery_chip(enabled=False)  # on pin 39 by default
    chip.field.set("battery_v", 4.0)
    assert machine.ADC(machine.Pin(39), atten=machine.ADC.ATTN_11DB).read_uv() < 50000  # an open input
    assert 39 not in simchip.wired_gpios(chip.wiring)
    chip = battery_chip(enabled=True)
    chip.field.set("battery_v", 4.0)
    assert abs(machine.ADC(machine.Pin(39), atten=machine.ADC.ATTN_11DB).read_uv() - 2000000) < 5000
    assert 39 in simchip.wired_gpios(chip.wiring)
    chip = battery_chip(enabled=True, pin=35)  # fitted on EC's pin: the battery is what it reads
    chip.field.set("battery_v", 4.0)
    assert abs(machine.ADC(machine.Pin(35), atten=machine.ADC.ATTN_11DB).read_uv() - 2000000) < 5000
