"""`farmctl vdev`: a virtual ESP32 on a pseudo-terminal, driven by the real mpremote and
by `farmctl deploy`, its firmware reaching a real mosquitto."""
import json
import os
import pty
import subprocess
import tty

import pytest

from backend import Backend
from vdevkit import MPREMOTE, SerialLine, Vdev, farmctl, mpremote

BANNER_END = b'Type "help()" for more information.\r\n>>> '


@pytest.fixture
def vdev(tmp_path):
    device = Vdev(tmp_path)
    yield device
    device.stop()


@pytest.fixture
def serial(vdev):
    line = SerialLine(vdev.port)
    yield line
    line.close()


def test_mpremote_file_commands_exec_run_and_soft_reset(vdev, tmp_path):
    (vdev.flash / "boot.py").write_text("print('boot.py ran')\n")
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('hello from', sys.implementation.name)\n")
    status, out = mpremote(vdev.port, "fs", "cp", str(script), ":hello.py")
    assert status == 0, out
    assert (vdev.flash / "hello.py").read_text() == script.read_text()
    status, out = mpremote(vdev.port, "fs", "ls")
    assert status == 0 and "hello.py" in out and "boot.py" in out, out
    status, out = mpremote(vdev.port, "exec", "import hello")
    assert status == 0 and "hello from micropython" in out, out
    status, out = mpremote(vdev.port, "run", str(script))
    assert status == 0 and "hello from micropython" in out, out
    status, out = mpremote(vdev.port, "exec", "print(1/0)")
    assert status == 1 and "ZeroDivisionError" in out and "vdev_device" not in out, out
    status, out = mpremote(vdev.port, "fs", "cat", ":hello.py")
    assert status == 0 and "hello from" in out, out
    status, out = mpremote(vdev.port, "fs", "rm", ":hello.py")
    assert status == 0 and not (vdev.flash / "hello.py").exists(), out
    # A large file goes through raw-paste flow control intact.
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 40)
    status, out = mpremote(vdev.port, "fs", "cp", str(big), ":big.bin")
    assert status == 0 and (vdev.flash / "big.bin").read_bytes() == big.read_bytes(), out


def test_serial_line_keeps_what_the_device_sent_before_it_was_opened():
    # A vdev can print its banner before a test opens the port; that must still be read.
    master, slave = os.openpty()
    tty.setraw(slave)  # as the vdev holds its side
    try:
        os.write(master, b"ets Jul 29 2019\r\n")
        line = SerialLine(os.ttyname(slave))
        try:
            assert line.read_until(b"\r\n", timeout_s=2) == b"ets Jul 29 2019\r\n"
        finally:
            line.close()
    finally:
        os.close(master)
        os.close(slave)


def test_friendly_repl_continuation_paste_input_and_ctrl_c(vdev, serial):
    serial.read_until(BANNER_END)  # power-on: no main.py, the REPL
    serial.write(b"\x02")  # Ctrl-B: the banner again
    serial.read_until(BANNER_END)
    serial.write(b"6 * 7\r")
    assert b"42\r\n>>> " in serial.read_until(b">>> ")
    serial.write(b"for i in range(2):\r")
    serial.read_until(b"... ")
    serial.write(b"    print('line', i)\r\r")
    assert b"line 0\r\nline 1\r\n>>> " in serial.read_until(b"line 1\r\n>>> ")
    serial.write(b"\x05")  # Ctrl-E: paste mode
    serial.read_until(b"=== ")
    serial.write(b"a = 2\rb = 3\r\x04")
    serial.read_until(b">>> ")
    serial.write(b"a + b\r")
    assert b"5\r\n>>> " in serial.read_until(b"5\r\n>>> ")
    serial.write(b"name = input('who? ')\r")
    serial.read_until(b"who? ")
    serial.write(b"tech\r")
    serial.read_until(b">>> ")
    serial.write(b"name\r")
    assert b"'tech'" in serial.read_until(b"'tech'\r\n>>> ")
    serial.write(b"while True:\r    pass\r\r")
    serial.write(b"\x03")  # Ctrl-C interrupts the running loop
    assert b"KeyboardInterrupt" in serial.read_until(b"KeyboardInterrupt")
    serial.read_until(b">>> ")
    serial.write(b"1 +\r")  # a syntax error is the device's to report
    assert b"SyntaxError" in serial.read_until(b">>> ")


