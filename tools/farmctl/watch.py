"""`farmctl watch`: the fleet as a backend sees it, one row per device: its status
(from the retained status messages, so a device that died shows its Last Will,
"offline"), its last telemetry (readings, relays, seq) and how old that is.

Devices are discovered, not listed: the profile's status and telemetry topics are
subscribed with a wildcard in place of the device (for farmnode, `farm/+/status` and
`farm/+/telemetry`). A device is named by its topic, else by its payload (device_id,
node_id, publisher_id; by farm_id for a profile whose topics name only the farm).

On a terminal the table is redrawn in place every second, with the last alerts under
it; otherwise each status, telemetry and alert message is printed as a line as it
arrives (a reading with its relays' states), and the table at the end.
`--once S` listens S seconds, prints the table once and exits. A fleet taller than the
terminal is summed up instead: devices by status and by age of their last telemetry,
then the devices most in need of a look (not online, then the longest silent).

A device in deep sleep says so in its retained status ("sleeping", with next_wake_s):
it shows with when it wakes, and counts as well, not silent, unless its wake is more
than SLEEP_GRACE_S late."""
import argparse
import json
import shutil
import sys
import threading
import time
from datetime import datetime

from farmctl.link import BrokerError, add_link_options, broker_link, connect, topic_values
from firmware.profiles import topic_templates

# Where each telemetry name may hide in a profile's payload (lower-cased keys).
COLUMNS = (
    ("moist%", ("moisture",)),
    ("temp", ("temp", "temperaturec", "temperature")),
    ("soil", ("soil_temp",)),
    ("hum%", ("humidity", "humiditypct")),
    ("N", ("n",)),
    ("P", ("p",)),
    ("K", ("k",)),
    ("EC", ("ec", "ec_salinity")),
    ("pH", ("ph", "soil_ph")),
    ("wind", ("wind_speed",)),
    ("batt", ("battery_v",)),
)
ALERTS_SHOWN = 5  # under the table on a terminal: the last alerts (an automation's starts and stops)
# Payload fields that name the device, in the order they are trusted.
ID_KEYS = ("device_id", "node_id", "publisher_id")
# A sleeping device's wake takes a boot, Wi-Fi and the broker before it says online:
# later than this past its next_wake_s, it needs a look.
SLEEP_GRACE_S = 30


# --- the fleet table (shared with sim) ---

def flatten(payload, out=None):
    """Every leaf of a payload by its lower-cased key (the first one seen wins)."""
    out = {} if out is None else out
    if isinstance(payload, dict):
        for key, value in payload.items():
            if isinstance(value, dict):
                flatten(value, out)
            else:
                out.setdefault(key.lower(), value)
    return out


def is_answer(payload):
    """A command's answer where some profiles put it (smartfarm: telemetry, iotnode: status)."""
    return "command_id" in payload or payload.get("type") == "STATUS"


class TopicPattern:
    """A profile's topic template as a subscription: the placeholders we know filled in,
    the others a `+`; match() gives back what a topic has in their place. (Every
    placeholder of PROFILES is a whole topic level.)"""

    def __init__(self, template, known):
        self.levels = []  # (literal, None) or (None, placeholder)
        for level in template.split("/"):
            name = level[1:-1] if level.startswith("{") and level.endswith("}") else None
            if name is not None and known.get(name):
                self.levels.append((known[name], None))
            else:
                self.levels.append((level, None) if name is None else (None, name))
        self.filter = "/".join("+" if name else literal for literal, name in self.levels)

    def match(self, topic):
        parts = topic.split("/")
        if len(parts) != len(self.levels):
            return None
        fields = {}
        for part, (literal, name) in zip(parts, self.levels):
            if name is not None:
                fields[name] = part
            elif part != literal:
                return None
        return fields


def status_age_s(payload):
    """How long ago a status was sent, by its "ts" (ISO 8601 UTC): 0 without one, or when
    the device's clock is ahead of ours."""
    ts = payload.get("ts")
    if not isinstance(ts, str):
        return 0.0
    try:
        sent = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
    return max(0.0, time.time() - sent)


