# Stand-in for the onewire module of MicroPython's ESP32 image (OneWire(pin) over its C
# _onewire time slots), with the same methods. Each slot goes to the device the
# simulated board has on the pin (simchip.DS18B20), or to nothing: then the pull-up
# answers, reads are 1 and a reset sees no presence pulse. Bytes go least significant
# bit first, as on the wire, so what the firmware's driver writes and reads is checked
# by the device model bit by bit.
import simchip


class OneWireError(Exception):
    pass


class OneWire:
    SEARCH_ROM = 0xF0
    MATCH_ROM = 0x55
    SKIP_ROM = 0xCC

    def __init__(self, pin):
        pin.init(pin.OPEN_DRAIN, pin.PULL_UP)  # as the real one does: refused on GPIO 34-39
        self.pin = pin

    def _device(self):
        return simchip.chip().onewire_device(self.pin.id)

    def reset(self, required=False):
        device = self._device()
        present = device is not None and device.reset()
        if required and not present:
            raise OneWireError
        return present

    def readbit(self):
        device = self._device()
        return 1 if device is None else device.read_bit()

    def readbyte(self):
        value = 0
        for n in range(8):
            value |= self.readbit() << n
        return value

    def readinto(self, buf):
        for i in range(len(buf)):
            buf[i] = self.readbyte()

    def writebit(self, value):
        device = self._device()
        if device is not None:
            device.write_bit(1 if value else 0)

    def writebyte(self, value):
        for n in range(8):
            self.writebit((value >> n) & 1)

    def write(self, buf):
        for byte in buf:
            self.writebyte(byte)

    def select_rom(self, rom):
        self.reset()
        self.writebyte(self.MATCH_ROM)
        self.write(rom)

    def scan(self):
        """The ROM codes of the devices on the bus (Search ROM, one pass per device):
        where devices disagree on a bit (a 0 and its complement both read 0) a pass takes
        the 0 branch first and the next pass the 1 branch."""
        found = []
        rom = bytearray(8)
        branch = -1  # the bit where the next pass takes 1 instead of 0
        while self.reset():
            self.writebyte(self.SEARCH_ROM)
            zero_taken = -1
            for n in range(64):
                bit = self.readbit()
                complement = self.readbit()
                if bit and complement:
                    return found  # nobody answers
                if bit == complement:  # both 0: devices differ here
                    if n < branch:
                        bit = (rom[n >> 3] >> (n & 7)) & 1  # as in the pass before
                    else:
                        bit = 1 if n == branch else 0
                    if not bit:
                        zero_taken = n
                if bit:
                    rom[n >> 3] |= 1 << (n & 7)
                else:
                    rom[n >> 3] &= ~(1 << (n & 7))
                self.writebit(bit)
            found.append(bytes(rom))
            if zero_taken < 0:
                break
            branch = zero_taken
        return found

    def crc8(self, data):
        return simchip.crc8(data)
