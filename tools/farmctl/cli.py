"""The `farmctl` command: host-side tools for farmnode."""
import argparse
import sys
import tempfile
import time

from farmctl.broker import Mosquitto


def cmd_broker(args):
    """Run a private mosquitto on loopback until Ctrl-C."""
    with tempfile.TemporaryDirectory(prefix="farmctl-broker-") as workdir:
        with Mosquitto(workdir, port=args.port) as broker:
            print(f"mosquitto listening on {broker.address} (Ctrl-C stops it)")
            print(f"  watch: mosquitto_sub -h {broker.host} -p {broker.port} -t 'farm/#' -v")
            try:
                while broker.process.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
    return 0


def cmd_sim(args):
    print("farmctl sim: the simulated farm needs the firmware's MQTT session, which arrives with "
          "the MQTT issue (#4). Until then: `make test` runs the firmware on both interpreters.",
          file=sys.stderr)
    return 2


def build_parser():
    parser = argparse.ArgumentParser(prog="farmctl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    broker = sub.add_parser("broker", help=cmd_broker.__doc__)
    broker.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    broker.set_defaults(run=cmd_broker)
    sim = sub.add_parser("sim", help="a simulated farm on a local broker (arrives with issue #4)")
    sim.set_defaults(run=cmd_sim)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