class Fleet:
    """One row per device, from status and telemetry messages of one profile.
    known: placeholder values to subscribe under; devices: {device_id: farm_id} to list
    before they are heard from; speed: the devices' simulated seconds per real second
    (a sim's field speed: a sleeping node's next_wake_s passes that much faster).
    Not thread-safe (Monitor locks)."""

    def __init__(self, profile, known, devices=None, speed=1.0):
        self.speed = float(speed)
        topics = topic_templates(profile)
        self.status_topic = TopicPattern(topics["status"], known)
        self.telemetry_topic = TopicPattern(topics["telemetry"], known)
        self.alert_topic = TopicPattern(topics["alert"], known) if topics.get("alert") else None
        self.alerts = []  # the last ALERTS_SHOWN alerts, as lines
        self.rows = {}
        self.farm_devices = {}  # farm_id -> device_id, for payloads that name only the farm
        for device_id, farm_id in (devices or {}).items():
            self._row(device_id)
            if farm_id:
                self.farm_devices[farm_id] = device_id

    def subscriptions(self):
        topics = {self.status_topic.filter, self.telemetry_topic.filter}
        if self.alert_topic is not None:
            topics.add(self.alert_topic.filter)
        return sorted(topics)

    def take(self, topic, payload):
        """Update the fleet from one message; (device, "status" | "telemetry" | "alert")
        or None when the message is none of them (a command's answer, another topic)."""
        if not isinstance(payload, dict) or is_answer(payload):
            return None
        fields = self.status_topic.match(topic)
        alert = None if self.alert_topic is None else self.alert_topic.match(topic)
        if fields is not None and isinstance(payload.get("status"), str):
            kind = "status"
        elif alert is not None and isinstance(payload.get("message"), str):
            kind, fields = "alert", alert
        else:
            kind = "telemetry"
            fields = self.telemetry_topic.match(topic)
        device = None if fields is None else self._device(fields, payload)
        if device is None:
            return None
        row = self._row(device)
        if kind == "status":
            row["status"] = payload["status"]
            wake_s = payload.get("next_wake_s")
            if row["status"] == "sleeping" and isinstance(wake_s, (int, float)) and not isinstance(wake_s, bool):
                # From when it was sent (its ts: a retained one may be older), else from when it came.
                row["wake_at"] = time.monotonic() - status_age_s(payload) + wake_s / self.speed
            else:
                row["wake_at"] = None
            return device, kind
        if kind == "alert":
            self.alerts = (self.alerts + [self.line(device, kind, payload)])[-ALERTS_SHOWN:]
            return device, kind, payload
        row["values"] = flatten(payload)
        relays = payload.get("relays")
        row["relays"] = relays if isinstance(relays, dict) else {}
        row["at"] = time.monotonic()
        return device, kind

    def _device(self, fields, payload):
        device = fields.get("device_id") or next(
            (payload[key] for key in ID_KEYS if isinstance(payload.get(key), str)), None)
        farm_id = fields.get("farm_id") or payload.get("farm_id")
        if device is None:  # smartfarm's telemetry: the farm's device, once its status named it
            return self.farm_devices.get(farm_id, farm_id if isinstance(farm_id, str) else None)
        if isinstance(farm_id, str):
            self.farm_devices[farm_id] = device
        return device

    def _row(self, device):
        return self.rows.setdefault(device, {"status": "-", "at": None, "values": {}, "relays": {},
                                             "wake_at": None})

    def status(self, device, now=None):
        """The device's status as shown: a sleeping one's with when it wakes (waking:
        its wake has come, and it has SLEEP_GRACE_S to say online)."""
        row = self.rows[device]
        if row["status"] != "sleeping" or row["wake_at"] is None:
            return row["status"]
        wake_in = row["wake_at"] - (time.monotonic() if now is None else now)
        if wake_in >= 0:
            return f"sleeping (next wake in {wake_in:.0f} s)"
        if wake_in >= -SLEEP_GRACE_S:
            return "sleeping (waking)"
        return f"sleeping (wake {-wake_in:.0f} s late)"

    def well(self, device, now=None):
        """Online, or asleep with its wake not long past: nothing to look at."""
        row = self.rows[device]
        if row["status"] == "online":
            return True
        if row["status"] != "sleeping":
            return False
        now = time.monotonic() if now is None else now
        return row["wake_at"] is None or now - row["wake_at"] <= SLEEP_GRACE_S

    def readings(self, device):
        values = self.rows[device]["values"]
        cells = []
        for title, keys in COLUMNS:
            value = next((values[k] for k in keys if k in values), None)
            cells.append(f"{title}={'-' if value is None else value}")
        return " ".join(cells)

    def line(self, device, kind, payload=None):
        """One message as a line of a log: `node-01 telemetry moist%=... | irrigation=1`,
        `node-01 alert info: irrigation started: dry: moisture 45.1 < 46`."""
        if kind == "status":
            return f"{device} status {self.status(device)}"
        if kind == "alert":
            return f"{device} alert {payload.get('severity', '?')}: {payload['message']}"
        relays = " ".join(f"{name}={state}" for name, state in self.rows[device]["relays"].items())
        return f"{device} telemetry {self.readings(device)}{' | ' + relays if relays else ''}"

    def table(self, now=None, devices=None):
        """The rows of devices, in that order (default: every device, sorted)."""
        now = time.monotonic() if now is None else now
        lines = [("device", "status", "seq", "age", "relays", "readings")]
        for device in sorted(self.rows) if devices is None else devices:
            row = self.rows[device]
            seq = row["values"].get("seq")
            age = "-" if row["at"] is None else f"{now - row['at']:.0f}s"
            relays = " ".join(f"{k}={v}" for k, v in row["relays"].items()) or "-"
            lines.append((device, self.status(device, now), "-" if seq is None else str(seq), age, relays,
                          self.readings(device)))
        return align(lines)

    def summary(self, limit, now=None):
        """The table of a fleet with more than limit devices: a count line, then the
        limit devices most in need of a look, not well first (see well()), then the
        longest silent (a device asleep is not: its silence is its sleep)."""
        now = time.monotonic() if now is None else now

        def attention(device):
            row = self.rows[device]
            well = self.well(device, now)
            if well and row["status"] == "sleeping":
                silent = 0
            else:
                silent = float("inf") if row["at"] is None else int(now - row["at"])
            return well, -silent, device

        shown = sorted(self.rows, key=attention)[:limit]
        return "\n".join([self.counts(now), self.table(now, shown), f"... and {len(self.rows) - len(shown)} more"])

    def counts(self, now=None):
        """One line: devices by status (sleeping ones late for their wake apart), and
        how many sent telemetry in the last 10 s."""
        now = time.monotonic() if now is None else now
        statuses = {}
        recent = 0
        for device, row in self.rows.items():
            status = row["status"]
            if status == "sleeping" and not self.well(device, now):
                status = "late to wake"
            statuses[status] = statuses.get(status, 0) + 1
            recent += row["at"] is not None and now - row["at"] <= 10
        by_status = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        return f"{len(self.rows)} devices: {by_status}; {recent} sent telemetry in the last 10 s"


