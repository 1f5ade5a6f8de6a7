# What the node says (PROTOCOL.md): telemetry, status, alerts and command answers, in
# their canonical form, then in the profile's format. The loop (firmware/node.py) says
# when; the link (firmware/link.py) carries them.
from firmware import VERSION
from firmware.profiles import render
from firmware.sensors import KEYS


def _total(values, keys):
    total = 0
    for key in keys:
        if values.get(key) is None:
            return None
        total += values[key]
    return total


def reading(node, values, errors, taken, taken_s):
    """The canonical telemetry of one pass; taken: (ISO time, Unix time) of the pass,
    taken_s: the uptime then (the time and the uptime of a reading say the same moment)."""
    sensors = {}
    for key in KEYS:
        sensors[key] = values.get(key)
    if values.get("wind_gust") is not None:
        sensors["wind_gust"] = values["wind_gust"]
    if "battery_v" in values:  # fitted: null when it could not be read, as any sensor
        sensors["battery_v"] = values["battery_v"]
        sensors["battery_pct"] = values["battery_pct"]
    link = node.link
    cfg = node.cfg
    reading = {
        "device_id": link.device_id, "farm_id": cfg["farm_id"] or None,
        "org_id": cfg["org_id"] or None, "boot_id": node.boot_id, "seq": node.seq,
        "ts": taken[0], "unix": taken[1], "uptime_s": taken_s,
        "uptime_ms": node.uptime_ms, "npk_total": _total(values, ("n", "p", "k")),
        "sensors": sensors, "relays": node.relays.states(), "errors": dict(errors),
        "meta": {"rssi": link.wifi.rssi(), "heap_free": node.heap.free(), "firmware_version": VERSION,
                 "dropped": link.session.queue.dropped,
                 # incoming messages too big for the buffer or the free heap, dropped
                 "rx_dropped": getattr(link.session.client, "dropped_oversize", None)},
    }
    automation = node.automation
    if automation is not None:  # which rule or schedule holds which relay
        reading["meta"]["automation"] = automation.holding()
        waiting = automation.waiting()
        if waiting:
            reading["meta"]["schedules"] = waiting
    source = node.reader.temp_source
    if source is not None and source != "soil_temp":
        # EC and pH were compensated without the soil's temperature: with the air's, or
        # with none (as if at 25 C). Said only then, to keep the usual reading small.
        reading["meta"]["temp_comp"] = "air" if source else "none"
    return reading


def status(node, link, state, fields):
    """The status payload (a dict) in the profile's format: state is online, offline,
    maintenance...; fields: what this one adds (a reason); link: the one it goes on."""
    wifi = link.wifi
    clock = node.clock
    info = {"status": state, "device_id": link.device_id}
    if state == "online":
        info["firmware_version"] = VERSION
        info["boot_id"] = node.boot_id
        info["reset_cause"] = node.reset_cause
        info["ip"] = wifi.ip()
        info["rssi"] = wifi.rssi()
        info["ts"] = clock.iso()
        waiting = node.automation.waiting() if node.automation is not None else None
        if waiting:
            info["schedules"] = waiting  # why no schedule runs
    elif state == "sleeping" and clock.synced:
        info["ts"] = clock.iso()  # a backend times the wake from it, not from when it came
    info.update(fields)
    if link.profile.spec.STATUS is None:
        return info  # the canonical status: exactly info
    # What only some profiles' status carries.
    reason = fields.get("reason")
    extra = {"firmware_version": VERSION, "ts": clock.iso(), "unix": clock.unix(),
             "uptime_s": node.uptime_s(), "rssi": wifi.rssi(),
             "message": "%s %s%s" % (link.device_id, state, " (%s)" % reason if reason else "")}
    return link.profile.status(info, extra)


def alert(profile, alert, device_id, ts):
    alert["device_id"] = device_id
    alert["ts"] = ts
    return render(profile.alert, alert) if profile.alert else alert


def response(profile, answer, dialect, farm_id):
    """A command's answer as the profile's backend takes it."""
    if profile.ack == "status" and dialect == "actuate":
        result = answer["response"] or {}
        relay = result.get("relay") or "relay"
        payload = {"type": "STATUS", "farm_id": farm_id, "timestamp": answer["ts"]}
        if answer["success"]:
            payload[relay] = "ON" if result.get("state") else "OFF"
        else:
            payload["error"] = answer["error"]
        return payload
    if profile.response is not None:
        return render(profile.response, answer)
    return answer
