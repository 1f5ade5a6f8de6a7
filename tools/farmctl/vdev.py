"""`farmctl vdev`: a virtual ESP32 on a pseudo-terminal. The serial line behaves like a
MicroPython board's USB port: the friendly REPL, paste mode, the raw REPL and raw-paste
protocols, Ctrl-C, Ctrl-D soft reboot (boot.py, then main.py), machine.reset(). Code
runs in a MicroPython unix process (farmsim/harness/vdev_device.py) on the hardware stubs,
with a local folder as its filesystem; each boot is a fresh process, as each reset
gives a fresh heap. RTC memory outlives resets (not power: a new vdev starts cleared).

This module is the host half: it owns the pty and the REPL's protocol, and hands the
device process code to run. Real mpremote and farmctl deploy work against it."""
import argparse
import codeop
import errno
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import tty
from pathlib import Path

from farmctl.rom_loader import RomLoader
from farmctl.stopping import stop_on_signals
from farmsim import HARNESS, STUBS
from farmsim.runtime import HEAP, ROOT, find_micropython

DEVICE_SCRIPT = HARNESS / "vdev_device.py"
BANNER = (b"MicroPython v1.29.0 on 2026-01-01; farmnode vdev (unix port) with ESP32\r\n"
          b'Type "help()" for more information.\r\n')
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
RAW_PASTE_WINDOW = 256
# What the ROM prints after a reset, by machine.reset_cause().
ROM_RESET_LINES = {1: b"rst:0x1 (POWERON_RESET)", 2: b"rst:0x10 (RTCWDT_RTC_RESET)",
                   3: b"rst:0x7 (TG0WDT_SYS_RESET)", 4: b"rst:0x5 (DEEPSLEEP_RESET)",
                   5: b"rst:0xc (SW_CPU_RESET)"}
PANIC_RESET = 2
OUTPUT_KEPT = 65536  # bytes of output kept while no one reads the port  # the process ended without saying why: as a crash (HARD_RESET)
CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"
LONE_NEWLINE = re.compile(rb"(?<!\r)\n")


class DeviceProcess:
    """One boot: the MicroPython process and its pipes (program output, control both ways)."""

    def __init__(self, flash, state, reset_cause, boot_button, heap, node_options):
        to_device_r, self.to_device = os.pipe()
        self.from_device, from_device_w = os.pipe()
        # Its lifeline (farmsim/harness/lifeline.py): if this process dies, the device
        # powers off within seconds instead of running on with no serial line.
        lifeline_r, self.lifeline = os.pipe()
        # The device's own path ("", .frozen, lib of its flash) after the stubs (its built-in
        # modules); the stubs' ticks helper and the harness last.
        path = [str(STUBS), "", ".frozen", "lib", str(ROOT / "lib" / "ticks"), str(HARNESS)]
        env = dict(os.environ, MICROPYPATH=":".join(path))
        argv = [find_micropython(), "-X", f"heapsize={heap}", str(DEVICE_SCRIPT), str(flash),
                "--ctl-in", f"/dev/fd/{to_device_r}", "--ctl-out", f"/dev/fd/{from_device_w}",
                "--reset-cause", str(reset_cause), "--rtc", str(state / "rtc.bin"),
                "--boot-button", "1" if boot_button else "0", "--parent-fd", str(lifeline_r), *node_options]
        self.process = subprocess.Popen(argv, cwd=flash, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        pass_fds=(to_device_r, from_device_w, lifeline_r),
                                        start_new_session=True)
        for fd in (to_device_r, from_device_w, lifeline_r):
            os.close(fd)
        self.output = self.process.stdout.fileno()
        os.set_blocking(self.output, False)
        os.set_blocking(self.from_device, False)
        self._control = b""
        self.executing = False  # between a command's "run" and its "done": SIGINT may go
        self.finished = 0  # the number of the last command done
        self.reset_cause = None  # set by a "reset" message: the next boot's cause

    def send(self, kind, data=b""):
        if isinstance(data, str):
            data = data.encode()
        try:
            os.write(self.to_device, kind + b" %d\n" % len(data) + data)
        except OSError:
            pass  # the process is gone; its end is noticed by the reader

    def messages(self):
        """The complete control messages that have arrived: [(kind, payload)]."""
        try:
            self._control += os.read(self.from_device, 65536)
        except BlockingIOError:
            pass
        out = []
        while b"\n" in self._control:
            header, rest = self._control.split(b"\n", 1)
            kind, size = header.split()
            if len(rest) < int(size):
                break
            out.append((kind, rest[: int(size)]))
            self._control = rest[int(size):]
        return out

    def read_output(self):
        try:
            return os.read(self.output, 65536)
        except BlockingIOError:
            return b""

    def interrupt(self):
        if self.alive() and self.executing:
            self.process.send_signal(signal.SIGINT)

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        if self.alive():
            self.process.kill()
        self.process.wait(10)
        for fd in (self.to_device, self.from_device, self.lifeline):
            try:
                os.close(fd)
            except OSError:
                pass
        self.process.stdout.close()


