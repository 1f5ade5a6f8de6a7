"""`farmctl provision OUT --device ID ...`: broker accounts, a per-device ACL and TLS
for a fleet, written into the folder OUT for mosquitto and for `farmctl deploy`.

  ca.crt, ca.key            the fleet's certificate authority (EC P-256, 10 years)
  server.crt, server.key    the broker's certificate for the --host names (EC P-256, 2 years)
  passwd, acl               the devices' accounts (mosquitto's PBKDF2-SHA512 password file, as
                            mosquitto_passwd writes it) and their ACL, from each profile's
                            topics: a device publishes only its telemetry, status,
                            command_response and alert, and reads only its commands, its
                            config and the broadcast
  backend.passwd,           the backend account, which reads those and writes commands and
  backend.acl               configs
  mosquitto.conf            to include in the broker's config, before any security setting
                            (it sets per_listener_settings): two TLS listeners, no
                            anonymous clients.
                            --port (default 8883) for the devices: only their accounts, and
                            each connects under its own client id, its user name
                            (use_username_as_clientid), so a device's credentials cannot
                            take another device's client id and knock it off the broker.
                            --backend-port (default 8884) for the backend: only its account,
                            under any client ids (farmctl send and watch, services)
  backend.json              the backend account (user, password, CA, broker: the backend port)
  devices/ID/               what goes on each device: config.json (identity and profile),
                            secrets.json (broker, credentials, signing key), ca.crt; `farmctl
                            deploy --config ... --secrets ...` sends all three

Passwords are random (144 bits), signing keys (--signing) 256 bits; private files are
mode 600. Running it again adds devices and keeps every existing password, key and
certificate: --rotate gives new passwords (and keys) to the devices named (all when
none is), --rotate-backend to the backend account. A device named again with other
identity options (--profile, --farm, ...) gets its topics re-derived. To remove a
device, delete its folder devices/ID and run it again (no device named).

A profile whose topics are not per device (smartfarm: one telemetry topic for every
farm, commands per farm; harit: everything shared) cannot be split by an ACL: those
topics are listed as shared, in the acl file and on the console."""
import argparse
import base64
import hashlib
import ipaddress
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from firmware.profiles import NAMES as PROFILES
from firmware.profiles import topic_templates

CA_DAYS = 3650
SERVER_DAYS = 825  # what browsers accept; a device only checks the CA and the name
PASSWORD_BYTES = 18  # 144 bits, 24 characters of base64url
KEY_BYTES = 32
# mosquitto_passwd's own choices. With random passwords the work factor does not matter:
# 2**144 guesses are out of reach at any iteration count.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
DEFAULT_PORT = 8883
DEFAULT_BACKEND_PORT = 8884
DEFAULT_BACKEND = "backend"
SETTINGS = "provision.json"
CA_ON_DEVICE = "ca.crt"  # relative: the device's working folder is its "/"
# What a device publishes and what it reads (PROTOCOL.md, Topics).
DEVICE_WRITES = ("telemetry", "status", "command_response", "alert")
PLACEHOLDER = re.compile(r"{(\w+)}")


class ProvisionError(Exception):
    """Why nothing was written, in words for the user."""


# --- files ---

def write_file(path, data, private=False):
    """Replace path with data (text or bytes) in one rename; mode 600 when private,
    set before a byte is written."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(temporary, path)


def _private_folder(path):
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ProvisionError(f"{path}: {exc}") from None


# --- passwords: mosquitto's "$7$" format ---

def hash_password(password, salt=None, iterations=PBKDF2_ITERATIONS):
    """A password file entry's hash: $7$iterations$salt$hash, base64, PBKDF2-HMAC-SHA512."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def password_matches(entry, password):
    """Whether a $7$ hash (ours or mosquitto_passwd's) is that of password."""
    parts = entry.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
    except ValueError:
        return False
    return secrets.compare_digest(hash_password(password, salt, int(parts[2])), entry)


def read_password_file(path):
    """{user: hash} of a mosquitto password file (empty when there is none)."""
    entries = {}
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            user, sep, entry = line.partition(":")
            if sep:
                entries[user] = entry
    return entries


# --- certificates (openssl command) ---

def _openssl(*args, cwd):
    try:
        subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ProvisionError("the openssl command is not installed") from None
    except subprocess.CalledProcessError as exc:
        raise ProvisionError(f"openssl {args[0]} failed: {exc.stderr.strip()}") from None


