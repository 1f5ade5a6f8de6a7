"""32-bit MicroPython unix ports for the heap benchmarks, built from a MicroPython source
tree (MICROPYTHON_SRC: upstream micropython with its submodules) and cached outside the
repo, in ~/.cache/farmnode/micropython32/<version>-<commit>-<hash of MAKE_FLAGS>/
($XDG_CACHE_HOME is honoured; make does not rebuild for other flags, a new folder does):

  standard  the unix port as upstream builds it: firmware/, lib/ and the stubs are loaded
            as .mpy files;
  stock     the stubs (farmsim/stubs: machine, network, dht..., C modules on a chip)
            frozen, firmware/ and lib/ as .mpy files: `farmctl deploy` onto a stock image;
  frozen    the stubs frozen, and firmware/ and lib/ through the repo's manifest.py.

A 32-bit port has an ESP32's pointers, object headers and GC blocks (half the 64-bit
port's), and its single-precision floats. Each is `make -C ports/unix BUILD=<cache>/<kind>
MICROPY_PY_FFI=0 CC="gcc -m32" CFLAGS_EXTRA=-DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_FLOAT`,
with mpy-cross built into the cache first; stock and frozen hold this checkout's code, so
their folders are this checkout's (<kind>-<hash of its path>): two checkouts benchmarked
at once do not rebuild each other's binaries. The build folders stay, so a later run
rebuilds only what changed (make's own tracking; the frozen content when a stub, a
firmware or lib module or manifest.py changes, or one is added or removed).

Alone: python bench/mp32.py [--src DIR] [--kind standard|stock|frozen]...
prints each kind and its binary, one a line."""
import checkout  # noqa: F401, I001  first: the farmctl of this checkout (bench/checkout.py)
import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from farmctl import deploy
from farmsim import STUBS
from farmsim.runtime import ROOT

KINDS = ("standard", "stock", "frozen")
# What each kind has frozen in: the bench leaves those folders off its import path.
FROZEN = {"standard": (), "stock": ("stubs",), "frozen": ("stubs", "firmware", "lib")}
MANIFEST = ROOT / "manifest.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "farmnode" / "micropython32"
JOBS = 2  # one build at a time, two compilers
# Floats as an ESP32's: single precision (ports/esp32 sets MICROPY_FLOAT_IMPL_FLOAT; the
# unix port's default is double). Beside their size, it decides the code a node runs:
# json.dumps writes single-precision floats clean, where a double's repr shows binary
# noise and lib/jsontext writes them in Python instead (more heap, more time).
MAKE_FLAGS = ["MICROPY_PY_FFI=0", "CC=gcc -m32", "CFLAGS_EXTRA=-DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_FLOAT"]
GET_SOURCE = ("get a MicroPython source tree with `git clone --recursive https://github.com/micropython/micropython` "
              "and give it: `make bench MICROPYTHON_SRC=/path/to/micropython`")
# Submodules the unix port builds from, each with a file that is there once it is checked out.
SUBMODULES = {"lib/micropython-lib": "README.md", "lib/mbedtls": "include/mbedtls/ssl.h",
              "lib/berkeley-db-1.xx": "btree/bt_open.c"}
MULTILIB = "gcc -m32 cannot build a 32-bit program here: install gcc-multilib (`sudo apt-get install gcc-multilib`)"


class BuildError(Exception):
    """Why the 32-bit ports cannot be built, and what to do about it."""


def log(text):
    print(text, file=sys.stderr, flush=True)


def source_tree(src):
    """The MicroPython checkout src as an absolute Path; BuildError if it is not one the
    unix port can be built from."""
    if not src:
        raise BuildError("no MicroPython source tree (MICROPYTHON_SRC): " + GET_SOURCE)
    tree = Path(src).expanduser().resolve()
    if not (tree / "py" / "mpconfig.h").is_file() or not (tree / "ports" / "unix" / "Makefile").is_file():
        raise BuildError("%s is not a MicroPython source tree (no py/mpconfig.h, ports/unix/Makefile): %s"
                         % (tree, GET_SOURCE))
    missing = [name for name, probe in SUBMODULES.items() if not (tree / name / probe).exists()]
    if missing:
        raise BuildError("%s lacks the submodules %s: in it, run `git submodule update --init %s` "
                         "(or clone with --recursive)" % (tree, ", ".join(missing), " ".join(missing)))
    return tree


