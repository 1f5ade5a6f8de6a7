# The node's link to its backend: the Wi-Fi station, the profile's topics and the MQTT
# session, all made from one config. A remote config that moves the node to another
# broker makes a new Link and keeps the old one to go back to (firmware/link_trial.py).
from firmware import device_id, unload
from firmware.profiles import Profile
from firmware.session import Session
from firmware.wifi import WifiLink, networks


class Link:
    """cfg: the config to link with; wlan, mac: the board's; log: the console;
    on_message(topic, msg): what comes in; status(state, fields, link): the status
    payload as JSON text (the Will and the online announcement); outbox: where undelivered
    messages wait while offline (None: RAM only); queue: messages a previous link had
    still to send."""

    def __init__(self, cfg, wlan, mac, log, on_message, status, outbox=None, queue=None):
        self.device_id = device_id(cfg, mac)
        self.mac = mac
        mqtt = cfg["mqtt"]
        self.profile = Profile(cfg["profile"], {"prefix": mqtt["prefix"], "device_id": self.device_id,
                                                "farm_id": cfg["farm_id"], "org_id": cfg["org_id"]})
        topics = self.profile.topics
        subscriptions = self.profile.subscriptions()
        # Home Assistant discovery (firmware/ha_discovery.py) describes the farmnode
        # profile's payloads; the seed profiles' backends have their own topics and ACLs.
        ha = cfg["homeassistant"]
        self.discovery_topic = self.ha_status_topic = None
        if ha["discovery"] and cfg["profile"] == "farmnode":
            self.discovery_topic = "%s/device/%s/config" % (ha["prefix"], self.device_id)
            subscriptions.append(ha["prefix"] + "/status")  # its birth and last will
            self.ha_status_topic = subscriptions[-1].encode()  # bytes, as the client gives it
        self.wifi = WifiLink(wlan, networks(cfg["wifi"]), log)
        from firmware import mqtt_setup

        client = mqtt_setup.make_client(cfg, self.device_id, log)
        unload("firmware.mqtt_setup")
        self.session = Session(client, topics["status"], status("offline", {"reason": "lwt"}, self),
                               subscriptions, on_message, log,
                               mqtt["queue_max"], mqtt["queue_bytes"], outbox)
        self.session.online_payload = lambda: status("online", {}, self)
        if queue is not None:
            self.session.queue = queue
        self.config_topic = topics["config"].encode() if topics["config"] else None

    def topic(self, kind):
        """The topic of that kind (telemetry, alert...), None when the backend has none."""
        return self.profile.topics[kind]