def _reserve_private(path):
    """An empty mode-600 file for openssl to write a key into: it is never readable by others."""
    Path(path).unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def subject_alt_names(hosts):
    """subjectAltName entries: an IP address is given as IP and as DNS, since mbedtls
    before 3.x (MicroPython's TLS) matches the server name against DNS entries only."""
    names = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            names += [f"IP:{host}", f"DNS:{host}"]
        except ValueError:
            names.append(f"DNS:{host}")
    return ",".join(names)


def make_ca(folder, common_name, days=CA_DAYS):
    """ca.key (mode 600) and ca.crt, EC P-256, in folder; returns ca.crt's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _reserve_private(folder / "ca.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", str(days), "-subj", f"/CN={common_name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=folder)
    return folder / "ca.crt"


def make_server_cert(folder, hosts, days=SERVER_DAYS):
    """server.key (mode 600) and server.crt for hosts, signed by folder's CA; returns
    (server.crt, server.key)."""
    folder = Path(folder)
    _reserve_private(folder / "server.key")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={hosts[0]}", cwd=folder)
    extensions = folder / "server.ext"
    extensions.write_text(f"subjectAltName={subject_alt_names(hosts)}\n"
                          "basicConstraints=critical,CA:FALSE\n"
                          "keyUsage=critical,digitalSignature\n"
                          "extendedKeyUsage=serverAuth\n")
    try:
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-set_serial", str(secrets.randbits(63)), "-out", "server.crt", "-days", str(days),
                 "-extfile", "server.ext", cwd=folder)
    finally:
        extensions.unlink(missing_ok=True)
        (folder / "server.csr").unlink(missing_ok=True)
    return folder / "server.crt", folder / "server.key"


def certificate_hosts(path):
    """The DNS and IP names of a certificate's subjectAltName, as a set."""
    result = subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-ext", "subjectAltName"],
                            capture_output=True, text=True, timeout=60)
    names = re.findall(r"(?:DNS|IP Address):([^,\s]+)", result.stdout)
    return set(names)


# --- topics and the ACL ---

def device_config(device_id, profile, prefix, farm_id, org_id):
    """The identity part of a device's config.json, checked as the firmware checks it."""
    from firmware import config

    if not device_id:
        raise ProvisionError("a device id must not be empty")
    fragment = {"device_id": device_id, "profile": profile, "farm_id": farm_id or "",
                "org_id": org_id or "", "mqtt": {"prefix": prefix}}
    try:
        config.apply(config.defaults(), fragment)
    except config.ConfigError as exc:
        raise ProvisionError(f"device {device_id}: " + "; ".join(f"{k}: {r}" for k, r in exc.problems)) from None
    values = {"prefix": prefix, "device_id": device_id, "farm_id": farm_id, "org_id": org_id}
    for template in topic_templates(profile).values():
        for name in PLACEHOLDER.findall(template):
            if not values.get(name):
                option = {"farm_id": "--farm", "org_id": "--org"}.get(name, name)
                raise ProvisionError(f"profile {profile}'s topic {template} needs {option}")
    return fragment


def _check_account_name(name):
    """The backend's account name follows a device id's rules (no ':' for the password
    file, no space or wildcard for the ACL)."""
    from firmware import config

    if not name:
        raise ProvisionError("the backend account's name must not be empty")
    try:
        config.apply(config.defaults(), {"device_id": name})
    except config.ConfigError as exc:
        raise ProvisionError(f"backend account {name!r}: {exc.reason}") from None


def _profile(cfg, device_id=None):
    from firmware.profiles import Profile

    return Profile(cfg["profile"], {"prefix": cfg["mqtt"]["prefix"], "device_id": device_id or cfg["device_id"],
                                    "farm_id": cfg["farm_id"], "org_id": cfg["org_id"]})


def discovery_topics(cfg, device_id=None):
    """(device config, Home Assistant's status) topics of a device's Home Assistant
    discovery, or None: as firmware/link.py derives them (farmnode profile only)."""
    ha = cfg.get("homeassistant") or {}
    if cfg["profile"] != "farmnode" or not ha.get("discovery", True):
        return None
    prefix = ha.get("prefix", "homeassistant")
    return f"{prefix}/device/{device_id or cfg['device_id']}/config", f"{prefix}/status"


def device_topics(cfg):
    """(writes, reads, shared) of one device: the topics it publishes and those it reads,
    in order, and which of them are not its alone (the same for another device id).
    Under Home Assistant's prefix: its own device config, and Home Assistant's status."""
    mine = _profile(cfg).topics
    another = _profile(cfg, cfg["device_id"] + "-other").topics
    writes = _unique(mine[name] for name in DEVICE_WRITES if mine.get(name))
    reads = _unique(_profile(cfg).subscriptions())
    discovery = discovery_topics(cfg)
    if discovery is not None:
        writes.append(discovery[0])
        reads.append(discovery[1])
    # The broadcast is everyone's by design (and only the backend writes it).
    names = [name for name in mine if mine[name] in writes + reads and name != "broadcast"]
    shared = _unique(mine[name] for name in names if mine[name] == another[name])
    if mine.get("broadcast") and mine.get("commands") == mine["broadcast"]:
        raise ProvisionError(f"device {cfg['device_id']}: its commands topic would be the broadcast topic")
    return writes, reads, shared


