"""The `farmctl` command: host-side tools for farmnode."""
import argparse
import importlib
import sys
import tempfile
import time

from farmctl.broker import Mosquitto
from farmctl.stopping import stop_on_signals
from firmware.profiles import NAMES as PROFILES


def cmd_broker(args):
    """Run a private mosquitto on loopback until Ctrl-C."""
    stop_on_signals()
    with tempfile.TemporaryDirectory(prefix="farmctl-broker-") as workdir:
        with Mosquitto(workdir, port=args.port, tethered=True) as broker:
            print(f"mosquitto listening on {broker.address} (Ctrl-C stops it)")
            print(f"  watch: mosquitto_sub -h {broker.host} -p {broker.port} -t 'farm/#' -v")
            try:
                while broker.process.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
    return 0


def outage(text):
    """--outage AT:FOR, seconds: (at, for)."""
    try:
        at, length = (float(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want AT:FOR in seconds, e.g. 60:120") from None
    if at < 0 or length <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: AT must be 0 or more and FOR above 0")
    return at, length


def cmd_sim(args):
    """A simulated farm on a local broker, shown live until Ctrl-C."""
    from farmctl import sim

    return sim.run(args)


# Subcommands that live in their own module farmctl/<name>.py, each with register(sub)
# adding its parser; imported when the parser is built (their heavy imports stay lazy).
MODULE_COMMANDS = ("flash", "deploy", "send", "watch", "vdev", "provision")


def build_parser():
    parser = argparse.ArgumentParser(prog="farmctl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    broker = sub.add_parser("broker", help=cmd_broker.__doc__)
    broker.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    broker.set_defaults(run=cmd_broker)
    sim = sub.add_parser("sim", help=cmd_sim.__doc__, description=importlib.import_module("farmctl.sim").__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    sim.add_argument("--devices", type=int, default=3, help="virtual nodes (default 3)")
    sim.add_argument("--runtime", choices=("micropython", "cpython"), default="micropython")
    sim.add_argument("--profile", choices=PROFILES, help="backend profile (default: the --config file's, else farmnode)")
    sim.add_argument("--broker", metavar="HOST:PORT", help="use this broker instead of starting one")
    sim.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    sim.add_argument("--field", metavar="FILE", help="the field model's steering JSON file")
    sim.add_argument("--interval", type=int, help="telemetry period, s (default: the --config file's, else 3)")
    sim.add_argument("--config", metavar="FILE",
                     help="a device config.json for every node (your relays, interlocks, profile, calibration, "
                          "alerts); checked first, as the device checks it")
    sim.add_argument("--secrets", metavar="FILE",
                     help="a device secrets.json (the parts a sim can use: Wi-Fi, MQTT account, signing key)")
    sim.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    sim.add_argument("--outage", metavar="AT:FOR", type=outage,
                     help="stop the sim's broker AT seconds after the start, for FOR seconds (the nodes go on "
                          "by themselves, their messages arrive afterwards)")
    sim.add_argument("--keep", action="store_true", help="keep the nodes' files and logs")
    sim.add_argument("--per-process", type=int, metavar="K",
                     help="nodes per process (default: 1 up to 10 nodes, else 50)")
    sim.add_argument("--idle-ms", type=int, default=250,
                     help="with several nodes per process: the longest an idle node waits for its turn")
    sim.set_defaults(run=cmd_sim)
    for name in MODULE_COMMANDS:
        importlib.import_module(f"farmctl.{name}").register(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