def test_mpremote_repl_is_the_friendly_repl(vdev):
    terminal, their_side = pty.openpty()  # mpremote's repl wants a terminal of its own
    repl = subprocess.Popen([str(MPREMOTE), "connect", str(vdev.port), "repl"], stdin=their_side,
                            stdout=their_side, stderr=their_side, start_new_session=True)
    os.close(their_side)
    user = SerialLine(fd=terminal)
    try:
        user.read_until(b"Ctrl-] or Ctrl-x to exit this shell")
        user.write(b"\r")
        user.read_until(b">>> ")
        user.write(b"6 * 7\r")
        assert b"42" in user.read_until(b"42")
        user.write(b"\x1d")  # Ctrl-]: leave mpremote
        assert repl.wait(10) == 0
    finally:
        if repl.poll() is None:
            repl.kill()
        user.close()


def test_soft_reboot_runs_boot_and_main_and_machine_reset_reboots(vdev, serial):
    (vdev.flash / "boot.py").write_text("print('boot.py ran')\n")
    (vdev.flash / "main.py").write_text("import machine\nprint('main.py ran, cause', machine.reset_cause())\n")
    serial.read_until(BANNER_END)  # power-on
    serial.write(b"\x04")  # Ctrl-D at the prompt: soft reboot
    out = serial.read_until(BANNER_END)
    assert b"MPY: soft reboot" in out and b"boot.py ran" in out and b"main.py ran" in out, out
    serial.write(b"import machine; machine.reset()\r")
    out = serial.read_until(BANNER_END)
    assert b"rst:0xc (SW_CPU_RESET)" in out and b"main.py ran, cause 5" in out, out
    status, out = mpremote(vdev.port, "reset")
    assert status == 0, out
    assert b"main.py ran, cause 5" in serial.read_until(BANNER_END)


def _configs(tmp_path, broker, **config):
    cfg = {"device_id": "node-v1", "interval_s": 2, **config}
    secrets = {"wifi": {"ssid": "farm", "password": "farmpass"},
               "mqtt": {"host": broker.host, "port": broker.port}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "secrets.json").write_text(json.dumps(secrets))
    return ["--config", str(tmp_path / "config.json"), "--secrets", str(tmp_path / "secrets.json")]


def _status(backend, status, timeout_s=30):
    return backend.wait_for(lambda t, d, r: t == "farm/node-v1/status" and d and d.get("status") == status,
                            timeout_s)


def test_deploy_then_the_node_comes_online_and_answers(vdev, broker, tmp_path):
    backend = Backend(broker, ["farm/node-v1/#"])
    try:
        status, out = farmctl("deploy", "--port", str(vdev.port), *_configs(tmp_path, broker))
        assert status == 0, out
        assert "changed" in out and "resetting the device" in out, out
        assert (vdev.flash / "firmware" / "node.mpy").exists() and not (vdev.flash / "firmware" / "node.py").exists()
        online = _status(backend, "online")
        assert online["reset_cause"] == "soft"  # machine.reset(), as the esp32 port reports it
        backend.client.publish("farm/node-v1/commands", json.dumps({"command_id": "v-1", "command": "ping"}), qos=1)
        answer = backend.wait_for(lambda t, d, r: t.endswith("command_response") and d["command_id"] == "v-1")
        assert answer["success"] is True
        # Again: only what changed travels (nothing), and the sources replace the .mpy files.
        status, out = farmctl("deploy", "--port", str(vdev.port), "--no-reset")
        assert status == 0 and "0 changed, 0 to remove" in out, out
        status, out = farmctl("deploy", "--port", str(vdev.port), "--py", "--no-reset")
        assert status == 0 and "removed firmware/node.mpy" in out, out
        assert (vdev.flash / "firmware" / "node.py").exists() and not (vdev.flash / "firmware" / "node.mpy").exists()
    finally:
        backend.close()


def test_deploy_refuses_a_bad_config_before_touching_the_device(vdev, broker, tmp_path):
    args = _configs(tmp_path, broker, interval_s=0)
    status, out = farmctl("deploy", "--port", str(vdev.port), *args)
    assert status == 1 and "interval_s: must be between 1 and 86400" in out, out
    assert not (vdev.flash / "firmware").exists()
    status, out = farmctl("deploy", "--port", str(tmp_path / "no-such-port"))
    assert status == 1 and "no MicroPython REPL" in out, out


