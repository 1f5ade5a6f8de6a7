# Soil N, P, K (mg/kg) from an RS485 probe read over Modbus RTU (lib/modbus).
# Register addresses differ between makers; the defaults are the common JXCT probe's.
from modbus_rtu import READ_HOLDING, ModbusError

_MAX_MG_KG = 1999  # the probes' stated range; beyond it the reading is not trustworthy


class NPKProbe:
    name = "npk"
    keys = ("n", "p", "k")

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
            values[self.keys[i]] = None if error else self._values[i]
