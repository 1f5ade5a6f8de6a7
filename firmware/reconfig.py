# Remote config (PROTOCOL.md, Commands: config): what applying a partial config takes
# (what a config message carries is firmware/config_message.py). Most settings apply at
# once; those that change how the node reaches its broker (Wi-Fi, broker, identity,
# topics) are tried with a way back (firmware/link_trial.py); those that change the
# wiring need a restart (relays are off at boot, by design). Loaded for a change and
# unloaded after, with the config code.
from firmware import config, unload
from firmware.errors import ConfigError
from micropython import const

# Settings the running node takes over at once. signing.window_s is read at each check
# (firmware/signing.py). Not signing.key: a new key is applied by a restart, the clean
# break a rotation wants: relays switched on under the old key go off (off at boot), and
# nothing signed before the new boot is taken, whatever its key.
_LIVE = const(("interval_s", "failsafe_s", "interlocks", "relay_groups", "alerts", "trims", "ntp", "automation", "clock",
         "mqtt.fallback_s", "safe_mode", "signing.window_s",
         "relays.*.max_on_s", "relays.*.pump_id", "relays.*.flow_ml_s",
         "sensors.soil.dry", "sensors.soil.wet", "sensors.ec.k", "sensors.ec.offset",
         "sensors.ec.temp_coef", "sensors.ph.slope_mv", "sensors.ph.offset_v", "sensors.ph.gain",
         "sensors.dht.interval_s"))
# The offline queue is sized once, at boot: its readings must not be lost to a resize.
_AT_BOOT = const(("mqtt.queue_max", "mqtt.queue_bytes", "mqtt.spill_bytes"))
# Settings that change the link to the broker.
_LINK = const(("wifi", "mqtt", "profile", "device_id", "farm_id", "org_id", "homeassistant"))


# --- what a change is ---

def changed(old, new, path=""):
    """The dotted keys whose values differ between two configs (added or removed
    named entries, such as a relay, as a whole)."""
    out = []
    for key in old:
        _compare(old[key], new.get(key), path + key, out)
    for key in new:
        if key not in old:
            out.append(path + key)
    return out


def _compare(a, b, here, out):
    if type(a) is dict and type(b) is dict:
        out.extend(changed(a, b, here + "."))
    elif a != b:
        out.append(here)


def _matches(key, pattern):
    """key is pattern or under it; '*' stands for one level (a relay's name)."""
    keys = key.split(".")
    parts = pattern.split(".")
    if len(keys) < len(parts):
        return False
    for i in range(len(parts)):
        if parts[i] != "*" and parts[i] != keys[i]:
            return False
    return True


def needs(keys):
    """(reconnect, restart): whether applying these changed keys takes a new broker
    link, and whether it takes a restart."""
    reconnect = restart = False
    for key in keys:
        if any(_matches(key, p) for p in _LIVE):
            continue
        if any(_matches(key, p) for p in _AT_BOOT):
            restart = True
        elif any(_matches(key, p) for p in _LINK):
            reconnect = True
        else:
            restart = True
    return reconnect, restart


# --- applying it to a running node ---

def apply(node, patch):
    """Validate patch over the node's config as a whole (ConfigError names every bad
    key), then apply it: at once, by trying the new broker link, or by a restart.
    Returns the answer's response."""
    new = config.apply(node.cfg, patch)
    keys = changed(node.cfg, new)
    if not keys:
        return {"changed": []}
    if node.link_change_pending():
        raise ConfigError([("config", "a broker change is still being tried")])
    reconnect, restart = needs(keys)
    if reconnect:
        node.try_link(new, restart)
        return {"changed": keys, "reconnect": True, "fallback_s": node.cfg["mqtt"]["fallback_s"]}
    config.save(new, node.root, checked=True)
    if restart:
        node.cfg = new
        node.restart_soon()
        return {"changed": keys, "restart": True}
    take_live(node, new, keys)
    return {"changed": keys}


def set_interval(node, seconds):
    """interval_s alone (the set_interval command, its range checked there): a number in
    range cannot make a valid config invalid, so no whole-config check (its garbage is
    the highest a running node's heap goes); saved, then applied."""
    if node.link_change_pending():
        raise ConfigError([("config", "a broker change is still being tried")])
    if seconds == node.cfg["interval_s"]:
        return
    new = dict(node.cfg)  # the rest shared: one small dict
    new["interval_s"] = seconds
    config.save(new, node.root, checked=True)
    take_live(node, new, ["interval_s"])


def reset(node):
    """Back to the defaults (keeping Wi-Fi and broker secrets), saved; then a restart,
    as the defaults may wire things differently."""
    from firmware import ha_discovery

    ha_discovery.forget(node)  # a device made again from the defaults, not the old one
    del ha_discovery
    unload("firmware.ha_discovery")
    cfg = config.reset(node.cfg)
    config.save(cfg, node.root)
    node.cfg = cfg
    node.restart_soon()


def _copy_key(target, source, key):
    """target's dotted key set to source's (removed where source has none)."""
    parts = key.split(".")
    for part in parts[:-1]:
        target = target[part]
        source = source[part]
    last = parts[-1]
    if last in source:
        target[last] = source[last]
    else:
        target.pop(last, None)


def take_live(node, cfg, keys=None):
    """Take over the settings a running node can change without a restart. keys: the
    changed ones, copied into the node's config where it lies (a long-lived config
    rebuilt elsewhere in the heap on each change would leave holes behind it); None:
    cfg replaces the node's config whole (a link change)."""
    interval_s = node.cfg["interval_s"]
    if keys is None:
        node.cfg = cfg
    else:
        for key in keys:
            _copy_key(node.cfg, cfg, key)
    cfg = node.cfg
    if cfg["interval_s"] != interval_s:
        node.set_interval_ms(cfg["interval_s"] * 1000)
    relays = node.relays
    relays.interlocks = cfg["interlocks"]
    relays.groups = cfg["relay_groups"]
    relays.max_age_ms = 2 * node.interval_ms
    for name in relays.relays:
        relays.relays[name].max_on_s = cfg["relays"][name]["max_on_s"]
    node.reader.configure(cfg)
    node.alerts.update(cfg["alerts"])
    node.clock.set_host(cfg["ntp"]["host"])
    node.automate()
