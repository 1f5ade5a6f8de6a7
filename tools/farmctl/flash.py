"""`farmctl flash`: write a firmware image (MicroPython's .bin for the chip: bootloader,
partition table and application in one file) to an ESP32-family board's flash.

The file is checked before the port is opened: an ESP image (magic 0xE9, 1 to 16
segments that fit in the file, the checksum byte and, when the header says so, the
SHA-256 digest). esptool then detects the chip, and an image built for another chip
(the chip id in the image's extended header) is refused before anything is written.
The image goes where that chip's ROM looks for the bootloader (esptool's table): 0x1000
on the ESP32 and ESP32-S2, 0x2000 on the ESP32-C5, -P4, -H4 and -S31, 0x0 on the
others (ESP32-S3, -C3, -C6, -C2, -H2...), is verified by MD5, and the chip restarted.

Resets: a USB-serial bridge with the usual auto-reset circuit is put in download mode
with DTR/RTS (--before default-reset) and restarted with RTS. A port without modem
lines (a pseudo-terminal such as farmctl vdev's, a TCP bridge) cannot reset anything:
--before auto (the default) then expects the chip in download mode already (no-reset),
and restarts it through the ROM loader's "run user code" command."""
import argparse
import errno
import fcntl
import hashlib
import os
import struct
import sys
import termios
from collections import namedtuple

IMAGE_MAGIC = 0xE9
MAX_SEGMENTS = 16  # esptool refuses more, too
MAX_IMAGE_SIZE = 16 << 20  # what the ESP32's ROM addresses; MicroPython's images are ~2 MiB
# magic, segment count, flash mode, flash size and frequency, entry point
HEADER = struct.Struct("<BBBBI")
# WP pin, pin drive strengths, chip id, min revision, min/max full revision, reserved,
# hash appended
EXTENDED_HEADER = struct.Struct("<B3sHBHH4sB")
SEGMENT_HEADER = struct.Struct("<II")  # load address, length
CHECKSUM_SEED = 0xEF
DIGEST_SIZE = 32
ROM_BAUD = 115200  # the ROM loader's rate; the stub then switches to --baud
DEFAULT_BAUD = 460800
BEFORE_CHOICES = ("auto", "default-reset", "usb-reset", "no-reset")

Image = namedtuple("Image", "path data chip_id")


class FlashError(Exception):
    """Why the firmware was not written, in one line for the user."""


def register(sub):
    parser = sub.add_parser("flash", help="write a firmware image to an ESP32 board's flash",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", required=True, help="serial port (e.g. /dev/ttyUSB0, or a vdev's link)")
    parser.add_argument("--firmware", required=True, metavar="FILE.bin", help="the firmware image")
    parser.add_argument("--erase", action="store_true",
                        help="erase the whole flash first (the filesystem and config too)")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                        help=f"baud rate while writing (default {DEFAULT_BAUD})")
    parser.add_argument("--before", choices=BEFORE_CHOICES, default="auto",
                        help="how to get the chip into download mode (default auto: default-reset "
                             "on a port with DTR/RTS, no-reset on one without)")
    parser.set_defaults(run=run)


def run(args):
    try:
        flash(args, read_image(args.firmware))
    except FlashError as exc:
        print(f"farmctl flash: {exc}", file=sys.stderr)
        return 1
    return 0


# --- the image, before touching the device ---

def read_image(path):
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_IMAGE_SIZE + 1)
    except OSError as exc:
        raise FlashError(f"{path}: {exc.strerror}") from None
    if not data:
        raise FlashError(f"{path} is empty")
    if len(data) > MAX_IMAGE_SIZE:
        raise FlashError(f"{path} is over {MAX_IMAGE_SIZE >> 20} MiB, too big for a firmware image")
    problem = image_problem(data)
    if problem:
        raise FlashError(f"{path} is not an ESP32 firmware image: {problem}")
    chip_id = EXTENDED_HEADER.unpack_from(data, HEADER.size)[2]
    return Image(path, data, chip_id)


def image_problem(data):
    """What makes data not an ESP image, or None."""
    if len(data) < HEADER.size + EXTENDED_HEADER.size:
        return f"{len(data)} bytes, too short for an image header"
    magic, segments = HEADER.unpack_from(data)[:2]
    if magic != IMAGE_MAGIC:
        return f"it starts with 0x{magic:02x}, not the image magic 0x{IMAGE_MAGIC:02x}"
    if not 1 <= segments <= MAX_SEGMENTS:
        return f"its header counts {segments} segments (an image has 1 to {MAX_SEGMENTS})"
    hash_appended = EXTENDED_HEADER.unpack_from(data, HEADER.size)[-1]
    if hash_appended not in (0, 1):
        return f"its extended header's hash flag is {hash_appended}, not 0 or 1"
    try:
        end, check = walk_segments(data, segments)
    except ValueError as exc:
        return str(exc)
    checksum_at = end | 15  # the checksum byte ends a 16-byte line
    if checksum_at >= len(data) or data[checksum_at] != check:
        return "its checksum does not match (corrupt or truncated)"
    digest = data[checksum_at + 1:checksum_at + 1 + DIGEST_SIZE]
    if hash_appended and hashlib.sha256(data[:checksum_at + 1]).digest() != digest:
        return "its SHA-256 digest does not match (corrupt or truncated)"
    return None


