"""An ESP32-family chip in its ROM serial bootloader ("download mode"), emulated well
enough for the real esptool to detect the chip, upload and start its stub flasher, erase,
write (plain or compressed), verify by MD5 and make the chip leave. The flash is a file.

The owner of a serial line (a pseudo-terminal, in tests or `farmctl vdev`) hands it the
bytes the host sends and writes back what `feed` returns:

    loader = RomLoader("flash.bin", chip="esp32", flash_size=4 << 20)
    if RomLoader.is_sync(data):       # esptool is looking for a ROM loader
        reply = loader.feed(data)     # ... and every later byte, until
    loader.done                       # the chip left download mode to run its firmware

Facts come from Espressif's documentation of the serial protocol (docs.espressif.com,
esptool, "Serial Protocol"), the stub flasher's error codes, and the chips' register and
eFuse maps. What is emulated:
- SLIP framing; responses echo the command with a value and status bytes (four from a
  ROM, two from the stub); unknown commands get the ROM's "invalid message" error.
- SYNC, READ_REG and WRITE_REG on a register file: the chip-detect magic word (ESP32),
  eFuses (package, revision, MAC), the UART clock divider; GET_SECURITY_INFO with the
  chip id on chips whose ROM has it.
- SPI flash commands run through the SPI peripheral's registers: RDID (a JEDEC id that
  gives the flash size), SFDP reads, status reads; others are accepted and do nothing.
- RAM download (MEM_*): nothing is executed. Code started by MEM_END is taken to be
  esptool's stub flasher: it greets with OHAI and from then on answers the stub's way.
- FLASH_BEGIN/DATA/END and the compressed variants, the stub's ERASE_FLASH and
  ERASE_REGION, SPI_FLASH_MD5. Programming flash only clears bits, as on NOR flash, so
  data written over unerased flash comes out corrupt, as on the real chip.
- Leaving: the ROM's FLASH_END "run user code" sets `done`. A software reboot (the ROM's
  or the stub's FLASH_END "reboot") comes back to the ROM loader: boot straps are only
  latched at a chip reset, which a hard reset (the EN pin, RTS) would be; the owner sees
  that, not this class."""
import hashlib
import os
import struct
import zlib
from collections import namedtuple

# Commands (request byte 1).
FLASH_BEGIN, FLASH_DATA, FLASH_END = 0x02, 0x03, 0x04
MEM_BEGIN, MEM_END, MEM_DATA = 0x05, 0x06, 0x07
SYNC, WRITE_REG, READ_REG = 0x08, 0x09, 0x0A
SPI_SET_PARAMS, SPI_ATTACH, CHANGE_BAUDRATE = 0x0B, 0x0D, 0x0F
FLASH_DEFL_BEGIN, FLASH_DEFL_DATA, FLASH_DEFL_END = 0x10, 0x11, 0x12
SPI_FLASH_MD5, GET_SECURITY_INFO = 0x13, 0x14
ERASE_FLASH, ERASE_REGION = 0xD0, 0xD1  # stub only

SLIP_END, SLIP_ESC = b"\xc0", b"\xdb"
SYNC_DATA = b"\x07\x07\x12\x20" + b"\x55" * 32
ROM_SYNC_VALUE = 0x55552007  # what a real ESP32 ROM puts in its SYNC responses
SYNC_RESPONSES = 8  # the ROM answers one SYNC eight times; esptool reads them all
CHECKSUM_SEED = 0xEF
OHAI = b"OHAI"  # the stub flasher's greeting once it runs
SECTOR = 0x1000

# Errors as (ROM error, stub error); the ROM sends status 1 then its error, the stub
# sends its error alone.
INVALID = (0x05, 0xC0)  # "received message is invalid" / bad data length
BAD_CHECKSUM = (0x07, 0xC1)
FAILED = (0x06, 0xC4)  # "failed to act on received message" / failed SPI operation
NOT_WRITING = (0x06, 0xC6)  # a data block without a begin
INFLATE_ERROR = (0x0B, 0xC7)
TOO_MUCH_DATA = (0x06, 0xC9)
STUB_NOT_IMPLEMENTED = 0xFF