def test_three_crashing_boots_give_safe_mode_and_a_deploy_repairs_it(vdev, broker, tmp_path):
    backend = Backend(broker, ["farm/node-v1/#"])
    try:
        args = _configs(tmp_path, broker)
        status, out = farmctl("deploy", "--port", str(vdev.port), *args)
        assert status == 0, out
        _status(backend, "online")
        # A reading: the turn that marks the boot healthy (right after the online status) is over.
        backend.wait_for(lambda t, d, r: t == "farm/node-v1/telemetry")
        good = (vdev.flash / "firmware" / "node.mpy").read_bytes()
        (vdev.flash / "firmware" / "node.mpy").write_bytes(b"M\x06garbage")  # a broken module
        vdev.press_reset()
        maintenance = _status(backend, "maintenance", 60)
        assert maintenance["reason"] == "safe mode: 3 boots in a row failed before reaching the broker"
        log = (vdev.flash / "log.txt").read_text()
        assert log.count("crash:") == 3 and "incompatible .mpy" in log, log
        # The technician's tools reach the device in safe mode...
        status, out = mpremote(vdev.port, "exec", "from flashlog import FlashLog; print(FlashLog().tail(2))")
        assert status == 0 and "3 boots in a row failed" in out, out
        # ...and a deployment replaces the broken file only, and starts the count afresh.
        (vdev.flash / "firmware" / "node.mpy").write_bytes(b"M\x06garbage")
        status, out = farmctl("deploy", "--port", str(vdev.port), *args)
        assert status == 0 and "[  1/1] firmware/node.mpy" in out, out
        assert (vdev.flash / "firmware" / "node.mpy").read_bytes() == good
        _status(backend, "online")
    finally:
        backend.close()


def test_boot_button_held_at_reset_gives_maintenance(vdev, broker, tmp_path):
    backend = Backend(broker, ["farm/node-v1/#"])
    try:
        status, out = farmctl("deploy", "--port", str(vdev.port), "--no-reset", *_configs(tmp_path, broker))
        assert status == 0, out
        vdev.hold_boot_button(True)
        vdev.press_reset()
        maintenance = _status(backend, "maintenance")
        assert maintenance["reason"] == "safe mode: boot button held"
        # The technician's module at the REPL, through mpremote (which soft-resets: boot.py only).
        status, out = mpremote(vdev.port, "exec", "from firmware import tech; tech.status(); tech.relay('irrigation', 0.2)")
        assert status == 0 and "farmnode 0.1.0, device node-v1" in out and "irrigation off after" in out, out
        status, out = mpremote(vdev.port, "exec", "from firmware import tech; tech.relay('irrigation')")
        assert status == 0 and "usage: tech.relay(name, seconds)" in out, out
        vdev.hold_boot_button(False)
        mpremote(vdev.port, "exec", "--no-follow", "from firmware import tech; tech.leave_safe_mode()")
        _status(backend, "online")
    finally:
        backend.close()


def test_the_watchdog_resets_a_hung_loop(vdev, broker, tmp_path):
    field = tmp_path / "field.json"
    field.write_text("{}")
    vdev.stop()
    device = Vdev(tmp_path / "hung", field=field)
    backend = Backend(broker, ["farm/node-v1/#"])
    try:
        # the DHT read every 2 s (its default 30 s would make the hang wait that long)
        args = _configs(tmp_path, broker, watchdog_s=10, sensors={"dht": {"interval_s": 2}})
        status, out = farmctl("deploy", "--port", str(device.port), *args)
        assert status == 0, out
        _status(backend, "online")
        field.write_text(json.dumps({"faults": {"dht": "hang"}}))  # the next DHT read never returns
        _status(backend, "offline", 40)  # the process died: the broker sends the Will
        field.write_text("{}")
        online = _status(backend, "online", 40)
        assert online["reset_cause"] == "watchdog"
    finally:
        backend.close()
        device.stop()


def test_farmctl_flash_writes_into_the_vdev_in_download_mode(vdev, tmp_path):
    from test_flash import esp_image, repetitive_payload

    image = esp_image(0, repetitive_payload())
    (tmp_path / "micropython.bin").write_bytes(image)
    status, out = farmctl("flash", "--port", str(vdev.port), "--firmware", str(tmp_path / "micropython.bin"))
    assert status == 0, out
    assert (vdev.state / "flash.bin").read_bytes()[0x1000:0x1000 + len(image)] == image
    status, out = mpremote(vdev.port, "exec", "print('back from download mode')")
    assert status == 0 and "back from download mode" in out, out  # it booted MicroPython again


def test_deploy_matches_the_devices_mpy_version(vdev, monkeypatch):
    from farmctl import deploy

    assert deploy.device_mpy_version(0x0B06) == (6, 3)  # this unix port: v6.3, arch bits above
    monkeypatch.setattr(deploy, "mpy_cross_version", lambda: (5, 0))
    with pytest.raises(deploy.DeployError, match="the device runs .mpy v6.3, mpy-cross makes v5.0"):
        deploy.deploy(str(vdev.port))
    assert not (vdev.flash / "firmware").exists()
