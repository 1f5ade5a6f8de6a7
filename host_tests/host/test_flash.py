"""`farmctl flash`, with the real esptool, against an emulated ESP32-family chip in
download mode (farmctl.rom_loader) on the far end of a pseudo-terminal."""
import hashlib
import os
import random
import select
import struct
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest

from farmctl.rom_loader import RomLoader

FARMCTL = Path(sys.executable).parent / "farmctl"
FLASH_SIZE = 4 << 20
STUB_BLOCK = 0x4000  # esptool's write block with the stub; the last one goes out 0xFF-padded
IMAGE_CHIP_IDS = {"esp32": 0, "esp32s3": 9, "esp32c3": 5}
OLD_FIRMWARE = 0x5A  # what the flash holds before a test writes to it
RUN_TIMEOUT = 30  # s, for one `farmctl flash`


def esp_image(chip_id, payload, hash_appended=True):
    """A small but valid ESP image: header, extended header with the chip id, a DRAM and an
    IRAM segment holding the payload, the checksum byte ending a 16-byte line, the SHA-256
    if flagged."""
    segments = [(0x3FFB0000, payload[:512]), (0x40080000, payload[512:])]
    flash_mode_dio, size_4mb_freq_40m = 2, 0x20
    image = struct.pack("<BBBBI", 0xE9, len(segments), flash_mode_dio, size_4mb_freq_40m, 0x40080000)
    wp_pin_disabled, max_revision = 0xEE, 0xFFFF
    image += struct.pack("<B3sHBHH4sB", wp_pin_disabled, bytes(3), chip_id, 0, 0, max_revision,
                         bytes(4), int(hash_appended))
    check = 0xEF
    for address, data in segments:
        image += struct.pack("<II", address, len(data)) + data
        for byte in data:
            check ^= byte
    image += bytes(15 - len(image) % 16) + bytes((check,))
    return image + hashlib.sha256(image).digest() if hash_appended else image


def random_payload(size=40_000):
    """Incompressible: esptool then writes it uncompressed (FLASH_DATA) over 16 KiB blocks."""
    return random.Random(size).randbytes(size)