# SPI flash: the command and address registers (offsets), the command register's "run the
# user command" bit, and the commands esptool runs through them.
SPI_CMD, SPI_ADDR = 0x00, 0x04
SPI_CMD_USR = 1 << 18
SPI_RDID, SPI_RDSFDP = 0x9F, 0x5A
SPI_STATUS_READS = (0x05, 0x35, 0x15)
JEDEC_WINBOND, JEDEC_W25Q = 0xEF, 0x40
# The SFDP header and the JEDEC basic parameter header; what follows reads as erased.
SFDP_TABLE = b"SFDP\x06\x01\x00\xff" + b"\x00\x06\x01\x10\x30\x00\x00\xff"

# Where a chip's SPI0 registers sit: base, and offsets of USR1, USR2, MISO_DLEN, W0;
# addr_msb: the ESP32 sends the address from the register's top bits.
SpiRegs = namedtuple("SpiRegs", "base usr1 usr2 miso_dlen w0 addr_msb")
# chip_id: the one in GET_SECURITY_INFO (None: the ROM has no such command).
Chip = namedtuple("Chip", "name chip_id spi registers")

CHIPS = {
    "esp32": Chip(
        "ESP32", None, SpiRegs(0x3FF42000, 0x20, 0x24, 0x2C, 0x80, True),
        {
            0x40001000: 0x00F01D83,  # the chip-detect magic word in ROM
            0x3FF5A004: 0xC4000001,  # eFuse BLK0 word 1: MAC bytes 2-5
            0x3FF5A008: 0x0000240A,  # word 2: MAC bytes 0-1 -> 24:0a:c4:00:00:01
            # word 3: package D0WD, CPU rated 240 MHz, revision bit 0
            0x3FF5A00C: (1 << 9) | (1 << 13) | (1 << 15),
            0x3FF5A014: (1 << 20) | (1 << 24),  # word 5: revision bit 1, minor 1
            0x3FF6607C: 1 << 31,  # APB_CTL_DATE: revision bit 2 -> v3.1
            0x3FF40014: 40_000_000 // 115_200,  # UART0 CLKDIV at 115200 Bd: 40 MHz xtal
        }),
    "esp32s3": Chip(
        "ESP32-S3", 9, SpiRegs(0x60002000, 0x1C, 0x20, 0x28, 0x58, False),
        {
            0x60007044: 0xFA000001,  # eFuse BLOCK1 word 0: MAC bytes 2-5
            0x60007048: 0x0000F412,  # word 1: MAC bytes 0-1 -> f4:12:fa:00:00:01
            0x60007050: 2 << 18,  # word 3: package QFN56, minor revision 2 -> v0.2
        }),
    "esp32c3": Chip(
        "ESP32-C3", 5, SpiRegs(0x60002000, 0x1C, 0x20, 0x28, 0x58, False),
        {
            0x60008844: 0x18000001,  # eFuse BLOCK1 word 0: MAC bytes 2-5
            0x60008848: 0x00003485,  # word 1: MAC bytes 0-1 -> 34:85:18:00:00:01
            0x60008850: 4 << 18,  # word 3: package QFN32, minor revision 4 -> v0.4
        }),
}


class CommandFailed(Exception):
    """The chip refuses a command; args[0] is an (ROM error, stub error) pair."""


def checksum(data):
    """The protocol's 8-bit checksum of a data block."""
    state = CHECKSUM_SEED
    for byte in data:
        state ^= byte
    return state


def slip_frame(packet):
    return SLIP_END + packet.replace(SLIP_ESC, b"\xdb\xdd").replace(SLIP_END, b"\xdb\xdc") + SLIP_END


def slip_unescape(body):
    return body.replace(b"\xdb\xdc", SLIP_END).replace(b"\xdb\xdd", SLIP_ESC)


