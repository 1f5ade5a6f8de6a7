"""`farmctl deploy`: put the firmware on a device over its serial port. firmware/ and
lib/ are compiled with mpy-cross (for the device's .mpy version) unless --py, without
their line-number tables unless --lines (a stock ESP32 loads .mpy code into its heap,
where the tables of the resident modules cost ~3 KiB; tracebacks then name the file and
the function, with "line 1"). With boot.py, main.py and the config they are copied with
mpremote's transport, only the files whose sha256 differs from the device's; files of
firmware/ and lib/ that are no longer part of the firmware are removed (a stale .py
would be imported before its .mpy). Then the device is reset.

With mqtt.tls on and mqtt.ca naming a file (ca.crt, as `farmctl provision` writes it),
that CA goes to the device too, at the path mqtt.ca names: taken from beside the
secrets file (or --ca FILE). Without it the deployment is refused before the device is
touched: a device with TLS and no CA cannot reach its broker.

On a device whose MicroPython image has the firmware frozen in (built with manifest.py,
README: "A firmware image"), only boot.py, main.py and the settings go; copies of
firmware/ and lib/ on its filesystem are removed, since firmware/ there would be
imported instead of the image's and lib/ there is never used (the image's modules come
first). --over-frozen sends the firmware as files anyway, to try a change without a
new image (they are then imported instead of the frozen ones)."""
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from farmctl.settings import SettingsError, load_checked
from farmsim.runtime import ROOT

RAW_REPL_TRIES = 3
MPY_CROSS_VERSION = re.compile(r"mpy v(\d+)\.(\d+)")
# The device's .mpy version and its files under firmware/ and lib/ with their sha256,
# then those of the names given (%r: a tuple of paths).
DEVICE_FILES_SNIPPET = """
import os, sys, hashlib, binascii
def _walk(d):
    try:
        entries = list(os.ilistdir(d))
    except OSError:
        return
    for e in entries:
        p = d + '/' + e[0]
        if e[1] == 0x4000:
            _walk(p)
        else:
            h = hashlib.sha256()
            with open(p, 'rb') as f:
                while True:
                    b = f.read(512)
                    if not b:
                        break
                    h.update(b)
            print(repr((p, binascii.hexlify(h.digest()).decode())))
print(repr(getattr(sys.implementation, '_mpy', None)))
for _d in ('firmware', 'lib'):
    _walk(_d)
for _n in %r:
    try:
        with open(_n, 'rb') as f:
            print(repr((_n, binascii.hexlify(hashlib.sha256(f.read()).digest()).decode())))
    except OSError:
        pass
"""


# The version of the firmware frozen into the device's image (%r: the package's name),
# or None: imported with only the image on sys.path, whatever the filesystem holds.
FROZEN_VERSION_SNIPPET = """
import sys
_path = sys.path[:]
_loaded = sys.modules.pop(%r, None)
sys.path[:] = ['.frozen']
try:
    _m = __import__(%r)
    print(repr(getattr(_m, 'VERSION', '?')))
except ImportError:
    print(repr(None))
finally:
    sys.path[:] = _path
    sys.modules.pop(%r, None)
    if _loaded is not None:
        sys.modules[%r] = _loaded
"""


class DeployError(Exception):
    """Why the deployment cannot go on, in words for the user."""


def mpy_cross_version():
    out = subprocess.run([_mpy_cross(), "--version"], capture_output=True, text=True, check=True).stdout
    found = MPY_CROSS_VERSION.search(out)
    if not found:
        raise DeployError(f"cannot tell mpy-cross's .mpy version from {out.strip()!r}")
    return int(found.group(1)), int(found.group(2))


def _mpy_cross():
    beside = Path(sys.executable).parent / "mpy-cross"
    return str(beside) if beside.exists() else "mpy-cross"


def device_mpy_version(mpy):
    """(version, sub-version) from sys.implementation._mpy (bits 0-7, 8-9)."""
    return mpy & 0xFF, (mpy >> 8) & 3


def firmware_sources():
    """{device path: local source} of what runs on a device: firmware/, lib/ (each
    package's modules flattened into /lib, as mip installs them), boot.py, main.py."""
    files = {str(p.relative_to(ROOT)): p for p in sorted((ROOT / "firmware").rglob("*.py"))}
    for source in sorted((ROOT / "lib").glob("*/*.py")):
        files[f"lib/{source.name}"] = source
    files["boot.py"] = ROOT / "boot.py"
    files["main.py"] = ROOT / "main.py"
    return files


