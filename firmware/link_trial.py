# A new broker link tried with a way back: a remote config that changes Wi-Fi, broker,
# credentials, identity or topics. The node says offline on the old link and moves; the
# new config is saved once the new broker is reached, and if it is not reached within
# mqtt.fallback_s the node goes back to the old link and raises an alert there.
# Loaded only when such a change comes; the config code stays loaded while it lasts.
from firmware import config, messages, reconfig
from ticks import ticks_add, ticks_diff, ticks_ms


def _carry_inflight(old, new):
    """Publishes still awaiting their PUBACK go with the link (our client keeps them)."""
    if hasattr(old, "inflight") and hasattr(new, "inflight"):
        new.inflight.update(old.inflight)
        old.inflight.clear()


class LinkTrial:
    def __init__(self, node, new, restart):
        """Leave the current link for the one new describes; restart: after it works."""
        self._node = node
        self._restart = restart
        self._wifi_changed = new["wifi"] != node.cfg["wifi"]
        fallback_s = node.cfg["mqtt"]["fallback_s"]
        self._until = ticks_add(ticks_ms(), fallback_s * 1000)
        self._gone_back = False  # set before going back: a failure on the way is not a second one
        old = node.link
        self._old = (node.cfg, old)
        node.log("config: trying the new broker link for %d s" % fallback_s)
        self._leave(old, "reconfigure")
        try:
            reconfig.take_live(node, new)
            node.link = node.new_link(new, old.session.queue)
        except Exception:  # no heap for a second link, say: nothing has moved
            node.link = old  # it connects again by itself
            reconfig.take_live(node, self._old[0])
            raise
        _carry_inflight(old.session.client, node.link.session.client)

    def _leave(self, link, reason):
        node = self._node
        link.session.close(node.status_json("offline", {"reason": reason}))
        link.session.connected = False
        if self._wifi_changed:
            link.wifi.disconnect()

    def check(self, now):
        """Keep or undo the new link when its time has come; True once decided."""
        node = self._node
        if self._gone_back:
            return True  # an error cut the way back short last time: it is done all the same
        if node.link.session.connected:
            config.save(node.cfg, node.root)
            node.log("config: new broker link works, saved")
            if self._restart:
                node.restart_soon()
            return True
        if ticks_diff(now, self._until) < 0:
            return False
        self._gone_back = True
        failed = node.link
        self._leave(failed, "fallback")
        cfg, node.link = self._old
        _carry_inflight(failed.session.client, node.link.session.client)
        reconfig.take_live(node, cfg)
        mqtt = failed.session.client
        messages.notice(node, "warning", "config", "config: new broker %s:%s not reached in %d s; back on the old config"
                        % (mqtt.server, mqtt.port, cfg["mqtt"]["fallback_s"]))
        return True
