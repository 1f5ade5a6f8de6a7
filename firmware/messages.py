# What the node says (PROTOCOL.md): telemetry, status, alerts and command answers, in
# their canonical form, then in the profile's format, handed to the link's session. The
# loop (firmware/node.py) says when; the link (firmware/link.py) carries them.
import json

from firmware import VERSION, unload
from firmware.clock import literal
from firmware.profiles import render
from firmware.sensors import KEYS
from jsontext import dumps as json_text
from jsontext import pieces as json_pieces


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


def _alert(profile, alert, device_id, ts):
    alert["device_id"] = device_id
    alert["ts"] = ts
    return render(profile.alert, alert) if profile.alert else alert


def _response(profile, answer, dialect, farm_id):
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


# --- handed to the link's session ---

def send_reading(link, reading):
    """A reading queued for its telemetry topic, in the profile's format."""
    session = link.session
    topic = link.topic("telemetry")
    reading["meta"]["dropped"] = session.queue.dropped  # as of now: a held reading waited
    # json_text: a value rounded to 0.1 goes out as 70.9, not as a double's repr
    text = json_text(link.profile.telemetry(reading))
    # meta.dropped exact in every reading: what its own push would drop goes first
    # and is counted in it (the text may grow by a digit: room is made again)
    while session.make_room(topic, text):
        reading["meta"]["dropped"] = session.queue.dropped
        text = json_text(link.profile.telemetry(reading))
    session.enqueue(topic, text)


def send_alert(node, alert):
    """An alert logged, and queued where the backend takes alerts."""
    node.log("alert %s: %s" % (alert["severity"], alert["message"]))
    link = node.link
    topic = link.topic("alert")
    if topic is None:
        return  # this backend takes no alerts: the log has them
    clock = node.clock
    ts = clock.iso() if clock.synced else clock.pending(node.boot_id, node.uptime_s())[0]
    link.session.enqueue(topic, json_text(_alert(link.profile, alert, link.device_id, ts)))


def notice(node, severity, rule, message):
    """An alert about the node itself (an update, a config), not about a reading: kept
    in the flash log too."""
    node.log.to_flash("%s %s: %s" % (severity, rule, message))  # send_alert logs it too
    send_alert(node, {"severity": severity, "sensor": None, "value": None, "threshold": None,
                      "rule": rule, "message": message})


def send_response(node, answer, dialect, text=None):
    """A command's answer (firmware/commands.py). text: the answer as JSON when the caller
    made it already; sent as it is where the backend takes the answer as it is (one
    string per answer, not two)."""
    link = node.link
    topic = link.topic("command_response")
    if topic is None:
        return  # this backend takes no answers (the log has refusals)
    payload = _response(link.profile, answer, dialect, node.cfg["farm_id"])
    if answer["command"] == "get_config":
        # A whole config: streamed to the socket as it is written, never one ~2 KB
        # string (the block a fragmented heap lacks first), nor a copy of the config
        # (its response is the node's own, with its secrets omitted). Held for its
        # PUBACK, it holds no more than that; sent again after a reconnect, it says
        # what the config is then.
        from text_payload import TextPayload

        link.session.publish(topic, TextPayload(lambda: json_pieces(payload)), False, 1)
        del TextPayload
        unload("text_payload")  # what is in flight keeps its class
    else:
        if text is None or payload is not answer:
            text = json.dumps(payload)
        link.session.publish(topic, literal(text), False, 1)