class VirtualDevice:
    def __init__(self, flash, state=None, heap=HEAP, node_options=()):
        """flash: the device's filesystem (a folder); state: where the RTC memory and the
        BOOT button live (a fresh temporary folder by default: power-on)."""
        self.flash = Path(flash).resolve()
        self.flash.mkdir(parents=True, exist_ok=True)
        self._own_state = state is None
        self.state = Path(tempfile.mkdtemp(prefix="vdev-")) if state is None else Path(state)
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "rtc.bin").unlink(missing_ok=True)  # power-on: RTC memory is lost
        self.heap = heap
        self.node_options = list(node_options)
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # a UART: no echo, no line editing; kept open so reads never EIO
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self._slave)
        self.link = None
        self.device = None
        self.boots = 0
        self._out = b""
        self._mode = "friendly"  # friendly, paste, raw, raw_paste
        self._line = b""  # the friendly REPL's line, or paste/raw input so far
        self._block = b""  # friendly: the lines of an unfinished compound statement
        self._typeahead = b""  # bytes typed while code runs: the REPL reads them after
        self._escape = False
        self._running = None  # what runs: "boot", "main", "single", "paste", "raw"
        self._boot_mode = None  # friendly or raw: what follows boot.py
        self._input = None  # the line being typed for the program's input(), or None
        self._paste_window = 0
        self._interrupt_pending = False
        self.loader = None  # a RomLoader while the chip is in download mode
        self._reset_pressed = False

    # --- lifecycle ---

    def make_link(self, path):
        """A symlink to the pty (as socat's link=), replaced if one is there."""
        path = Path(path)
        if path.is_symlink():
            path.unlink()
        path.symlink_to(self.port)
        self.link = path

    def boot_button_file(self):
        """While this file exists the BOOT button (GPIO0) is held down."""
        return self.state / "boot_button"

    def power_on(self):
        self._hard_reset(1)

    def _start(self, reset_cause, mode):
        if self.device is not None:
            self.device.stop()
        self.boots += 1
        self._reset_cause = reset_cause
        self._typeahead = b""
        self._input = None
        self._interrupt_pending = False
        self.device = DeviceProcess(self.flash, self.state, reset_cause, self.boot_button_file().exists(),
                                    self.heap, self.node_options)
        self._mode = "friendly" if mode == "friendly" else "raw"
        self._boot_mode = mode
        self._line = self._block = b""
        self._run("boot", b"file", b"boot.py")

    def _hard_reset(self, cause):
        self._write(b"\r\nets Jul 29 2019 12:21:46\r\n\r\n" + ROM_RESET_LINES.get(cause, b"rst:0x1")
                    + b",boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n")
        self._start(cause, "friendly")

    def _soft_reset(self, mode):
        self._write(b"MPY: soft reboot\r\n")
        self._start(self._reset_cause, mode)

    def close(self):
        if self.device is not None:
            self.device.stop()
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()
        os.close(self.master)
        os.close(self._slave)
        if self._own_state:
            shutil.rmtree(self.state, ignore_errors=True)

    # --- the event loop ---

    def serve(self, until=None):
        """Pump the serial line and the device until until() is true (or forever)."""
        while until is None or not until():
            self.step(0.05)

    def press_reset(self):
        """The EN button (safe from a signal handler: the reset happens in the next step)."""
        self._reset_pressed = True

    def step(self, timeout_s):
        if self._reset_pressed:
            self._reset_pressed = False
            self._hard_reset(2)
        fds = [self.master]
        device = self.device
        if device is not None:
            fds += [device.output, device.from_device]
        readable, _, _ = select.select(fds, [], [], timeout_s)
        if device is not None and (device.output in readable or not device.alive()):
            self._take_output(device)
        if device is not None and (device.from_device in readable or not device.alive()):
            for kind, data in device.messages():
                self._on_message(kind, data)
        if self.master in readable:
            try:
                data = os.read(self.master, 4096)
            except OSError as exc:  # EIO: no one has the port open
                if exc.errno != errno.EIO:
                    raise
                data = b""
            if data:
                self._on_serial(data)
        if self.device is device and device is not None and not device.alive():
            self._take_output(device)
            self._hard_reset(device.reset_cause or PANIC_RESET)
        self._flush()

    def _write(self, data):
        self._out += data

    def _take_output(self, device):
        """The program's output, with newlines as the device's UART sends them."""
        self._write(LONE_NEWLINE.sub(b"\r\n", device.read_output()))

    def _flush(self):
        while self._out:
            try:
                n = os.write(self.master, self._out)
            except BlockingIOError:
                # No one reads: keep the newest, as a UART with no one listening loses the rest.
                self._out = self._out[-OUTPUT_KEPT:]
                return
            self._out = self._out[n:]

    # --- from the device ---

    def _on_message(self, kind, data):
        device = self.device
        if kind == b"run":
            device.executing = True
            if self._interrupt_pending:
                self._interrupt_pending = False
                device.interrupt()
        elif kind == b"done":
            number, error = data.split(b"\n", 1)
            if int(number) <= device.finished:
                return  # sent again after a late Ctrl-C
            device.finished = int(number)
            device.executing = False
            self._take_output(device)
            self._finished(LONE_NEWLINE.sub(b"\r\n", error))
        elif kind == b"input":
            self._write(data)
            self._input = b""
            self._take_typeahead()
        elif kind == b"reset":
            device.reset_cause = int(data)
            self._take_output(device)
            if device.reset_cause == 0:  # soft: the mode and the reset cause stay
                device.stop()
                self.device = None
                self._soft_reset(self._boot_mode if self._running in ("boot", "main") else
                                 ("raw" if self._mode.startswith("raw") else "friendly"))

    def _finished(self, error):
        running = self._running
        self._running = None
        self._input = None
        if running == "boot":
            self._write(error)
            if self._boot_mode == "friendly":
                self._run("main", b"file", b"main.py")
                return
            self._write(RAW_BANNER)  # raw: boot.py only, then the raw REPL
        elif running == "main":
            self._write(error + b"\r\n" + BANNER + b">>> ")
        elif running in ("single", "paste"):
            self._write(error + b">>> ")
        elif running == "raw":
            self._write(b"\x04" + error + b"\x04>")
        self._take_typeahead()

    def _run(self, running, kind, data):
        self._running = running
        self.device.send(kind, data)

    # --- from the serial line ---

    def _on_serial(self, data):
        if self.loader is not None or RomLoader.is_sync(data):
            self._download_mode(data)
            return
        if self._running is not None and self._input is None:
            for byte in data:
                if bytes((byte,)) == CTRL_C:
                    self._interrupt()
                else:
                    self._typeahead += bytes((byte,))
            return
        self._typeahead += data
        self._take_typeahead()

    def _interrupt(self):
        self._typeahead = b""  # as the port's Ctrl-C clears its input buffer
        if self.device is not None and self.device.executing:
            self.device.interrupt()
        else:
            self._interrupt_pending = True  # the command has not started yet

    def _take_typeahead(self):
        """Feed waiting bytes to the REPL while it is the one reading."""
        while self._typeahead and (self._running is None or self._input is not None):
            byte, self._typeahead = self._typeahead[:1], self._typeahead[1:]
            if self._input is not None:
                self._input_key(byte)
            elif self._mode == "friendly":
                self._friendly_key(byte)
            elif self._mode == "paste":
                self._paste_key(byte)
            elif self._mode == "raw":
                self._raw_key(byte)
            else:
                self._raw_paste_key(byte)
            if self._running is not None and self._input is None:
                for byte in self._typeahead:  # a Ctrl-C already typed interrupts what just started
                    if bytes((byte,)) == CTRL_C:
                        self._interrupt()

    def _input_key(self, byte):
        if byte in (b"\r", b"\n"):
            self._write(b"\r\n")
            line, self._input = self._input, None
            self.device.send(b"line", line)
        elif byte == CTRL_C:
            self._interrupt()
        else:
            self._input = self._edit(self._input, byte)

    def _edit(self, line, byte):
        """Line editing with echo: printable bytes, backspace, escape sequences ignored."""
        if self._escape:
            self._escape = not (byte.isalpha() or byte == b"~")
        elif byte == b"\x1b":
            self._escape = True
        elif byte in (b"\x7f", b"\x08"):
            if line:
                line = line[:-1]
                self._write(b"\x08 \x08")
        elif byte >= b" " or byte == b"\t":
            line += byte
            self._write(byte)
        return line

    def _friendly_key(self, byte):
        if byte in (b"\r", b"\n"):
            self._write(b"\r\n")
            source = self._block + self._line
            self._line = b""
            if not source.strip():
                self._block = b""
                self._write(b">>> ")
            elif self._complete(source):
                self._block = b""
                self._run("single", b"single", source + b"\n")
            else:
                self._block = source + b"\n"
                self._write(b"... ")
        elif byte == CTRL_A:
            self._mode, self._line, self._block = "raw", b"", b""
            self._write(b"\r\n" + RAW_BANNER)
        elif byte == CTRL_B:
            self._line = self._block = b""
            self._write(b"\r\n" + BANNER + b">>> ")
        elif byte == CTRL_C:
            self._line = self._block = b""
            self._write(b"\r\n>>> ")
        elif byte == CTRL_D:
            if not self._line and not self._block:
                self._write(b"\r\n")
                self._soft_reset("friendly")
        elif byte == CTRL_E:
            self._mode, self._line, self._block = "paste", b"", b""
            self._write(b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
        else:
            self._line = self._edit(self._line, byte)

    @staticmethod
    def _complete(source):
        """Is this a whole statement, or does the REPL ask for more ("... ")?"""
        try:
            return codeop.compile_command(source.decode(errors="replace"), "<stdin>", "single") is not None
        except (SyntaxError, ValueError, OverflowError):
            return True  # the device will say what is wrong

    def _paste_key(self, byte):
        if byte == CTRL_C:
            self._mode, self._line = "friendly", b""
            self._write(b"\r\n>>> ")
        elif byte == CTRL_D:
            source, self._mode, self._line = self._line, "friendly", b""
            self._write(b"\r\n")
            self._run("paste", b"exec", source)
        elif byte in (b"\r", b"\n"):
            self._line += b"\n"
            self._write(b"\r\n=== ")
        else:
            self._line += byte
            self._write(byte)

    def _raw_key(self, byte):
        if byte == CTRL_D:
            if self._line == b"":
                self._soft_reset("raw")
                return
            source, self._line = self._line, b""
            self._write(b"OK")
            self._run("raw", b"exec", source)
        elif byte == CTRL_A:
            self._line = b""
            self._write(b"\r\n" + RAW_BANNER)
        elif byte == CTRL_B:
            self._mode, self._line = "friendly", b""
            self._write(b"\r\n" + BANNER + b">>> ")
        elif byte == CTRL_C:
            self._line = b""
        elif byte == CTRL_E and self._line == b"":
            self._mode = "raw_paste_request"
        else:
            self._line += byte

    def _raw_paste_key(self, byte):
        if self._mode == "raw_paste_request":  # Ctrl-E then "A\x01" asks for raw-paste
            self._line += byte
            if self._line == b"A":
                return
            self._line = b""
            if byte == CTRL_A:
                self._mode = "raw_paste"
                self._paste_window = RAW_PASTE_WINDOW
                self._write(b"R\x01" + struct.pack("<H", RAW_PASTE_WINDOW))
            else:
                self._mode = "raw"
            return
        if byte == CTRL_D:  # end of the code: acknowledged, then run as in the raw REPL
            source, self._line, self._mode = self._line, b"", "raw"
            self._write(b"\x04")
            self._run("raw", b"exec", source)
            return
        self._line += byte
        self._paste_window -= 1
        if self._paste_window == 0:
            self._paste_window = RAW_PASTE_WINDOW
            self._write(b"\x01")  # room for another window

    # --- download mode (esptool) ---

    def _download_mode(self, data):
        """esptool's SYNC: the chip was reset into its ROM loader (a pty has no DTR/RTS
        lines to see the reset by); the firmware image goes to flash.bin in the state
        folder. When esptool leaves, the device boots again."""
        if self.loader is None:
            if self.device is not None:
                self.device.stop()
                self.device = None
            self._running = None
            self.loader = RomLoader(self.state / "flash.bin")
        self._write(self.loader.feed(data))
        if self.loader.done:
            self.loader = None
            self._hard_reset(1)


def register(sub):
    parser = sub.add_parser("vdev", help="a virtual ESP32 with MicroPython on a pseudo-terminal",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--link", metavar="PATH", help="make PATH a symlink to the pty (as socat's link=)")
    parser.add_argument("--dir", metavar="FOLDER", default="vdev-flash",
                        help="the device's flash: a local folder (default ./vdev-flash)")
    parser.add_argument("--state", metavar="FOLDER",
                        help="RTC memory and the BOOT button file (default: a temporary folder)")
    parser.add_argument("--heap", default=HEAP, help=f"MicroPython heap (default {HEAP})")
    parser.add_argument("--field", metavar="FILE", help="the field model's steering JSON file")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument("--seed", type=int, default=1, help="the field model's random seed")
    parser.set_defaults(run=run)


def run(args):
    options = ["--speed", str(args.speed), "--seed", str(args.seed)]
    if args.field:
        options += ["--field", str(Path(args.field).resolve())]
    vdev = VirtualDevice(args.dir, args.state, args.heap, options)
    stop_on_signals()
    signal.signal(signal.SIGUSR1, lambda *_: vdev.press_reset())  # kill -USR1: the EN button
    try:
        if args.link:
            vdev.make_link(args.link)
        print(f"virtual ESP32 on {vdev.port}" + (f" (link {vdev.link})" if vdev.link else "")
              + f"; flash {vdev.flash}; BOOT button held while {vdev.boot_button_file()} exists",
              flush=True)
        print(f"  mpremote connect {vdev.link or vdev.port} repl     (Ctrl-C stops the vdev)", flush=True)
        vdev.power_on()
        vdev.serve()
    except KeyboardInterrupt:
        pass
    finally:
        vdev.close()
    return 0