def sectors(start, end):
    """[start, end) widened to whole flash sectors."""
    return start - start % SECTOR, -(-end // SECTOR) * SECTOR


class FlashWrite:
    """A write begun by FLASH_BEGIN or FLASH_DEFL_BEGIN, fed by the data blocks."""

    def __init__(self, offset, end, compressed):
        self.position = offset
        self.end = end
        self.next_seq = 0
        self.inflater = zlib.decompressobj() if compressed else None


class RamLoad:
    """A RAM download begun by MEM_BEGIN."""

    def __init__(self, offset, block_size):
        self.offset, self.block_size = offset, block_size
        self.next_seq = 0


class RomLoader:
    def __init__(self, flash_path, chip="esp32", flash_size=4 << 20):
        if chip not in CHIPS:
            raise ValueError(f"chip {chip!r}: one of {', '.join(CHIPS)}")
        if flash_size & (flash_size - 1) or not (1 << 18) <= flash_size <= (1 << 26):
            raise ValueError(f"flash size {flash_size}: a power of two, 256 KiB to 64 MiB")
        self.chip = CHIPS[chip]
        self.flash_path = flash_path
        self.flash_size = flash_size
        self._create_flash()
        self.done = False
        self._received = b""  # bytes after the last frame delimiter
        self._framing = False  # False until the first delimiter: what comes before is noise
        self._reboot()

    @staticmethod
    def is_sync(data):
        """Does data start with a SYNC command frame, a host looking for a ROM loader?"""
        header = SLIP_END + struct.pack("<BBH", 0, SYNC, len(SYNC_DATA))
        return data.startswith(header) and data[9:13] == SYNC_DATA[:4]

    def feed(self, data):
        """Take bytes from the host; return the chip's answer."""
        if self.done:
            return b""
        *complete, self._received = (self._received + data).split(SLIP_END)
        out = b""
        for body in complete:
            if self._framing and body and not self.done:
                out += self._answer(slip_unescape(body))
            self._framing = True
        return out

    # --- state ---

    def _create_flash(self):
        if not os.path.exists(self.flash_path):
            with open(self.flash_path, "wb") as f:
                f.write(b"\xff" * self.flash_size)
        elif os.path.getsize(self.flash_path) != self.flash_size:
            raise ValueError(f"{self.flash_path}: {os.path.getsize(self.flash_path)} bytes, "
                             f"not a {self.flash_size}-byte flash")

    def _reboot(self):
        """A reset into the ROM loader: registers, RAM and the stub are gone."""
        self.registers = dict(self.chip.registers)
        self.stub = False
        self._ram = []  # (start, end) of what MEM_DATA filled
        self._ram_load = None
        self._write = None

    def _leave(self):
        self.done = True

    # --- commands ---

    def _answer(self, packet):
        if len(packet) < 8 or packet[0] != 0:
            return b""  # not a request: the loader ignores it
        op, size, check = struct.unpack_from("<BHI", packet, 1)
        data = packet[8:]
        handler = self._handlers().get(op)
        after = []  # what the chip does once its answer is out: callables, maybe returning bytes
        try:
            if handler is None:
                return self._response(op, error=self._not_implemented())
            if size != len(data):
                raise CommandFailed(INVALID)
            value, body = handler(data, check & 0xFF, after)
        except CommandFailed as exc:
            return self._response(op, error=exc.args[0][self.stub])
        out = self._response(op, value, body)
        for action in after:
            out += action() or b""
        return out

    def _not_implemented(self):
        return STUB_NOT_IMPLEMENTED if self.stub else INVALID[0]

    def _handlers(self):
        common = {
            SYNC: self._sync, READ_REG: self._read_reg, WRITE_REG: self._write_reg,
            SPI_SET_PARAMS: self._accept, SPI_ATTACH: self._accept, CHANGE_BAUDRATE: self._accept,
            FLASH_BEGIN: self._flash_begin, FLASH_DATA: self._flash_data,
            FLASH_END: self._flash_end, FLASH_DEFL_BEGIN: self._flash_defl_begin,
            FLASH_DEFL_DATA: self._flash_data, FLASH_DEFL_END: self._flash_defl_end,
            SPI_FLASH_MD5: self._md5,
        }
        if self.chip.chip_id is not None:
            common[GET_SECURITY_INFO] = self._security_info
        if self.stub:
            return {**common, ERASE_FLASH: self._erase_flash, ERASE_REGION: self._erase_region}
        return {**common, MEM_BEGIN: self._mem_begin, MEM_DATA: self._mem_data, MEM_END: self._mem_end}

    def _response(self, op, value=0, body=b"", error=0):
        if self.stub:
            status = bytes((error, 0))
        else:
            status = bytes((1, error, 0, 0)) if error else bytes(4)
        body += status
        return slip_frame(struct.pack("<BBHI", 1, op, len(body), value) + body)

    def _accept(self, data, check, after):
        return 0, b""

    def _sync(self, data, check, after):
        if data != SYNC_DATA:
            raise CommandFailed(INVALID)
        # A running stub answers with value 0: esptool's sign that no upload is needed.
        value = 0 if self.stub else ROM_SYNC_VALUE
        after.append(lambda: self._response(SYNC, value) * (SYNC_RESPONSES - 1))
        return value, b""

    def _read_reg(self, data, check, after):
        (address,) = self._words(data, 1)
        return self.registers.get(address, 0), b""

    def _write_reg(self, data, check, after):
        if not data or len(data) % 16:
            raise CommandFailed(INVALID)
        for address, value, mask, _delay in struct.iter_unpack("<IIII", data):
            old = self.registers.get(address, 0)
            self.registers[address] = (old & ~mask) | (value & mask)
            if address == self.chip.spi.base + SPI_CMD and value & SPI_CMD_USR:
                self._run_spi_command()
        return 0, b""

    def _security_info(self, data, check, after):
        flags, crypt_count, key_purposes, api_version = 0, 0, bytes(7), 0
        return 0, struct.pack("<IB7sII", flags, crypt_count, key_purposes, self.chip.chip_id, api_version)

    # --- RAM download and the stub ---

    def _mem_begin(self, data, check, after):
        _size, _blocks, block_size, offset = self._words(data, 4)
        self._ram_load = RamLoad(offset, block_size)
        return 0, b""

    def _mem_data(self, data, check, after):
        block = self._data_block(data, check, self._ram_load)
        start = self._ram_load.offset + (self._ram_load.next_seq - 1) * self._ram_load.block_size
        self._ram.append((start, start + len(block)))
        return 0, b""

    def _mem_end(self, data, check, after):
        no_run, entry = self._words(data, 2)
        if not no_run and any(start <= entry < end for start, end in self._ram):
            after.append(self._start_stub)
        return 0, b""

    def _start_stub(self):
        self.stub = True  # from here on the code in RAM answers
        return slip_frame(OHAI)

    # --- flash ---

    def _flash_begin(self, data, check, after):
        erase_size, blocks, block_size, offset = self._words(data, 4)
        # The ROM erases what it is told; the stub erases what the blocks will cover.
        size = blocks * block_size if self.stub else erase_size
        self._begin_write(offset, size, offset + blocks * block_size, compressed=False)
        return 0, b""

    def _flash_defl_begin(self, data, check, after):
        # The stub is given the uncompressed size; the ROM that rounded up to blocks.
        size, _blocks, _block_size, offset = self._words(data, 4)
        self._begin_write(offset, size, offset + size, compressed=True)
        return 0, b""

    def _begin_write(self, offset, erase_size, end, compressed):
        if end > self.flash_size:
            raise CommandFailed(FAILED)
        if erase_size:
            self._erase(*sectors(offset, offset + erase_size))
        self._write = FlashWrite(offset, end, compressed)

    def _flash_data(self, data, check, after):
        write = self._write
        if write is None:
            raise CommandFailed(NOT_WRITING)
        block = self._data_block(data, check, write)
        if write.inflater is not None:
            try:
                block = write.inflater.decompress(block)
            except zlib.error:
                raise CommandFailed(INFLATE_ERROR) from None
        if write.position + len(block) > write.end:
            raise CommandFailed(TOO_MUCH_DATA)
        self._program(write.position, block)
        write.position += len(block)
        return 0, b""

    def _data_block(self, data, check, load):
        """The block of a *_DATA command, checked against its header and checksum."""
        if load is None:
            raise CommandFailed(NOT_WRITING)
        size, seq, _, _ = self._words(data[:16], 4)
        block = data[16:]
        if size != len(block) or seq != load.next_seq:
            raise CommandFailed(INVALID)
        if checksum(block) != check:
            raise CommandFailed(BAD_CHECKSUM)
        load.next_seq += 1
        return block

    def _flash_end(self, data, check, after):
        run_user_code = self._flag(data)
        if self.stub and run_user_code:
            self._write = None  # the stub stays, ready for more
        else:
            self._reboot_after(run_user_code, after)
        return 0, b""

    def _flash_defl_end(self, data, check, after):
        if self.stub:
            self._write = None  # the stub never reboots on this one
        else:
            self._reboot_after(self._flag(data), after)
        return 0, b""

    def _reboot_after(self, run_user_code, after):
        """Once the response is out, jump to the firmware or reboot into the ROM loader."""
        after.append(self._leave if run_user_code else self._reboot)

    def _flag(self, data):
        """FLASH_END's word: 0 reboot, 1 run user code (no word: reboot)."""
        return struct.unpack("<I", data[:4])[0] if len(data) >= 4 else 0

    def _md5(self, data, check, after):
        address, size, _, _ = self._words(data, 4)
        if address + size > self.flash_size:
            raise CommandFailed(FAILED)
        digest = hashlib.md5(self._read(address, size))
        # The ROM sends the digest as 32 lowercase hex digits, the stub as 16 bytes.
        return 0, digest.digest() if self.stub else digest.hexdigest().encode()

    def _erase_flash(self, data, check, after):
        self._erase(0, self.flash_size)
        return 0, b""

    def _erase_region(self, data, check, after):
        offset, size = self._words(data, 2)
        if offset % SECTOR or size % SECTOR or offset + size > self.flash_size:
            raise CommandFailed(FAILED)
        self._erase(offset, offset + size)
        return 0, b""

    # --- the SPI peripheral ---

    def _run_spi_command(self):
        spi = self.chip.spi
        self.registers[spi.base + SPI_CMD] &= ~SPI_CMD_USR  # done at once
        command = self.registers.get(spi.base + spi.usr2, 0) & 0xFF
        if command == SPI_RDID:
            reply = JEDEC_WINBOND | JEDEC_W25Q << 8 | (self.flash_size.bit_length() - 1) << 16
        elif command == SPI_RDSFDP:
            reply = self._sfdp_word()
        elif command in SPI_STATUS_READS:
            reply = 0
        else:
            return
        self.registers[spi.base + spi.w0] = reply

    def _sfdp_word(self):
        spi = self.chip.spi
        address = self.registers.get(spi.base + SPI_ADDR, 0)
        if spi.addr_msb:
            address_bits = (self.registers.get(spi.base + spi.usr1, 0) >> 26) + 1
            address >>= 32 - address_bits
        read_bits = self.registers.get(spi.base + spi.miso_dlen, 0) + 1
        table = SFDP_TABLE[address:address + 4].ljust(4, b"\xff")
        return int.from_bytes(table, "little") & ((1 << min(read_bits, 32)) - 1)

    # --- the flash file ---

    def _read(self, address, size):
        with open(self.flash_path, "rb") as f:
            f.seek(address)
            return f.read(size)

    def _program(self, address, data):
        """Write as NOR flash does: bits can only go from 1 to 0."""
        data = data[:max(0, self.flash_size - address)]
        old = self._read(address, len(data))
        merged = int.from_bytes(old, "little") & int.from_bytes(data, "little")
        self._store(address, merged.to_bytes(len(data), "little"))

    def _erase(self, start, end):
        self._store(start, b"\xff" * (end - start))

    def _store(self, address, data):
        with open(self.flash_path, "r+b") as f:
            f.seek(address)
            f.write(data)

    @staticmethod
    def _words(data, count):
        if len(data) < 4 * count:
            raise CommandFailed(INVALID)
        return struct.unpack_from(f"<{count}I", data)