def repetitive_payload(size=40_000):
    """Compressible: esptool writes it deflated (FLASH_DEFL_DATA)."""
    return bytes(range(256)) * (size // 256)


class SerialLine:
    """A pseudo-terminal whose far end is an emulated chip (or, without one, nothing that
    answers); a thread pumps bytes between the master side and the emulation."""

    def __init__(self, loader=None):
        self.loader = loader
        self.received = 0
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # as pyserial will set it: no echo, no newline translation
        self.port = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._pump = threading.Thread(target=self._run, daemon=True)
        self._pump.start()

    def _run(self):
        while not self._stop.is_set():
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            data = os.read(self.master, 1 << 16)
            self.received += len(data)
            if self.loader is not None:
                reply = self.loader.feed(data)
                if reply:
                    os.write(self.master, reply)

    def close(self):
        self._stop.set()
        self._pump.join(5)
        os.close(self.master)
        os.close(self.slave)  # kept open so far: the master reads no EIO between esptool's opens


@pytest.fixture
def serial_line(tmp_path):
    """serial_line(chip, old_flash=...): a pty to an emulated chip with a flash file holding
    old_flash; serial_line(None): a pty where nothing answers."""
    lines = []

    def make(chip, old_flash=bytes((OLD_FIRMWARE,)) * FLASH_SIZE):
        loader = None
        if chip is not None:
            (tmp_path / "flash.bin").write_bytes(old_flash)
            loader = RomLoader(tmp_path / "flash.bin", chip=chip, flash_size=FLASH_SIZE)
        lines.append(SerialLine(loader))
        return lines[-1]

    yield make
    for line in lines:
        line.close()


def farmctl_flash(*args):
    """(exit status, stdout, stderr) of `farmctl flash ARGS`."""
    done = subprocess.run([str(FARMCTL), "flash", *map(str, args)], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done.returncode, done.stdout, done.stderr


def flash_of(tmp_path):
    return (tmp_path / "flash.bin").read_bytes()


def write_image(tmp_path, image, name="firmware.bin"):
    path = tmp_path / name
    path.write_bytes(image)
    return path


def round_up(size, unit):
    return -(-size // unit) * unit


def test_an_esp32_image_lands_at_0x1000_byte_for_byte_and_the_chip_restarts(tmp_path, serial_line):
    line = serial_line("esp32")
    image = esp_image(IMAGE_CHIP_IDS["esp32"], random_payload())
    status, out, err = farmctl_flash("--port", line.port, "--firmware", write_image(tmp_path, image))
    assert status == 0, out + err
    flash = flash_of(tmp_path)
    end = 0x1000 + len(image)
    assert flash[0x1000:end] == image
    # The stub erases as far as it writes: the padding of the last block included.
    erased_end = 0x1000 + round_up(len(image), STUB_BLOCK)
    assert flash[end:erased_end] == b"\xff" * (erased_end - end)
    # Without --erase, the rest is kept: before 0x1000 and after what was written.
    old = bytes((OLD_FIRMWARE,))
    assert flash[:0x1000] == old * 0x1000 and flash[erased_end:] == old * (FLASH_SIZE - erased_end)
    assert "will flash uncompressed" in out and "Writing at" in out, out
    assert "Hash of data verified" in out, out
    assert "ESP32-D0WD-V3 (revision v3.1), MAC 24:0a:c4:00:00:01" in out, out
    assert line.loader.done, "the chip was not restarted into its firmware"


@pytest.mark.parametrize("chip", ["esp32s3", "esp32c3"])
def test_an_s3_or_c3_image_lands_at_0x0_compressed(tmp_path, serial_line, chip):
    line = serial_line(chip)
    image = esp_image(IMAGE_CHIP_IDS[chip], repetitive_payload())
    status, out, err = farmctl_flash("--port", line.port, "--firmware", write_image(tmp_path, image))
    assert status == 0, out + err
    assert flash_of(tmp_path)[:len(image)] == image
    assert "compressed" in out and f"written at 0x0 on the {line.loader.chip.name}" in out, out
    assert line.loader.done


def test_erase_leaves_the_rest_of_the_flash_blank(tmp_path, serial_line):
    line = serial_line("esp32")
    image = esp_image(IMAGE_CHIP_IDS["esp32"], repetitive_payload())
    status, out, err = farmctl_flash("--port", line.port, "--firmware", write_image(tmp_path, image),
                                     "--erase")
    assert status == 0, out + err
    flash = flash_of(tmp_path)
    end = 0x1000 + len(image)
    assert flash[0x1000:end] == image
    assert flash[:0x1000] + flash[end:] == b"\xff" * (FLASH_SIZE - len(image))


def not_an_image(tmp_path):
    return write_image(tmp_path, b"print('hello')\n" * 100, "main.py")


def empty(tmp_path):
    return write_image(tmp_path, b"")


def missing(tmp_path):
    return tmp_path / "nowhere.bin"


def truncated(tmp_path):
    return write_image(tmp_path, esp_image(0, random_payload())[:20_000])


def corrupt(tmp_path):
    image = bytearray(esp_image(0, random_payload()))
    image[5000] ^= 0x01
    return write_image(tmp_path, bytes(image))


@pytest.mark.parametrize("make_file, reason", [
    (not_an_image, "is not an ESP32 firmware image: it starts with 0x70, not the image magic 0xe9"),
    (empty, "is empty"),
    (missing, "No such file or directory"),
    (truncated, "is not an ESP32 firmware image: segment 1 runs past the end of the file"),
    (corrupt, "is not an ESP32 firmware image: its checksum does not match"),
], ids=["not-an-image", "empty", "missing", "truncated", "corrupt"])
def test_a_file_that_is_not_a_firmware_image_is_refused_before_the_port_is_used(
        tmp_path, serial_line, make_file, reason):
    line = serial_line("esp32")
    before = flash_of(tmp_path)
    status, out, err = farmctl_flash("--port", line.port, "--firmware", make_file(tmp_path))
    assert status != 0
    assert err.strip().count("\n") == 0 and reason in err, err
    assert line.received == 0, "farmctl talked to the chip"
    assert flash_of(tmp_path) == before


def test_an_image_for_another_chip_is_refused_and_the_flash_untouched(tmp_path, serial_line):
    line = serial_line("esp32")
    before = flash_of(tmp_path)
    s3_image = write_image(tmp_path, esp_image(IMAGE_CHIP_IDS["esp32s3"], repetitive_payload()))
    status, out, err = farmctl_flash("--port", line.port, "--firmware", s3_image)
    assert status != 0
    assert err.strip() == (f"farmctl flash: {s3_image} is for the ESP32-S3, "
                           f"but the chip on {line.port} is an ESP32"), err
    assert flash_of(tmp_path) == before
    assert line.loader.done, "the chip was left in download mode"


def test_a_port_where_nothing_answers_fails_in_bounded_time(tmp_path, serial_line):
    line = serial_line(None)
    image = write_image(tmp_path, esp_image(0, repetitive_payload()))
    started = time.monotonic()
    status, out, err = farmctl_flash("--port", line.port, "--firmware", image)
    assert status != 0 and time.monotonic() - started < 15
    assert err.strip().count("\n") == 0, err
    assert f"cannot talk to an ESP chip on {line.port}: Failed to connect" in err, err


def test_a_missing_port_is_named(tmp_path):
    image = write_image(tmp_path, esp_image(0, repetitive_payload()))
    status, out, err = farmctl_flash("--port", tmp_path / "ttyUSB9", "--firmware", image)
    assert status != 0
    assert err.strip() == f"farmctl flash: {tmp_path / 'ttyUSB9'}: no such port", err