def screen_rows():
    """Device rows that fit on the terminal under a summary's three lines of text."""
    return max(5, shutil.get_terminal_size().lines - 4)


def align(lines):
    """Columns padded to their widest cell (the last one left as it is)."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
    return "\n".join("  ".join([cell.ljust(w) for cell, w in zip(line, widths)] + [line[-1]])
                     for line in lines)


class Monitor:
    """A Fleet kept up to date by a paho client in its own thread. echo: a stream that
    gets one line per message (for a log, not a terminal), or None. prepare: TLS and
    account, as link.connect takes it."""

    def __init__(self, address, fleet, name, echo=None, prepare=None, persistent=False):
        """persistent: a session the broker keeps while the monitor is away (a broker
        outage the sim makes): what the nodes send as it comes back is not missed."""
        self.fleet = fleet
        self.echo = echo
        self.lock = threading.Lock()
        self.client = connect(address, name, on_connect=self._subscribe, on_message=self._on_message,
                              prepare=prepare, persistent=persistent)
        self.client.reconnect_delay_set(0.5, 5)
        self.client.loop_start()

    def _subscribe(self, client):
        for topic in self.fleet.subscriptions():
            client.subscribe(topic, qos=1)

    def _on_message(self, client, userdata, msg):
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            event = self.fleet.take(msg.topic, payload)
            if event is not None and self.echo is not None:
                self.echo.write(self.fleet.line(*event) + "\n")
                self.echo.flush()

    def table(self):
        with self.lock:
            return self.fleet.table()

    def show(self, out, limit=None, footer=""):
        """The table, in place of the last one on a terminal; a fleet with more than
        limit devices (default on a terminal: what fits on it) summed up instead;
        footer: lines shown under it."""
        tty = out.isatty()
        if limit is None and tty:
            limit = screen_rows()
        with self.lock:
            big = limit is not None and len(self.fleet.rows) > limit
            text = self.fleet.summary(limit) if big else self.fleet.table()
            if tty and self.fleet.alerts:
                text += "\n\nlast alerts:\n" + "\n".join(self.fleet.alerts)
        out.write(("\x1b[H\x1b[2J" if tty else "") + text + "\n" + (footer + "\n" if footer else ""))
        out.flush()

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


# --- the command ---

def register(sub):
    parser = sub.add_parser("watch", help="the fleet, live: status and last telemetry of each device",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_link_options(parser)
    parser.add_argument("--once", type=float, metavar="S",
                        help="listen S seconds, print the table once and exit")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.set_defaults(run=run)


def run(args, out=None):
    out = out or sys.stdout
    fleet = Fleet(args.profile, topic_values(args))
    streaming = args.once is None and not out.isatty()
    try:
        address, prepare = broker_link(args)
        monitor = Monitor(address, fleet, "watch", echo=out if streaming else None, prepare=prepare)
    except BrokerError as exc:
        print(f"farmctl watch: {exc}", file=sys.stderr)
        return 2
    try:
        if args.once is not None:
            time.sleep(args.once)
        else:
            _follow(monitor, out, args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        monitor.close()
    monitor.show(out)
    return 0


def _follow(monitor, out, duration):
    """Until Ctrl-C or the duration: the table redrawn every second on a terminal
    (otherwise the monitor's echo prints each message)."""
    deadline = None if duration is None else time.monotonic() + duration
    while deadline is None or time.monotonic() < deadline:
        time.sleep(1 if deadline is None else max(0, min(1, deadline - time.monotonic())))
        if out.isatty():
            monitor.show(out)