def backend_topics(cfg):
    """(reads, writes) of the backend for one device's profile: its topics with a `+`
    for the device."""
    every = _profile(cfg, "+").topics
    reads = _unique(every[name] for name in DEVICE_WRITES if every.get(name))
    writes = _unique(every[name] for name in ("commands", "config", "broadcast") if every.get(name))
    discovery = discovery_topics(cfg, "+")
    if discovery is not None:  # a Home Assistant on the backend's account
        reads.append(discovery[0])
        writes.append(discovery[1])
    return reads, writes


def _unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


ACL_HEADER = "# Regenerated by farmctl provision on every run: edit the devices, not this file."


def device_acl_text(configs):
    """mosquitto's ACL of the devices' listener, for the devices' configs (sorted by id)."""
    lines = ["# farmctl provision: each device reaches only its own topics (PROTOCOL.md, Topics).",
             ACL_HEADER, ""]
    for cfg in configs:
        writes, reads, shared = device_topics(cfg)
        lines.append(f"# {cfg['device_id']}: profile {cfg['profile']}")
        if shared:
            lines.append("# shared with other devices, so not protected from them: " + ", ".join(shared))
        lines.append(f"user {cfg['device_id']}")
        lines += [f"topic write {topic}" for topic in writes]
        lines += [f"topic read {topic}" for topic in reads]
        lines.append("")
    return "\n".join(lines)


def backend_acl_text(configs, backend):
    """mosquitto's ACL of the backend's listener: every device's messages, and commands
    and configs to them."""
    reads, writes = set(), set()
    for cfg in configs:
        device_reads, device_writes = backend_topics(cfg)
        reads.update(device_reads)
        writes.update(device_writes)
    lines = ["# farmctl provision: the backend reads every device's messages and writes their commands.",
             ACL_HEADER, "", f"user {backend}"]
    lines += [f"topic read {topic}" for topic in sorted(reads)]
    lines += [f"topic write {topic}" for topic in sorted(writes)]
    return "\n".join(lines) + "\n"


def mosquitto_config(out, port, backend_port, bind):
    """The listeners and access settings, with absolute paths, to include in mosquitto.conf."""
    out = Path(out).resolve()
    address = f" {bind}" if bind else ""
    tls = [f"cafile {out / 'ca.crt'}", f"certfile {out / 'server.crt'}", f"keyfile {out / 'server.key'}"]
    return "\n".join([
        "# farmctl provision: TLS listeners for the devices and for the backend, each with its",
        "# own accounts and ACL. Include this file before any security setting.",
        "per_listener_settings true",
        "# mosquitto leaves Nagle on: small back-to-back packets would wait ~40 ms",
        "set_tcp_nodelay true",
        "",
        "# The devices. Client ids are global across listeners, and a new connection with a",
        "# client id in use disconnects the old one: each device gets its user name as client",
        "# id (PROTOCOL.md: client id = device_id), so its credentials cannot take another's.",
        f"listener {port}{address}",
        *tls,
        f"password_file {out / 'passwd'}",
        f"acl_file {out / 'acl'}",
        "allow_anonymous false",
        "use_username_as_clientid true",
        "",
        "# The backend: its account only (no device's credentials), any client ids.",
        f"listener {backend_port}{address}",
        *tls,
        f"password_file {out / 'backend.passwd'}",
        f"acl_file {out / 'backend.acl'}",
        "allow_anonymous false",
    ]) + "\n"


# --- the run ---

def _device_ids(args):
    ids = []
    for item in args.device or ():
        ids += [part.strip() for part in item.split(",") if part.strip()]
    if args.devices_file:
        try:
            text = Path(args.devices_file).read_text()
        except OSError as exc:
            raise ProvisionError(f"{args.devices_file}: {exc.strerror or exc}") from None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                ids.append(line)
    return _unique(ids)


def _existing_devices(out):
    """{device_id: (config, secrets)} of the devices provisioned before."""
    devices = {}
    folder = out / "devices"
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            cfg = _read_json(path / "config.json")
            secret = _read_json(path / "secrets.json")
            if cfg is not None and secret is not None:
                devices[cfg["device_id"]] = (cfg, secret)
    return devices


