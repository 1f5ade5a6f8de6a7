# tech.wifi(), tech.broker(), tech.config(): the config shown (secrets hidden) or changed,
# validated and saved as a config command would be. The config code is imported where
# it is used: this module's config() is the technician's call.
from firmware.tech import _NOTHING, Usage


def wifi(tech, ssid, password, add=False, remove=False):
    """The Wi-Fi network (ssid, password), or with add=True one more (the node joins the
    strongest in range), or with remove=True no longer ssid."""
    from firmware import config
    from firmware.schema import wifi_reason

    if remove:
        if add or password is not None:
            raise Usage("remove=True takes the ssid alone: tech.wifi('shed', remove=True)")
        password = ""
    reason = wifi_reason(ssid, "" if password is None else password)
    if reason or password is None:
        raise Usage(reason or "password: 8 to 64 characters, or '' for an open network")
    current = config.load(tech.root)[0]["wifi"]
    others = [n for n in current["networks"] if n["ssid"] != ssid]
    if remove:
        if current["ssid"] != ssid and len(others) == len(current["networks"]):
            tech._out("no network %r (have: %s)" % (ssid, ", ".join(_ssids(current)) or "none"))
            return
        patch = {"networks": others}
        if current["ssid"] == ssid:
            patch["ssid"] = patch["password"] = ""
        what = "Wi-Fi without %r" % ssid
    elif add and current["ssid"] != ssid:
        patch = {"networks": others + [{"ssid": ssid, "password": password}]}
        what = "Wi-Fi %r added (%s)" % (ssid, "with a password" if password else "open")
    else:
        patch = {"ssid": ssid, "password": password, "networks": others}
        what = "Wi-Fi %r, %s" % (ssid, "with a password" if password else "open")
    if _save(tech, {"wifi": patch}, what):
        current.update(patch)  # what was saved: no third read of the files
        ssids = _ssids(current)
        tech._out("%sused from the next reset: tech.restart()"
                  % ("networks: %s (the strongest in range is joined); " % ", ".join(ssids) if len(ssids) > 1 else ""))


def _ssids(wifi):
    from firmware.wifi import networks

    return [ssid for ssid, _ in networks(wifi)]


def broker(tech, host, port, user, password, tls):
    if type(host) is not str or not host:
        raise Usage("host: the broker's name or IP address, a string")
    if type(port) is not int:
        raise Usage("port: a whole number, 1883 (8883 with TLS)")
    mqtt = {"host": host, "port": port}
    for key, given in (("user", user), ("password", password)):
        if given is not None:
            if type(given) is not str:
                raise Usage("%s: a string ('' for none); None leaves it as it is" % key)
            mqtt[key] = given
    if tls is not None:
        if type(tls) is not bool:
            raise Usage("tls: True or False; None leaves it as it is")
        mqtt["tls"] = tls
    if _save(tech, {"mqtt": mqtt}, "broker %s:%d" % (host, port)):
        tech._out("used from the next reset: tech.restart()")


def config(tech, key, value):
    if key is not None and (type(key) is not str or not key):
        raise Usage("key: a dotted name such as 'interval_s' or 'relays.irrigation.max_on_s'")
    if key is None and value is not _NOTHING:
        raise Usage("a value needs a key")
    if value is _NOTHING:
        _show(tech, key)
        return
    patch = value
    for part in reversed(key.split(".")):
        patch = {part: patch}
    keys = _save(tech, patch)
    if keys:
        from firmware import reconfig

        reconnect, restart = reconfig.needs(keys)
        if restart or reconnect:
            tech._out("restart needed: yes (%s): tech.restart()" % (
                "the link to the broker" if reconnect else "the wiring or a boot setting"))
        else:
            tech._out("restart needed: no (a running node takes it at once; "
                      "the application uses it when it starts)")


def _save(tech, patch, what=None):
    """Validate patch over the config and save it: the keys that changed, or None
    (refused, every reason printed; or nothing to change)."""
    from firmware import config, reconfig

    cfg, problems = config.load(tech.root)
    try:
        new = config.apply(cfg, patch)
    except config.ConfigError as exc:
        tech._out("refused, nothing changed:\n" + "\n".join("  %s: %s" % p for p in exc.problems))
        return None
    keys = reconfig.changed(cfg, new)
    if not keys:
        tech._out("no change")
        return None
    config.save(new, tech.root)
    tech._out("saved %s" % (what or ", ".join(keys)))
    if problems:
        tech._out("note: the config files had problems at load (tech.config() lists them); "
                  "they were written again without them")
    return keys


def _show(tech, key):
    """The config as 'dotted.key = value' lines, or the part under key; a secret only
    says whether it is set."""
    from firmware import HIDDEN_KEYS, config

    cfg, problems = config.load(tech.root)
    lines = []
    shown = config.public(cfg)
    if key is not None:
        try:
            shown = config.get(shown, key)
        except (KeyError, TypeError):
            if key not in HIDDEN_KEYS:
                tech._out("no key %r in the config; its keys: %s" % (key, ", ".join(sorted(cfg))))
                return
            shown = None
    if key is None or key not in HIDDEN_KEYS:
        _leaves(shown, key or "", lines)
    for hidden in HIDDEN_KEYS:  # never shown: said whether set
        if key is None or hidden == key or hidden.startswith(key + "."):
            lines.append("%s = (%s)" % (hidden, "set, hidden" if config.get(cfg, hidden) else "empty"))
    lines.sort()
    for line in lines:
        tech._out(line)
    if key is None:
        for bad, reason in problems:
            tech._out("ignored at load: %s: %s" % (bad, reason))


def _leaves(value, path, lines):
    """'dotted.key = value' lines of a config tree."""
    if type(value) is dict and value:
        for key in sorted(value):
            _leaves(value[key], path + "." + key if path else key, lines)
    else:
        lines.append("%s = %r" % (path, value))