def cache_key(tree):
    """<version>-<commit> of the tree (git describe), or its version and where it is when
    git cannot tell."""
    done = subprocess.run(["git", "-C", str(tree), "describe", "--tags", "--always", "--long", "--abbrev=10"],
                          capture_output=True, text=True)
    if done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip()
    version = [line.split()[2] for line in (tree / "py" / "mpconfig.h").read_text().splitlines()
               if line.startswith("#define MICROPY_VERSION_M")][:3]
    return "v%s-%s" % (".".join(version), hashlib.sha256(str(tree).encode()).hexdigest()[:10])


def check_compiler():
    """BuildError unless gcc -m32 links a program; tries apt-get install gcc-multilib
    first where it can (as root, or through sudo without a password)."""
    with tempfile.TemporaryDirectory() as scratch:
        program = Path(scratch) / "m32.c"
        program.write_text("int main(void) { return sizeof(void *) == 4 ? 0 : 1; }\n")
        argv = ["gcc", "-m32", "-o", str(program.with_suffix("")), str(program)]

        def links():
            try:
                return subprocess.run(argv, capture_output=True).returncode == 0
            except OSError:
                return False

        if links():
            return
        log("gcc -m32 does not work; trying to install gcc-multilib")
        installer = ROOT / "tools" / "apt-get-install.sh"
        if subprocess.run([str(installer), "gcc-multilib"]).returncode != 0 or not links():
            raise BuildError(MULTILIB)


def wrapper_manifest(kind):
    """The manifest a kind is built with, or None for upstream's: the unix variant's own
    manifest, the stubs, and for "frozen" the repo's manifest.py without the ESP32 board's."""
    if not FROZEN[kind]:
        return None
    lines = ["# Written by bench/mp32.py for its %r build of this checkout." % kind,
             'include("$(PORT_DIR)/variants/standard/manifest.py")']
    lines += ["module(%r, base_path=%r)" % (stub.name, str(STUBS)) for stub in sorted(STUBS.glob("*.py"))]
    if "firmware" in FROZEN[kind]:
        lines.append("include(%r, board_manifest=False)" % str(MANIFEST))
    return "\n".join(lines) + "\n"


def frozen_digest(kind, manifest_text):
    """sha256 of what a kind freezes of ours: its manifest and each file's name and content."""
    files = sorted(STUBS.glob("*.py"))
    if "firmware" in FROZEN[kind]:
        files += [MANIFEST, *(source for target, source in sorted(deploy.firmware_sources().items())
                              if target not in ("boot.py", "main.py"))]
    digest = hashlib.sha256(manifest_text.encode())
    for path in files:
        digest.update(b"\0%s\0%s" % (str(path.relative_to(ROOT)).encode(), path.read_bytes()))
    return digest.hexdigest()