def build(sources, out_dir, compiled, lines=False):
    """{device path: local file to send}: .py compiled to .mpy under out_dir, except
    boot.py and main.py, which the device runs as sources; lines: keep each module's
    line-number table (for tracebacks; it costs heap on the device)."""
    flags = [] if lines else ["-X", "no-source-lines"]
    files = {}
    for target, source in sources.items():
        if not compiled or target in ("boot.py", "main.py"):
            files[target] = source
            continue
        mpy_target = target[:-3] + ".mpy"
        out = Path(out_dir) / mpy_target
        out.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([_mpy_cross(), *flags, "-o", str(out), "-s", Path(target).name, str(source)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise DeployError(f"mpy-cross failed on {source}: {result.stderr.strip()}")
        files[mpy_target] = out
    return files


def checked_config(path):
    """The JSON text of a config or secrets file, refused with every reason if the
    firmware would refuse it."""
    return json.dumps(_checked(path))


def _checked(path):
    try:
        return load_checked(path)
    except SettingsError as exc:
        raise DeployError(str(exc)) from None


def settings_files(config_path=None, secrets_path=None, ca_path=None, out=None):
    """{device path: bytes} of the config, the secrets and the broker's CA to deploy,
    each checked: a DeployError says what is wrong before the device is touched."""
    out = out or sys.stdout
    files = {}
    mqtt = {}
    for name, path in (("config.json", config_path), ("secrets.json", secrets_path)):
        if path:
            data = _checked(path)
            files[name] = json.dumps(data).encode()
            if isinstance(data.get("mqtt"), dict):
                mqtt.update(data["mqtt"])  # the device lays secrets.json over config.json
    tls, ca = mqtt.get("tls"), mqtt.get("ca")
    if not (tls and ca):
        if ca_path:
            raise DeployError(f"--ca {ca_path}: the settings deployed do not use a CA (mqtt.tls and mqtt.ca): "
                              "nothing says where it would go on the device")
        if tls:
            out.write("warning: mqtt.tls without mqtt.ca: the device will not check the broker's certificate\n")
        return files
    target = ca.lstrip("/")
    if not target or ".." in target.split("/"):
        raise DeployError(f"mqtt.ca {ca!r} is not a path on the device")
    source = Path(ca_path) if ca_path else Path(secrets_path or config_path).parent / target
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise DeployError(f"mqtt.tls is on and mqtt.ca is {ca}, but the CA cannot be read from {source} "
                          f"({exc.strerror or exc}): a device with TLS and no CA cannot reach its broker. "
                          f"Put the CA there or give --ca FILE") from None
    if b"-----BEGIN CERTIFICATE-----" not in data and not data.startswith(b"\x30"):
        raise DeployError(f"{source} is not a certificate (PEM or DER): the device would refuse every broker")
    files[target] = data
    return files


class Device:
    """The device at the other end of the port, through mpremote's serial transport."""

    def __init__(self, port):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        try:
            self.transport = SerialTransport(port, baudrate=115200)
        except TransportError as exc:
            raise DeployError(f"no MicroPython REPL on {port}: {exc}") from None
        for attempt in range(RAW_REPL_TRIES):
            try:
                self.transport.enter_raw_repl(soft_reset=True)  # stops the application
                break
            except TransportError as exc:
                # A device still booting (or a slow one) may miss mpremote's short wait
                # for the banner; a second Ctrl-C and soft reset usually finds it.
                if attempt == RAW_REPL_TRIES - 1:
                    raise DeployError(f"no MicroPython REPL on {port}: {exc}") from None
        self._folders = set()  # made (or found) on the device during this deployment

    def files(self, names):
        """(the device's sys.implementation._mpy, {path: sha256 hex}) of firmware/, lib/
        and names."""
        lines = self.transport.exec(DEVICE_FILES_SNIPPET % (tuple(names),)).decode().splitlines()
        import ast

        mpy = ast.literal_eval(lines[0])
        return mpy, dict(ast.literal_eval(line) for line in lines[1:] if line.strip())

    def frozen_firmware(self, package="firmware"):
        """The version of the firmware frozen into the device's image, or None."""
        import ast

        out = self.transport.exec(FROZEN_VERSION_SNIPPET % ((package,) * 4)).decode()
        return ast.literal_eval(out.strip().splitlines()[-1])

    def write(self, path, data):
        parent = path.rpartition("/")[0]
        if parent and parent not in self._folders:
            self.transport.exec("import os\nfor d in %r:\n try:\n  os.mkdir(d)\n except OSError:\n  pass"
                                % (_parents(parent),))
            self._folders.update(_parents(parent))
        self.transport.fs_writefile(path, data)

    def remove(self, path):
        self.transport.fs_rmfile(path)

    def reset(self):
        # New code gets a fresh count of failed boots (lib/bootguard keeps it in RTC memory).
        self.transport.exec("import machine\nmachine.RTC().memory(b'')")
        self.transport.exec_raw_no_follow("import machine\nmachine.reset()")

    def close(self):
        self.transport.close()


def _parents(path):
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


ENTRY_POINTS = ("boot.py", "main.py", "config.json", "secrets.json")


def deploy(port, config_path=None, secrets_path=None, sources_only=False, reset=True, out=None,
           ca_path=None, over_frozen=False, device=None, lines=False):
    out = out or sys.stdout
    started = time.monotonic()
    extra = settings_files(config_path, secrets_path, ca_path, out)
    device = device or Device(port)
    try:
        mpy, on_device = device.files(ENTRY_POINTS + tuple(p for p in extra if p not in ENTRY_POINTS))
        frozen = device.frozen_firmware()
        use_image = frozen is not None and not over_frozen
        if use_image:
            out.write(f"the device's image has firmware {frozen} frozen in: sending boot.py, main.py and the "
                      "settings only (--over-frozen sends the firmware as files)\n")
        elif not sources_only:
            if mpy is None:
                raise DeployError("the device's MicroPython cannot import .mpy files: deploy with --py")
            ours, theirs = mpy_cross_version(), device_mpy_version(mpy)
            if ours[0] != theirs[0] or ours[1] > theirs[1]:
                raise DeployError(
                    f"the device runs .mpy v{theirs[0]}.{theirs[1]}, mpy-cross makes v{ours[0]}.{ours[1]}: "
                    "install the mpy-cross matching the device's MicroPython, or deploy with --py")
        sources = firmware_sources()
        if use_image:
            sources = {path: local for path, local in sources.items() if path in ENTRY_POINTS}
        with tempfile.TemporaryDirectory(prefix="farmctl-deploy-") as build_dir:
            files = {path: Path(local).read_bytes()
                     for path, local in build(sources, build_dir, not sources_only, lines).items()}
        files.update(extra)
        changed = [path for path, data in files.items()
                   if on_device.get(path) != hashlib.sha256(data).hexdigest()]
        stale = [path for path in on_device
                 if path.startswith(("firmware/", "lib/")) and path not in files]
        out.write(f"{len(files)} files, {len(changed)} changed, {len(stale)} to remove "
                  f"({'the image' if use_image else 'sources' if sources_only else '.mpy'})\n")
        sent = 0
        for i, path in enumerate(changed, 1):
            out.write(f"[{i:3}/{len(changed)}] {path} ({len(files[path])} bytes)\n")
            out.flush()
            device.write(path, files[path])
            sent += len(files[path])
        for path in stale:
            out.write(f"removed {path}\n")
            device.remove(path)
        out.write(f"{sent} bytes sent in {time.monotonic() - started:.1f} s\n")
        if reset:
            out.write("resetting the device\n")
            device.reset()
    finally:
        device.close()
    return 0


def register(sub):
    parser = sub.add_parser("deploy", help="put the firmware on a device over its serial port",
                            description=__doc__)
    parser.add_argument("--port", required=True, help="serial port (e.g. /dev/ttyUSB0, or a vdev's link)")
    parser.add_argument("--config", metavar="FILE", help="config.json for the device (validated first)")
    parser.add_argument("--secrets", metavar="FILE", help="secrets.json (Wi-Fi and broker credentials)")
    parser.add_argument("--ca", metavar="FILE", help="the broker's CA, copied to the path mqtt.ca names "
                                                     "(default: that file beside --secrets)")
    parser.add_argument("--py", action="store_true", help="deploy the sources instead of .mpy files")
    parser.add_argument("--lines", action="store_true",
                        help="keep line numbers in the .mpy files' tracebacks (~3 KiB more heap on the device)")
    parser.add_argument("--no-reset", action="store_true", help="leave the device at the REPL")
    parser.add_argument("--over-frozen", action="store_true",
                        help="on an image with the firmware frozen in, send the firmware as files anyway "
                             "(imported instead of the image's until removed)")
    parser.set_defaults(run=run)


def run(args):
    try:
        return deploy(args.port, args.config, args.secrets, args.py, not args.no_reset, ca_path=args.ca,
                      over_frozen=args.over_frozen, lines=args.lines)
    except DeployError as exc:
        print(f"farmctl deploy: {exc}", file=sys.stderr)
        return 1