def walk_segments(data, count):
    """(where the segments end, the checksum of their data)."""
    position, check = HEADER.size + EXTENDED_HEADER.size, CHECKSUM_SEED
    for number in range(count):
        try:
            length = SEGMENT_HEADER.unpack_from(data, position)[1]
        except struct.error:
            raise ValueError(f"segment {number}'s header is cut off") from None
        position += SEGMENT_HEADER.size
        if position + length > len(data):
            raise ValueError(f"segment {number} runs past the end of the file")
        for byte in data[position:position + length]:
            check ^= byte
        position += length
    return position, check


# --- the device ---

def flash(args, image):
    from esptool.cmds import attach_flash, detect_chip, run_stub, write_flash
    from esptool.util import FatalError
    from serial import SerialException

    lines = has_modem_lines(args.port)
    before = args.before if args.before != "auto" else "default-reset" if lines else "no-reset"
    if not lines:
        print(f"{args.port} has no DTR/RTS lines to reset the chip: it must be in download mode already")
    try:
        rom = detect_chip(args.port, min(ROM_BAUD, args.baud), before)
    except (FatalError, SerialException, OSError) as exc:
        raise FlashError(f"cannot talk to an ESP chip on {args.port}: {one_line(exc)}") from None
    esp = rom
    try:
        print_chip(rom)
        check_chip(rom, image, args.port)
        esp = run_stub(rom)
        if args.baud > ROM_BAUD:
            esp.change_baud(args.baud)
        attach_flash(esp)
        write_flash(esp, [(rom.BOOTLOADER_FLASH_OFFSET, image.data)], erase_all=args.erase)
    except (FatalError, SerialException, OSError) as exc:
        raise FlashError(one_line(exc)) from None
    finally:
        restart(rom, esp, lines)
        rom._port.close()
    print(f"{image.path} written at {rom.BOOTLOADER_FLASH_OFFSET:#x} on the {rom.CHIP_NAME}")


def has_modem_lines(port):
    """Can the port drive DTR/RTS, which reset the chip? A pseudo-terminal cannot."""
    if "://" in port:
        return port.startswith("rfc2217://")  # pyserial URLs: only RFC 2217 carries the lines
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FlashError(f"{port}: no such port") from None
    except OSError as exc:
        raise FlashError(f"{port}: {exc.strerror}") from None
    try:
        fcntl.ioctl(fd, termios.TIOCMGET, bytes(4))
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL):
            return False
        raise FlashError(f"{port}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return True


def print_chip(esp):
    mac = ":".join(f"{byte:02x}" for byte in esp.read_mac())
    print(f"Chip: {esp.get_chip_description()}, MAC {mac}")


def check_chip(esp, image, port):
    if image.chip_id != esp.IMAGE_CHIP_ID:
        raise FlashError(f"{image.path} is for the {chip_name(image.chip_id)}, "
                         f"but the chip on {port} is an {esp.CHIP_NAME}")


def chip_name(chip_id):
    from esptool.targets import ROM_LIST

    names = {rom.IMAGE_CHIP_ID: rom.CHIP_NAME for rom in ROM_LIST}
    return names.get(chip_id, f"chip id {chip_id} (unknown to esptool)")


def restart(rom, esp, lines):
    """Out of download mode, into the firmware. Never raises: the flash is written (or
    was not touched) whatever happens here."""
    from esptool.util import FatalError
    from serial import SerialException

    try:
        if lines:
            esp.hard_reset()  # RTS pulses EN
        else:
            run_user_code(rom, esp)
    except (FatalError, SerialException, OSError) as exc:
        print(f"farmctl flash: could not restart the chip ({one_line(exc)}): reset it by hand",
              file=sys.stderr)


def run_user_code(rom, esp):
    """The ROM loader's FLASH_END "run user code": boots the firmware without a reset."""
    print("Restarting the chip through its ROM loader...")
    if esp.IS_STUB:
        esp.soft_reset(True)  # the stub reboots into the ROM loader ...
        rom._port.baudrate = ROM_BAUD  # ... which talks at its boot rate
        rom.connect("no-reset", detecting=True, warnings=False)
    rom.run()


def one_line(exc):
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