def _make(argv, log_path, env):
    with open(log_path, "w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        tail = " | ".join(Path(log_path).read_text(errors="replace").strip().splitlines()[-5:])
        raise BuildError("%s failed (whole output in %s): %s" % (" ".join(argv[:3]), log_path, tail))


def _build_kind(tree, folder, kind, env):
    text = wrapper_manifest(kind)
    name = kind if text is None else "%s-%s" % (kind, hashlib.sha256(str(ROOT).encode()).hexdigest()[:8])
    build = folder / name
    argv = ["make", "-C", str(tree / "ports" / "unix"), "-j%d" % JOBS, "BUILD=%s" % build, *MAKE_FLAGS]
    if text is not None:
        manifest = folder / ("%s-manifest.py" % name)
        if not manifest.exists() or manifest.read_text() != text:
            manifest.write_text(text)
        argv.append("FROZEN_MANIFEST=%s" % manifest)
        # makemanifest.py regenerates the frozen content only for a source newer than its
        # output: a module removed, or an older file put back, would stay frozen as it was.
        stamp, digest = build / "farmnode-frozen.sha256", frozen_digest(kind, text)
        if not stamp.exists() or stamp.read_text() != digest:
            shutil.rmtree(build / "frozen_mpy", ignore_errors=True)
            (build / "frozen_content.c").unlink(missing_ok=True)
    _make(argv, folder / ("%s.log" % name), env)
    if text is not None:
        stamp.write_text(digest)
    return build / "micropython"


def build(src=None, kinds=KINDS):
    """{kind: Path of its micropython binary}, built (or brought up to date) from the
    source tree src (default: $MICROPYTHON_SRC) in the cache. BuildError says what is
    missing."""
    tree = source_tree(src or os.environ.get("MICROPYTHON_SRC"))
    check_compiler()
    folder = CACHE / ("%s-%s" % (cache_key(tree), hashlib.sha256(" ".join(MAKE_FLAGS).encode()).hexdigest()[:8]))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another bench building the same ports waits here
        env = dict(os.environ, MICROPY_MPYCROSS=str(folder / "mpy-cross" / "mpy-cross"))
        log("32-bit MicroPython from %s: mpy-cross (%s)" % (tree, folder))
        _make(["make", "-C", str(tree / "mpy-cross"), "-j%d" % JOBS, "BUILD=%s" % (folder / "mpy-cross")],
              folder / "mpy-cross.log", env)
        binaries = {}
        for kind in kinds:
            log("32-bit MicroPython: the %s unix port" % kind)
            binaries[kind] = _build_kind(tree, folder, kind, env)
    return binaries


def deployed_modules():
    """{path in a frozen image: module name} of what `farmctl deploy` puts under firmware/
    and /lib (boot.py and main.py stay on the filesystem)."""
    modules = {}
    for target in deploy.firmware_sources():
        if target.startswith("firmware/"):
            modules[target] = target[:-3].replace("/", ".").removesuffix(".__init__")
        elif target.startswith("lib/"):
            modules[target[4:]] = target[4:-3]
    return modules


def frozen_targets(src, **options):
    """{path in the image: source} of what the repo's manifest.py freezes for an ESP32,
    read with the source tree's own tools/manifestfile.py."""
    sys.path.insert(0, str(Path(src) / "tools"))
    try:
        import manifestfile
    finally:
        sys.path.pop(0)
    port = Path(src) / "ports" / "esp32"
    manifest = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": str(src), "MPY_LIB_DIR": str(Path(src) / "lib" / "micropython-lib"), "PORT_DIR": str(port),
        "BOARD_DIR": str(port / "boards" / "ESP32_GENERIC")})
    manifest.include(str(MANIFEST), **options)
    return {result.target_path: result.full_path for result in manifest.files()}


def verify(src, frozen_binary):
    """BuildError unless manifest.py freezes what deploy puts on a device (over the ESP32
    board's own manifest: asyncio, dht, ntptime, umqtt stay), and the frozen port imports
    every firmware and lib module from .frozen."""
    tree = source_tree(src or os.environ.get("MICROPYTHON_SRC"))
    modules = deployed_modules()
    alone = frozen_targets(tree, board_manifest=False)
    with_board = frozen_targets(tree)
    if set(alone) != set(modules):
        raise BuildError("manifest.py freezes %s, deploy installs %s" % (sorted(set(alone) - set(modules)),
                                                                       sorted(set(modules) - set(alone))))
    missing = [stock for stock in ("asyncio/__init__.py", "dht.py", "ntptime.py", "umqtt/simple.py")
               if stock not in with_board] + [path for path in alone if with_board.get(path) != alone[path]]
    if missing:
        raise BuildError("manifest.py with the ESP32 board's manifest lacks %s" % missing)
    script = "import sys\nfor name in %r:\n    __import__(name)\n    print(name, sys.modules[name].__file__)\n" % (
        sorted(modules.values()),)
    with tempfile.TemporaryDirectory() as empty:  # nothing on the filesystem to import instead
        done = subprocess.run([str(frozen_binary), "-c", script], env=dict(os.environ, MICROPYPATH=".frozen"),
                              cwd=empty, capture_output=True, text=True, timeout=60)
    # A frozen module's __file__ is its path in the manifest (a file's would be absolute).
    origins = dict(line.split() for line in done.stdout.splitlines() if line.count(" ") == 1)
    if done.returncode or origins != {name: target for target, name in modules.items()}:
        raise BuildError("the frozen port does not import the firmware from .frozen: %s" % (done.stdout + done.stderr)[-400:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", default=os.environ.get("MICROPYTHON_SRC"),
                        help="the MicroPython source tree (default: $MICROPYTHON_SRC)")
    parser.add_argument("--kind", action="append", choices=KINDS, help="build only this kind (repeatable)")
    args = parser.parse_args()
    try:
        binaries = build(args.src, args.kind or KINDS)
    except BuildError as exc:
        print("mp32: %s" % exc, file=sys.stderr)
        sys.exit(1)
    for kind, binary in binaries.items():
        print("%s %s" % (kind, binary))


if __name__ == "__main__":
    main()
