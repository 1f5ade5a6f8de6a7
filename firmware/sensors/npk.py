# Soil N, P, K (mg/kg) from an RS485 probe read over Modbus RTU (lib/modbus).
# Register addresses differ between makers; the defaults are the common JXCT probe's.
from firmware.sensors import Sensor
from micropython import const
from modbus_rtu import READ_HOLDING, ModbusError

NAME = "npk"
KEYS = ("n", "p", "k")
UNITS = ("mg/kg", "mg/kg", "mg/kg")
DECIMALS = (0, 0, 0)  # the resolution published: places after the point
RULES = (("uart", (1, 2)),  # UART0 is the REPL
         ("tx", "gpio_out"), ("rx", "gpio"), ("de", "gpio_out"), ("baud", (2400, 4800, 9600, 19200)),
         ("addr", (1, 247)), ("reg_n", (0, 0xFFFF)), ("reg_p", (0, 0xFFFF)), ("reg_k", (0, 0xFFFF)),
         ("timeout_ms", (50, 5000)))

_MAX_MG_KG = const(1999)  # the probes' stated range; beyond it the reading is not trustworthy


SETTINGS = (("enabled", True), ("uart", 2), ("tx", 17), ("rx", 16), ("de", 23), ("baud", 9600),
            ("addr", 1), ("reg_n", 0x1E), ("reg_p", 0x1F), ("reg_k", 0x20), ("timeout_ms", 500))


def build(spec, hw):
    from modbus_rtu import ModbusRTU

    uart = hw.uart(spec["uart"], spec["baud"], spec["tx"], spec["rx"])
    de = hw.output(spec["de"], 0)  # the RS485 driver's enable: receive until a request goes out
    bus = ModbusRTU(uart, de, spec["baud"], spec["timeout_ms"])
    return NPKProbe(bus, spec["addr"], spec["reg_n"], spec["reg_p"], spec["reg_k"])


class NPKProbe(Sensor):
    name = NAME
    keys = KEYS
    decimals = DECIMALS

    def __init__(self, modbus, addr=1, reg_n=0x1E, reg_p=0x1F, reg_k=0x20):
        self._modbus = modbus
        self._addr = addr
        self._registers = (reg_n, reg_p, reg_k)
        self._values = [0, 0, 0]
        self._one = [0]
        # Adjacent registers come in one request; otherwise one request each.
        self._adjacent = reg_p == reg_n + 1 and reg_k == reg_n + 2

    def _read_steps(self):
        values = self._values
        if self._adjacent:
            yield from self._modbus.read_steps(self._addr, READ_HOLDING, self._registers[0], 3, values)
            return
        for i in range(3):
            yield from self._modbus.read_steps(self._addr, READ_HOLDING, self._registers[i], 1, self._one)
            values[i] = self._one[0]

    def read_steps(self, values, errors):
        try:
            yield from self._read_steps()
        except ModbusError as exc:
            error = exc.reason
        else:
            error = "range" if max(self._values) > _MAX_MG_KG else None
        if error:
            errors["npk"] = error
        for i in range(3):
            values[KEYS[i]] = None if error else self._values[i]