def provision(args, out_stream=None):
    out_stream = out_stream or sys.stdout
    out = Path(args.out)
    settings = _read_json(out / SETTINGS) or {}
    hosts = args.host or settings.get("hosts") or list(DEFAULT_HOSTS)
    port = args.port or settings.get("port") or DEFAULT_PORT
    backend_port = args.backend_port or settings.get("backend_port") or DEFAULT_BACKEND_PORT
    bind = args.bind if args.bind is not None else settings.get("bind")
    backend = args.backend or settings.get("backend") or DEFAULT_BACKEND
    named = _device_ids(args)
    existing = _existing_devices(out) if out.exists() else {}
    if not named and not existing:
        raise ProvisionError("no devices: give --device ID (or --devices-file FILE)")
    _check_account_name(backend)
    _check_ports(port, backend_port)
    if backend in named or backend in existing:
        raise ProvisionError(f"{backend!r} is both a device and the backend account")
    devices = dict(existing)
    for device_id in named:
        devices[device_id] = _with_identity(args, device_id, existing.get(device_id))
    configs = [devices[d][0] for d in sorted(devices)]
    acl = device_acl_text(configs)  # refuses a bad set before anything is written
    backend_acl = backend_acl_text(configs, backend)

    _private_folder(out)
    made = _certificates(out, hosts)
    # Both files: before the backend had its own listener, its entry was in passwd.
    passwords = {**read_password_file(out / "passwd"), **read_password_file(out / "backend.passwd")}
    account = _read_json(out / "backend.json") or {}
    if account.get("user") != backend or args.rotate_backend or not account.get("password"):
        account = {"user": backend, "password": _new_password()}
    account.update({"ca": str((out / "ca.crt").resolve()), "broker": f"{hosts[0]}:{backend_port}"})
    backend_entry = _entry(passwords.get(backend), account["password"])
    entries = {}
    rotate = set(named or existing) if args.rotate else set()
    for device_id in sorted(devices):
        cfg, secret = devices[device_id]
        secret = _device_secrets(secret, device_id, hosts[0], port, device_id in rotate,
                                 args.signing and device_id in named)
        entries[device_id] = _entry(passwords.get(device_id), secret["mqtt"]["password"])
        folder = out / "devices" / device_id
        _private_folder(folder.parent)
        _private_folder(folder)
        write_file(folder / "config.json", json.dumps(cfg, indent=2) + "\n")
        write_file(folder / "secrets.json", json.dumps(secret, indent=2) + "\n", private=True)
        write_file(folder / CA_ON_DEVICE, (out / "ca.crt").read_bytes())
    write_file(out / "passwd", "".join(f"{user}:{entry}\n" for user, entry in entries.items()), private=True)
    write_file(out / "backend.passwd", f"{backend}:{backend_entry}\n", private=True)
    write_file(out / "acl", acl)
    write_file(out / "backend.acl", backend_acl)
    write_file(out / "mosquitto.conf", mosquitto_config(out, port, backend_port, bind))
    write_file(out / "backend.json", json.dumps(account, indent=2) + "\n", private=True)
    write_file(out / SETTINGS, json.dumps({"hosts": hosts, "port": port, "backend_port": backend_port,
                                           "bind": bind, "backend": backend}, indent=2) + "\n")

    new = [d for d in named if d not in existing]
    print(f"{out}: {len(devices)} devices ({len(new)} new: {', '.join(new) or 'none'}), backend account "
          f"{backend!r}" + (f"; made {' and '.join(made)}" if made else "")
          + (f"; new passwords for {', '.join(sorted(rotate))}" if rotate else ""), file=out_stream)
    for cfg in configs:
        shared = device_topics(cfg)[2]
        if shared:
            print(f"warning: {cfg['device_id']} (profile {cfg['profile']}) shares {', '.join(shared)} with "
                  "other devices: the ACL cannot keep them apart there", file=out_stream)
    print(f"broker: include {out.resolve() / 'mosquitto.conf'} first in mosquitto's config (TLS: devices on "
          f"port {port}, the backend on port {backend_port})", file=out_stream)
    print(f"devices: farmctl deploy --config {out}/devices/ID/config.json --secrets {out}/devices/ID/secrets.json "
          "(it copies ca.crt too)", file=out_stream)
    print(f"backend: farmctl send|watch --provision {out} ...", file=out_stream)
    return 0


