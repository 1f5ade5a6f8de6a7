# Stand-in for the ESP32 port's esp32 module: what a firmware uses of it.
import simchip

WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True


class NVS:
    """Non-volatile storage, one namespace, kept on the chip (survives a soft reset)."""

    def __init__(self, namespace):
        self._store = simchip.chip().nvs.setdefault(namespace, {})
        self._pending = {}

    def set_i32(self, key, value):
        self._pending[key] = int(value)

    def get_i32(self, key):
        if key not in self._store or not isinstance(self._store[key], int):
            raise OSError(-4354)  # ESP_ERR_NVS_NOT_FOUND
        return self._store[key]

    def set_blob(self, key, value):
        self._pending[key] = bytes(value)

    def get_blob(self, key, buffer):
        if key not in self._store or isinstance(self._store[key], int):
            raise OSError(-4354)
        data = self._store[key]
        buffer[: len(data)] = data
        return len(data)

    def erase_key(self, key):
        if key not in self._store and key not in self._pending:
            raise OSError(-4354)
        self._store.pop(key, None)
        self._pending.pop(key, None)

    def commit(self):
        self._store.update(self._pending)
        self._pending = {}


def raw_temperature():
    return 128  # Fahrenheit, as the chip's uncalibrated sensor reports


def mcu_temperature():
    return 53


def wake_on_ext0(pin, level):
    simchip.chip().wake_pin = (pin, level)


def idf_heap_info(capabilities):
    return [(240000, 120000, 60000, 100000)]


HEAP_DATA = 4
HEAP_EXEC = 1
