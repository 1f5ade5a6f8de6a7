# The device half of `farmctl vdev`: one boot of an ESP32 running MicroPython, played by
# a MicroPython unix process on the hardware stubs. Its filesystem is a local folder.
# The host half (tools/farmctl/vdev.py) owns the serial line (a pseudo-terminal) and
# the REPL's protocol; this process only runs what it is given, in one namespace as a
# device's __main__, writing program output to stdout:
#   vdev_device.py FLASH --ctl-in PATH --ctl-out PATH [virtual_node.py options]
# Host -> device on ctl-in:  b"<kind> <n>\n" + n bytes, kind: exec | single | file | line
# Device -> host on ctl-out, framed the same way: "ready" once set up; "run" N as the
# Nth command starts; "done" with "N\n" and the traceback text (empty: no error); "input" with a prompt (answered by a "line");
# "reset" with the reset cause of the next boot (0: unchanged), before the process ends.
import builtins
import io
import os
import select
import sys

import machine
from lifeline import from_argv as lifeline_from_argv
from virtual_node import OPTIONS, make_chip, parse, power_off

_POLL_MS = 50  # idle wait: scheduled callbacks (machine.Timer) run between polls
_MACHINE_RESET = 5  # the esp32 port reports machine.reset() (esp_restart) as SOFT_RESET
_DEEPSLEEP_RESET = 4
_WDT_RESET = 3


class Channel:
    def __init__(self, ctl_in, ctl_out):
        self._in = open(ctl_in, "rb")
        self._out = open(ctl_out, "wb")
        self._poll = select.poll()
        self._poll.register(self._in, select.POLLIN)

    def send(self, kind, data=b""):
        if isinstance(data, str):
            data = data.encode()
        self._out.write(kind + b" " + str(len(data)).encode() + b"\n" + data)  # no flush: fsync fails on a pipe

    def receive(self):
        """(kind, payload) of the host's next message; waits without blocking callbacks."""
        while not self._poll.poll(_POLL_MS):
            pass
        header = self._in.readline()
        if not header:
            raise SystemExit(0)  # the host is gone
        kind, size = header.split()
        size = int(size)
        data = b""
        while len(data) < size:
            data += self._in.read(size - len(data))
        return kind, data


def traceback_of(exc):
    """The traceback as the device prints it: without this script's own frames."""
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    return "".join(line + "\n" for line in buf.getvalue().split("\n")
                   if line and "vdev_device.py" not in line)


class Device:
    def __init__(self, channel):
        self.channel = channel
        self.namespace = {"__name__": "__main__"}
        builtins.input = self.input

    def input(self, prompt=""):
        """input() asks the host: it owns the serial line, and echoes what is typed."""
        self.channel.send(b"input", prompt)
        kind, line = self.channel.receive()
        return line.decode()

    def run(self, kind, data):
        if kind == b"file":
            name = data.decode()
            try:
                with open(name) as f:
                    source = f.read()
            except OSError:
                return ""  # as pyexec_file_if_exists: no file, nothing run
            code = compile(source, name, "exec")
        else:
            code = compile(data.decode(), "<stdin>", kind.decode())
        exec(code, self.namespace)
        return ""

    def serve(self):
        """Run what comes, one at a time. The host interrupts (SIGINT) only between the
        "run" and "done" of a command; one that lands just after the code ended is
        shrugged off, as by a REPL, and "done" is sent again (numbered: the host keeps one)."""
        self.send_surely(b"ready", "")
        number = 0
        while True:
            kind, data = self.receive_surely()
            number += 1
            error = ""
            try:
                self.channel.send(b"run", str(number))
                error = self.run(kind, data)
            except machine.ResetRequested as exc:
                self.reset(exc.kind)
            except SystemExit:
                self.reset("soft")  # sys.exit() at a device's REPL: a soft reboot
            except BaseException as exc:  # noqa: BLE001 (shown as the device shows it)
                error = traceback_of(exc)
            self.send_surely(b"done", str(number) + "\n" + error)

    def send_surely(self, kind, data):
        while True:
            try:
                self.channel.send(kind, data)
                return
            except KeyboardInterrupt:
                pass

    def receive_surely(self):
        while True:
            try:
                return self.channel.receive()
            except KeyboardInterrupt:
                pass

    def reset(self, kind):
        cause = {"hard": _MACHINE_RESET, "deepsleep": _DEEPSLEEP_RESET}.get(kind, 0)  # 0: as it was
        self.channel.send(b"reset", str(cause))
        raise SystemExit(0)


def main():
    options = dict(OPTIONS)
    options.update({"--ctl-in": None, "--ctl-out": None})
    parsed = parse(sys.argv[1:], "usage: vdev_device.py FLASH --ctl-in PATH --ctl-out PATH ...", options)
    os.chdir(parsed["root"])
    cfg = read_json("config.json")  # its wiring is the board's
    wifi = read_json("secrets.json").get("wifi")
    if type(wifi) is list:  # networks alone (firmware/config.py, canonical)
        wifi = {"networks": wifi}
    aps = None
    if type(wifi) is dict:
        aps = [(wifi["ssid"], wifi.get("password", ""))] if wifi.get("ssid") else []
        aps += [(n.get("ssid", ""), n.get("password", "")) for n in wifi.get("networks", []) if type(n) is dict]
    chip = make_chip(cfg, parsed, aps or None)  # the field's access points: the ones configured
    channel = Channel(parsed["--ctl-in"], parsed["--ctl-out"])

    def watchdog_reset():
        channel.send(b"reset", str(_WDT_RESET))
        power_off("WDT: the watchdog was not fed in time, resetting")

    chip.on_watchdog = watchdog_reset
    lifeline_from_argv(parsed, power_off)  # host gone: this chip loses its power
    Device(channel).serve()


def read_json(name):
    """A JSON object from the flash, or {} (missing or broken: the defaults)."""
    import json

    try:
        with open(name) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if type(data) is dict else {}


main()