def _with_identity(args, device_id, old):
    """(config, secrets) of a device named on the command line: its identity from the
    options, else as provisioned before, else the defaults; the rest of its files kept."""
    old_cfg, old_secret = old or (None, None)
    identity = device_config(device_id, args.profile or _get(old_cfg, "profile") or "farmnode",
                             args.prefix or _get(old_cfg, "mqtt", "prefix") or "farm",
                             args.farm if args.farm is not None else _get(old_cfg, "farm_id"),
                             args.org if args.org is not None else _get(old_cfg, "org_id"))
    cfg = dict(old_cfg or {})
    cfg.update({k: v for k, v in identity.items() if k != "mqtt"})
    cfg["mqtt"] = dict(cfg.get("mqtt", {}), **identity["mqtt"])
    return cfg, old_secret or {}


def _check_ports(port, backend_port):
    for name, value in (("--port", port), ("--backend-port", backend_port)):
        if not 0 < value < 65536:
            raise ProvisionError(f"{name} must be between 1 and 65535, got {value}")
    if port == backend_port:
        raise ProvisionError(f"the devices and the backend need a listener each, both are on port {port}: "
                             "give --port or --backend-port another")


def _certificates(out, hosts):
    """Make the CA if there is none, and the server certificate if there is none, the CA
    is new or the host names changed; returns what was made."""
    made = []
    if not (out / "ca.crt").exists() or not (out / "ca.key").exists():
        make_ca(out, f"farmnode CA {out.resolve().name}")
        made.append("CA")
    if made or not (out / "server.crt").exists() or certificate_hosts(out / "server.crt") != set(hosts):
        make_server_cert(out, hosts)
        made.append("server certificate")
    return made


def _device_secrets(secret, device_id, host, port, rotate, give_key):
    """A device's secrets.json: its broker settings, its password (kept unless rotate),
    its signing key (kept; new when rotate; given when give_key and it has none)."""
    password = _get(secret, "mqtt", "password")
    if rotate or not password:
        password = _new_password()
    secret = dict(secret, mqtt=dict(secret.get("mqtt", {}), host=host, port=port, user=device_id,
                                    password=password, tls=True, ca=CA_ON_DEVICE))
    key = _get(secret, "signing", "key")
    if (give_key and not key) or (key and rotate):
        secret["signing"] = dict(secret.get("signing", {}), key=secrets.token_hex(KEY_BYTES))
    return secret


def _get(tree, *keys):
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def _new_password():
    # Never with a leading "-": given on a command line (--password X) it reads as an option.
    while True:
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        if not password.startswith("-"):
            return password


def _entry(old_entry, password):
    """The password file entry: the old one while it still matches (no churn), else new."""
    if old_entry and password_matches(old_entry, password):
        return old_entry
    return hash_password(password)


def register(sub):
    parser = sub.add_parser("provision", help="broker accounts, per-device ACL and TLS for a fleet",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", metavar="OUT", help="the folder to write (created; kept between runs)")
    parser.add_argument("--device", action="append", metavar="ID", help="a device id (repeat, or ID,ID,...)")
    parser.add_argument("--devices-file", metavar="FILE", help="device ids, one per line (# comments)")
    parser.add_argument("--profile", choices=sorted(PROFILES), help="the devices' backend profile (default farmnode)")
    parser.add_argument("--prefix", help="the topics' {prefix} (default farm)")
    parser.add_argument("--farm", metavar="ID", help="farm_id (profile smartfarm's topics need it)")
    parser.add_argument("--org", metavar="ID", help="org_id (profile dese's topics need it)")
    parser.add_argument("--backend", metavar="NAME", help=f"the backend's account (default {DEFAULT_BACKEND})")
    parser.add_argument("--host", action="append", metavar="NAME",
                        help="the broker's name or address as devices reach it (repeat; the first goes in "
                             f"secrets.json; default {', '.join(DEFAULT_HOSTS)})")
    parser.add_argument("--port", type=int, metavar="PORT",
                        help=f"the devices' TLS listener's port, in their secrets.json (default {DEFAULT_PORT})")
    parser.add_argument("--backend-port", type=int, metavar="PORT",
                        help=f"the backend's TLS listener's port, in backend.json (default {DEFAULT_BACKEND_PORT})")
    parser.add_argument("--bind", metavar="ADDRESS", help="both listeners on this address only (default: all)")
    parser.add_argument("--signing", action="store_true",
                        help="give the devices named a command signing key (signing.key)")
    parser.add_argument("--rotate", action="store_true",
                        help="new passwords and keys for the devices named (all when none is)")
    parser.add_argument("--rotate-backend", action="store_true", help="a new password for the backend account")
    parser.set_defaults(run=run)


def run(args):
    try:
        return provision(args)
    except ProvisionError as exc:
        print(f"farmctl provision: {exc}", file=sys.stderr)
        return 1
