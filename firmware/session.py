# The node's MQTT session: connects with the Last Will, announces itself online
# (retained), subscribes, and reconnects with exponential backoff and jitter
# (1 s doubling to 120 s) whenever the link or the broker goes away. Messages that
# must not be lost (telemetry) wait in a bounded queue and leave in order; while the
# link is down they wait on flash instead (an Outbox): a reset loses none of them, and
# an outage can last far longer than RAM would allow.
import os

from micropython import const
from ringbuf import RingBuffer
from ticks import sleep_ms, ticks_add, ticks_diff, ticks_ms

_BACKOFF_FIRST_MS = const(1000)
_BACKOFF_MAX_MS = const(120000)


def _jitter(delay_ms):
    # 80-120 % of the delay: a fleet that lost its broker together does not return together.
    return delay_ms * (80 + os.urandom(1)[0] * 40 // 255) // 100


class Session:
    """client: an MQTTClient (either kind); topics: the profile's topics;
    on_message(topic, msg): commands (it must not raise: the node's catches what it
    does); outbox: where undelivered messages go while offline (None: RAM only).
    Whatever the client raises means the connection is gone: log, back off, try again.
    Not only OSError and MQTTException: umqtt.simple asserts on a CONNACK it did not
    expect and indexes an empty read (IndexError) when the broker hangs up."""

    def __init__(self, client, status_topic, will, subscriptions, on_message, log,
                 queue_max=50, queue_bytes=16384, outbox=None):
        self.client = client
        self.status_topic = status_topic
        self.subscriptions = subscriptions
        self._log = log
        self.queue = RingBuffer(queue_max, queue_bytes)
        self.outbox = outbox
        self.connected = False
        self.connects = 0
        # A new session at each connection: no stale actuator commands from a broker's
        # queue. A node that sleeps keeps one (False): what came while it slept waits.
        self.clean = True
        self.online_payload = None  # set by the node: a function giving the online status
        # set by the node: what a queued message becomes as it leaves (times filled in)
        self.outgoing = None
        self._backoff_ms = _BACKOFF_FIRST_MS
        self._next_try = ticks_ms()
        self._ours = hasattr(client, "inflight")  # our client: non-blocking QoS 1, its own pings
        self._pinged_at = self._next_try
        client.set_callback(on_message)
        client.set_last_will(status_topic, will, retain=True, qos=1)

    # --- connection ---

    def poll(self, link_up):
        """Serve the connection (or try to make one when due); never blocks long."""
        if self.connected and not link_up:
            # The station left the access point: the socket can carry nothing more, and
            # waiting for keepalive to say so would only delay the reconnection.
            self._lost(OSError("Wi-Fi link down"))
        elif self.connected:
            try:
                self.client.check_msg()
                self.flush()
                if not self._ours:
                    self._keep_alive()
            except Exception as exc:
                self._lost(exc)
        elif link_up and ticks_diff(ticks_ms(), self._next_try) >= 0:
            self._connect()

    def _keep_alive(self):
        """umqtt.simple never pings by itself: a quiet connection (readings hours apart)
        would be dropped by the broker after 1.5 keepalives. A ping every half of one."""
        keepalive = getattr(self.client, "keepalive", 0)
        if keepalive and ticks_diff(ticks_ms(), self._pinged_at) >= keepalive * 500:
            self._pinged_at = ticks_ms()
            self.client.ping()

    def wait(self, ms):
        """Idle up to ms, returning at once when a message arrives (our client)."""
        if self.connected and self._ours:
            try:
                if self.client.wait_msg(ms) is not None:
                    self.flush()
            except Exception as exc:
                self._lost(exc)
        else:
            sleep_ms(ms)

    def _connect(self):
        client = self.client
        try:
            client.connect(clean_session=self.clean)
            self.connected = True
            # Subscribed first: the broker takes a connection's packets in order, so a
            # backend that sends a command on seeing "online" finds the node listening.
            for topic in self.subscriptions:
                client.subscribe(topic, 1)
            client.publish(self.status_topic, self.online_payload(), True, 1)
        except Exception as exc:
            self.connected = False
            self._close_quietly()
            delay = _jitter(self._backoff_ms)
            self._log("mqtt: cannot connect to %s:%s: %s; next try in %d ms"
                      % (client.server, client.port, describe(exc), delay))
            self._next_try = ticks_add(ticks_ms(), delay)
            self._backoff_ms = min(_BACKOFF_MAX_MS, self._backoff_ms * 2)
            return False
        self.connects += 1
        self._pinged_at = ticks_ms()
        self._backoff_ms = _BACKOFF_FIRST_MS
        self._log("mqtt: connected to %s:%s" % (client.server, client.port))
        self.flush()
        return True

    def _lost(self, exc):
        if not self.connected:
            return  # lost already, and said why (a publish inside the read that goes on)
        self.connected = False
        self._close_quietly()
        self._log("mqtt: connection lost: %s" % describe(exc))
        if self.outbox is not None:
            self._spill()
        self._next_try = ticks_add(ticks_ms(), _jitter(self._backoff_ms))

    def _close_quietly(self):
        try:
            if hasattr(self.client, "close"):
                self.client.close()
            elif self.client.sock:
                self.client.sock.close()
        except Exception:
            pass

    def close(self, offline_payload):
        """A clean shutdown: say offline (retained), then DISCONNECT (no Will)."""
        if not self.connected:
            return
        try:
            self.client.publish(self.status_topic, offline_payload, True, 1)
            if self._ours:
                self.client.wait_msg(200)  # let the PUBACK come back before leaving
            self.client.disconnect()
        except Exception:
            pass
        self.connected = False

    # --- messages ---

    def publish(self, topic, payload, retain=False, qos=1):
        """Send now if connected; True once sent or queued. False when not connected, or
        for a retained QoS 1 message while the in-flight window is full (the queue sends
        without retain; the caller sends it again later). payload: text, or a TextPayload
        (lib/mqtt), which our client streams as it is written."""
        if not self.connected:
            return False
        if not self._ours and hasattr(payload, "text"):
            payload = payload.text()
        client = self.client
        if self._ours and qos == 1 and len(client.inflight) >= client.max_inflight:
            # Back-pressure, not a lost link: a flood of commands comes in ahead of the
            # PUBACKs of their answers. An answer waits its turn on the queue (flush).
            if retain:
                return False
            self.enqueue(topic, payload.text() if hasattr(payload, "text") else payload)
            return True
        try:
            client.publish(topic, payload, retain, qos)
            return True
        except Exception as exc:
            self._lost(exc)
            return False

    def enqueue(self, topic, payload):
        """Queue a message that must arrive (in order, after an outage if need be).
        Offline it goes to flash, unless RAM holds older ones (a flash that failed)."""
        if not self.connected and self.outbox is not None and not len(self.queue) and \
                self._to_outbox(topic, payload):
            return
        self.queue.push((topic, payload), len(topic) + len(payload))
        if self.connected:
            try:
                self.flush()
            except Exception as exc:
                self._lost(exc)

    def make_room(self, topic, payload):
        """Drop now, and count in queue.dropped, what enqueue(topic, payload) would drop
        to make room; how many. A reading calls it before it says how many were dropped
        (meta.dropped), so the count it carries includes its own push."""
        if not self.connected and self.outbox is not None and not len(self.queue):
            try:
                dropped = self.outbox.make_room(len(topic), len(payload))
            except OSError:
                return 0  # a failing flash: enqueue keeps it in RAM
            self.queue.dropped += dropped
            return dropped
        return self.queue.make_room(len(topic) + len(payload))

    def flush(self):
        outbox = self.outbox
        if outbox is not None and outbox.size and not self._drain(outbox):
            return  # what waited on flash goes first
        queue = self.queue
        client = self.client
        while len(queue) and self.connected:
            if self._ours and len(client.inflight) >= client.max_inflight:
                return  # wait for PUBACKs; the broker is slower than we are
            topic, payload = queue.peek()
            if self.outgoing is not None:  # text: publish() queues a payload object as its text
                payload = self.outgoing(payload)
            if self._ours:
                # Our client keeps it from its in-flight table on, until the PUBACK and
                # across reconnects; a publish that failed before that (no heap for the
                # entry) leaves it here, sent after the reconnect.
                flying = len(client.inflight)
                try:
                    client.publish(topic, payload, False, 1)
                except Exception:
                    if len(client.inflight) > flying:
                        queue.pop()
                    raise
                queue.pop()
            else:
                client.publish(topic, payload, False, 1)  # umqtt: returns after the PUBACK
                queue.pop()

    def park(self):
        """Before the chip sleeps (its RAM is lost): what the broker has not acknowledged
        goes to flash, sent from there at a later wake."""
        if self.outbox is not None and (len(self.queue) or getattr(self.client, "inflight", None)):
            self._spill()

    # --- the outbox on flash: written only while offline (flash wears) ---

    def report_outbox(self):
        """At boot: say what an earlier boot left on flash (it goes first, once online)."""
        if self.outbox is not None and self.outbox.size:
            self._log("outbox: %d bytes of messages from before the reset, sent once connected"
                      % self.outbox.size)

    def _to_outbox(self, topic, payload):
        """True once the message is on flash; a failing flash leaves it to RAM."""
        try:
            self.queue.dropped += self.outbox.append(topic, payload)
            return True
        except OSError as exc:
            self._log("outbox: %s not written: %s; kept in RAM" % (self.outbox.path, describe(exc)))
            return False

    def _spill(self):
        """The link just went down: what is undelivered moves to flash, oldest first.
        An outbox being sent when it happened is read again from its start (the broker
        may not have it all); its messages in flight stay with the client."""
        outbox = self.outbox
        inflight = self.client.inflight if self._ours else None
        if outbox.size:
            outbox.rewind()
        elif inflight:
            for pid in sorted(inflight):
                topic, payload, retain = inflight[pid]
                if hasattr(payload, "text"):
                    payload = payload.text()  # a streamed one (a large answer): whole on flash
                if not retain and not self._to_outbox(topic, payload):  # a stale status is not kept
                    return
            inflight.clear()  # on flash now: sent from there after the reconnection
        while len(self.queue):
            topic, payload = self.queue.peek()
            if not self._to_outbox(topic, payload):
                return
            self.queue.pop()

    def _drain(self, outbox):
        """Send what waits on flash; True once it is all delivered (the file is gone)."""
        client = self.client
        while self.connected:
            room = client.max_inflight - len(client.inflight) if self._ours else 1
            if room <= 0:
                return False
            if not len(outbox):  # all sent: gone once the broker has it all
                if self._ours and client.inflight:
                    return False
                if outbox.unreadable:
                    self._log("outbox: %d unreadable lines skipped" % outbox.unreadable)
                outbox.clear()
                return True
            try:
                messages = outbox.take(room)
            except OSError as exc:
                self._log("outbox: %s unreadable, %d bytes lost: %s" % (outbox.path, len(outbox), describe(exc)))
                outbox.clear()
                return True
            outgoing = self.outgoing
            for topic, payload in messages:
                client.publish(topic, payload if outgoing is None else outgoing(payload), False, 1)
        return False


def describe(exc):
    """An exception as one line for the log."""
    return "%s %s" % (type(exc).__name__, exc)
