# The node's configuration: defaults, then config.json, then secrets.json from the
# device filesystem. Validated as a whole with errors that name the key and the reason;
# saved atomically, config.json holding only what differs from the defaults.
# Loaded while a config is read, changed or saved, and unloaded after
# (firmware.release_config): the running node keeps its config dict, not the code
# that checks it.
import json

from atomicfile import exists, recover, write_atomic
from firmware import in_root
from firmware.defaults import DEFAULTS, MISSING, NAMED, SECRET_KEYS, child, entry, equal, is_object, tree
from firmware.defaults import public  # noqa: F401 (part of the config API)
from firmware.errors import ConfigError
from micropython import const

CONFIG_FILE = "config.json"
SECRETS_FILE = "secrets.json"

_MAX_DROP_ROUNDS = const(4)


def defaults():
    """A new config at its defaults."""
    return tree()


# The rules (firmware/schema.py) are loaded when a config is checked, not to save one
# already checked (a set_interval).

def check(cfg):
    """All problems of a complete config, as a list of (key, reason)."""
    from firmware import schema

    return schema.check(cfg)


def validate(cfg):
    """cfg, or ConfigError naming every bad key."""
    from firmware import schema

    return schema.validate(cfg)


# --- merging ---

def merge(base, patch, path="", share=False):
    """A new config: patch laid over base. Named entries (relays) are filled from their
    template and removed by a null; plain dicts merge key by key. share: what the patch
    does not touch is base's own, not a copy (a change of one setting then costs a few
    small dicts, not a second config): read the result, never change it in place."""
    out = {}
    for key in base:
        out[key] = base[key] if share else _copy(base[key])
    if type(patch) is not dict:
        return out
    for key in patch:
        value = patch[key]
        here = path + key
        if here in NAMED and type(value) is dict and type(out.get(key)) is dict:
            entries = dict(out[key]) if share else out[key]
            out[key] = entries
            for name in value:
                item = value[name]
                if item is None:
                    entries.pop(name, None)
                elif type(item) is dict:
                    entries[name] = merge(entries[name] if name in entries else entry(here), item, here + ".*.",
                                          share)
                else:
                    entries[name] = item  # left for check() to refuse
        elif type(value) is dict and type(out.get(key)) is dict:
            out[key] = merge(out[key], value, here + ".", share)
        else:
            out[key] = _copy(value)
    return out


def _copy(value):
    if type(value) is dict:
        return {key: _copy(value[key]) for key in value}
    if type(value) is list:
        return [_copy(item) for item in value]
    return value


def canonical(data):
    """data (a config, whole or partial) with its short forms written out: "wifi" as a
    list of networks is {"ssid": "", "password": "", "networks": that list}."""
    if type(data) is dict and type(data.get("wifi")) is list:
        data = dict(data)
        data["wifi"] = {"ssid": "", "password": "", "networks": data["wifi"]}
    return data


def apply(cfg, patch):
    """The config that results from a partial update, validated as a whole; cfg is
    untouched, and shares with the result what the patch leaves alone (neither is to be
    changed in place after). Raises ConfigError naming every bad key."""
    if type(patch) is not dict:
        from firmware.schema import type_name

        raise ConfigError([("config", "must be an object, got %s" % type_name(patch))])
    return validate(merge(cfg, canonical(patch), "", True))


def get(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def _drop(tree_, key):
    """Remove a dotted key from a nested dict, if present."""
    parts = key.split(".")
    for part in parts[:-1]:
        tree_ = tree_.get(part) if type(tree_) is dict else None
    if type(tree_) is dict:
        tree_.pop(parts[-1], None)


# --- files ---

def _read_json(path, problems):
    if not exists(path):
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        problems.append((path, "unreadable, ignored: %s" % exc))
        return None
    if type(data) is not dict:
        problems.append((path, "must hold a JSON object, ignored"))
        return None
    return data


def _lay_over(cfg, data, source, problems):
    """cfg with data laid over it; bad keys are dropped (the previous value stays) and reported."""
    for _ in range(_MAX_DROP_ROUNDS):
        candidate = merge(cfg, data)
        found = check(candidate)
        if not found:
            return candidate
        for key, reason in found:
            problems.append((key, "%s (in %s, ignored)" % (reason, source)))
            _drop(data, key)
    problems.append((source, "still invalid after dropping bad keys, ignored"))
    return cfg


def load(root=""):
    """Read the config from root's config.json and secrets.json.

    Returns (config, problems). Never raises for bad files: a file that cannot be read
    is ignored, a bad key keeps its default; each is named in problems as (key, reason).
    Files are never modified here, so a technician can still inspect a bad one."""
    problems = []
    cfg = tree()
    for name in (CONFIG_FILE, SECRETS_FILE):
        file = in_root(root, name)
        recover(file)
        data = canonical(_read_json(file, problems))
        if data is not None:
            cfg = _lay_over(cfg, data, name, problems)
    return cfg, problems


def _split(cfg, template, path, secret):
    """The part of cfg that differs from the defaults (template: their part at path),
    secret keys only or all but them."""
    out = {}
    for key in cfg:
        here = path + key
        value = cfg[key]
        base = child(template, key) if is_object(template) else MISSING
        if type(value) is dict and is_object(base) and here not in NAMED:
            part = _split(value, base, here + ".", secret)
            if part:
                out[key] = part
        elif (here in SECRET_KEYS) == secret and not equal(value, base):
            out[key] = _copy(value)
            if here in NAMED and type(value) is dict and is_object(base):
                for name, _ in base:
                    if name not in value:
                        out[key][name] = None  # a default entry removed stays removed when loaded
    return out


def _store(path, data):
    """Write data as JSON unless the file already holds exactly that (spares the flash)."""
    if _read_json(path, []) == data:
        return False
    write_atomic(path, json.dumps(data))
    return True


def save(cfg, root="", checked=False):
    """Validate (unless checked: cfg came from apply()) and save: settings that differ
    from the defaults to config.json, secrets to secrets.json. Each file is replaced
    atomically and only when it changes."""
    if not checked:
        validate(cfg)
    _store(in_root(root, CONFIG_FILE), _split(cfg, DEFAULTS, "", False))
    _store(in_root(root, SECRETS_FILE), _split(cfg, DEFAULTS, "", True))


def reset(cfg):
    """Back to the defaults, keeping Wi-Fi and broker secrets."""
    return merge(tree(), _split(cfg, DEFAULTS, "", True))
