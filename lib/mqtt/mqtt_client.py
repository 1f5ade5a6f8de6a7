# MQTT 3.1.1 client with the API of micropython-lib's umqtt.simple MQTTClient, plus
# what that one lacks: no call blocks longer than timeout_ms; QoS 1 both ways, with
# unacknowledged publishes kept and resent (DUP) after a reconnect; keepalive pings
# and detection of a dead (half-open) connection; packets split across reads; no copy
# of a large payload on its way out (see _send_publish), and payloads streamed as they
# are written (text_payload.TextPayload). Runs on MicroPython (ESP32, unix port) and CPython.
import select
import socket

from micropython import const

from ticks import ticks_diff, ticks_ms

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)
_DUP = const(0x08)

_EAGAIN = const((11, 35, 115))  # EAGAIN on Linux and lwIP, EWOULDBLOCK on BSD, EINPROGRESS
_IPPROTO_TCP = const(6)  # the unix port lacks the names; the values are the same everywhere
_TCP_NODELAY = const(1)
# A PUBLISH up to this size leaves in one write (with TCP_NODELAY every write is a
# segment); a larger one is written as its header, then its payload where it lies.
_ONE_WRITE = const(512)
_STREAM_CHUNK = const(256)  # the buffer a streamed payload is encoded through

# What a CONNACK's return code 1..5 means (a constant tuple: in flash when frozen, where
# a dict would be built in the heap at import).
_CONNACK_REASONS = const(("unacceptable protocol version", "client id rejected", "server unavailable",
                          "bad user name or password", "not authorised"))


class MQTTException(Exception):
    """A refusal by the broker (code: the CONNACK return code) or a protocol error."""

    def __init__(self, code, text=None):
        super().__init__(code if text is None else "%s: %s" % (code, text))
        self.code = code


def _encode(value):
    return value.encode() if isinstance(value, str) else value


def _payload(msg):
    """msg's bytes, without a copy where the port allows it (a MicroPython str is a
    buffer of its UTF-8 bytes; CPython encodes). A payload object (one with write_to,
    such as text_payload.TextPayload) stays as it is."""
    if type(msg) is str:
        try:
            return memoryview(msg)
        except TypeError:
            return msg.encode()
    return msg


def _would_block(exc):
    # MicroPython and CPython say "no data now" differently; so does CPython's ssl.
    return (exc.args and exc.args[0] in _EAGAIN) or type(exc).__name__.startswith("SSLWant")


class MQTTClient:
    """umqtt.simple-compatible client. timeout_ms bounds every call; rx_size is the
    largest packet it takes (a bigger one is acknowledged, dropped and counted);
    max_inflight bounds the QoS 1 publishes waiting for PUBACK."""

    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=None, ssl_params=None, timeout_ms=5000, rx_size=2048, max_inflight=16):
        self.client_id = _encode(client_id)
        self.server = server
        self.port = port or (8883 if ssl else 1883)
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.ssl = ssl  # True, or an ssl.SSLContext (with its CA loaded)
        self.ssl_params = ssl_params or {}
        self.timeout_ms = timeout_ms
        self.max_inflight = max_inflight
        self.cb = None
        self.lw_topic = None
        self.lw_msg = None
        self.lw_qos = 0
        self.lw_retain = False
        self.sock = None
        self.inflight = {}  # packet id -> (topic, msg, retain), resent after a reconnect
        self.dropped_oversize = 0
        self._pid = 0
        self._rx = bytearray(rx_size)
        self._rx_view = memoryview(self._rx)
        self._rx_len = 0
        self._skip = 0  # bytes of an oversize packet still to throw away
        self._header = bytearray(5)
        self._chunk = None  # a streamed payload's buffer, made on first use and kept
        self._poll = None
        self._last_tx = 0
        self._last_rx = 0
        self._ping_sent = None
        self._suback = None
        self._body = 0  # where the packet in the buffer has its variable header
        self._end = 0  # and where it ends

    # --- the umqtt.simple API ---

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        assert 0 <= qos <= 1
        self.lw_topic = _encode(topic)
        self.lw_msg = _encode(msg)
        self.lw_qos = qos
        self.lw_retain = retain

    def connect(self, clean_session=True, timeout_ms=None):
        """Connect, resend unacknowledged publishes, return the broker's session-present flag."""
        self.close()
        timeout_ms = timeout_ms or self.timeout_ms
        addr = socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)[0][-1]
        sock = socket.socket()
        try:
            sock.settimeout(timeout_ms / 1000)
            sock.connect(addr)
            try:
                sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)  # small packets leave at once
            except (OSError, AttributeError):
                pass
            if self.ssl:
                sock = self._wrap_tls(sock)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._attach(sock)
        try:
            self._write(self._connect_packet(clean_session), timeout_ms)
            header = self._wait_packet(_CONNACK, timeout_ms)
            if header is None:
                raise OSError(110, "no CONNACK in %d ms" % timeout_ms)
            rx = self._rx
            if header != _CONNACK or rx[1] != 2:
                raise MQTTException(-1, "malformed CONNACK")
            session_present = rx[2] & 1
            code = rx[3]
            self._consume()
            if code:
                raise MQTTException(code, _CONNACK_REASONS[code - 1] if code <= 5 else "refused")
            for pid in sorted(self.inflight):
                topic, msg, retain = self.inflight[pid]
                self._send_publish(topic, msg, retain, 1, pid, _DUP)
        except BaseException:
            self.close()
            raise
        return session_present

    def disconnect(self):
        if self.sock is not None:
            try:
                self._write(b"\xe0\x00", self.timeout_ms)
            except OSError:
                pass
        self.close()

    def ping(self):
        self._write(b"\xc0\x00", self.timeout_ms)
        if self._ping_sent is None:
            self._ping_sent = ticks_ms()

    def publish(self, topic, msg, retain=False, qos=0):
        """Send a message (str, bytes, or a payload object such as a TextPayload). QoS 1
        returns its packet id at once; the PUBACK is handled by check_msg(), and the
        message is kept until then (resent after a reconnect)."""
        topic = _encode(topic)
        msg = _payload(msg)
        pid = None
        if qos == 1:
            if len(self.inflight) >= self.max_inflight:
                raise MQTTException(-2, "%d publishes await PUBACK" % len(self.inflight))
            pid = self._next_pid()
            self.inflight[pid] = (topic, msg, retain)
        elif qos != 0:
            raise ValueError("QoS 0 or 1 only")
        self._send_publish(topic, msg, retain, qos, pid, 0)
        return pid

    def subscribe(self, topic, qos=0):
        """Subscribe and wait (bounded) for the SUBACK, handling other packets meanwhile."""
        topic = _encode(topic)
        pid = self._next_pid()
        packet = bytearray(b"\x82")
        packet += self._length(2 + 2 + len(topic) + 1)
        packet += bytes((pid >> 8, pid & 0xFF, len(topic) >> 8, len(topic) & 0xFF))
        packet += topic
        packet.append(qos)
        self._suback = None
        self._write(packet, self.timeout_ms)
        started = ticks_ms()
        while self._suback is None or self._suback[0] != pid:
            if ticks_diff(ticks_ms(), started) >= self.timeout_ms:
                raise OSError(110, "no SUBACK in %d ms" % self.timeout_ms)
            self.wait_msg(self.timeout_ms - ticks_diff(ticks_ms(), started))
        if self._suback[1] == 0x80:
            raise MQTTException(0x80, "subscription to %s refused" % topic.decode())
        return self._suback[1]

    def wait_msg(self, timeout_ms=None):
        """Wait up to timeout_ms for one packet and handle it; return its type or None."""
        timeout_ms = self.timeout_ms if timeout_ms is None else timeout_ms
        header = self._wait_packet(None, max(0, timeout_ms))
        if header is None:
            self._keepalive()
            return None
        self._handle(header)
        return header

    def check_msg(self):
        """Handle every packet that has arrived, without waiting; keep the connection alive."""
        while True:
            header = self._next_packet()
            if header is None:
                break
            self._handle(header)
        self._keepalive()

    # --- what umqtt.simple lacks ---

    def close(self):
        """Drop the connection without DISCONNECT (the broker will publish the Will)."""
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self._poll = None

    def is_connected(self):
        return self.sock is not None

    # --- internals ---

    def _wrap_tls(self, sock):
        import ssl as tls

        context = self.ssl
        if context is True:
            context = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
            context.verify_mode = tls.CERT_NONE
            if hasattr(context, "check_hostname"):
                context.check_hostname = False
        params = dict(self.ssl_params)
        params.setdefault("server_hostname", self.server)
        try:
            return context.wrap_socket(sock, **params)
        except ValueError as exc:  # MicroPython's ssl reports a failed verification so
            raise OSError(-1, "TLS handshake failed: %s" % str(exc).strip())

    def _attach(self, sock):
        self.sock = sock
        self._recv_into = getattr(sock, "recv_into", None) or sock.readinto
        self._send = getattr(sock, "send", None) or sock.write
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._rx_len = 0
        self._skip = 0
        self._ping_sent = None
        self._last_tx = self._last_rx = ticks_ms()

    def _next_pid(self):
        while True:
            self._pid = self._pid % 65535 + 1  # 1..65535, never 0
            if self._pid not in self.inflight:
                return self._pid

    def _length(self, n):
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return out

    def _connect_packet(self, clean_session):
        flags = 0x02 if clean_session else 0
        body = bytearray(b"\x00\x04MQTT\x04\x00")
        body += bytes((self.keepalive >> 8, self.keepalive & 0xFF))
        fields = [self.client_id]
        if self.lw_topic:
            flags |= 0x04 | (self.lw_qos << 3) | (0x20 if self.lw_retain else 0)
            fields += [self.lw_topic, self.lw_msg]
        if self.user:
            flags |= 0x80
            fields.append(_encode(self.user))
            if self.pswd:
                flags |= 0x40
                fields.append(_encode(self.pswd))
        body[7] = flags
        for field in fields:
            body += bytes((len(field) >> 8, len(field) & 0xFF))
            body += field
        return b"\x10" + self._length(len(body)) + body

    def _send_publish(self, topic, msg, retain, qos, pid, dup):
        header = self._header
        header[0] = _PUBLISH | dup | (qos << 1) | (1 if retain else 0)
        remaining = 2 + len(topic) + len(msg) + (2 if qos else 0)
        n = 1
        while True:
            byte = remaining & 0x7F
            remaining >>= 7
            header[n] = byte | (0x80 if remaining else 0)
            n += 1
            if not remaining:
                break
        parts = bytearray(header[:n])
        parts += bytes((len(topic) >> 8, len(topic) & 0xFF))
        parts += topic
        if qos:
            parts += bytes((pid >> 8, pid & 0xFF))
        if hasattr(msg, "write_to"):
            self._write(parts, self.timeout_ms)
            if self._chunk is None:
                self._chunk = bytearray(_STREAM_CHUNK)
            msg.write_to(self._write_chunk, self._chunk)
        elif len(parts) + len(msg) <= _ONE_WRITE:
            parts += msg
            self._write(parts, self.timeout_ms)
        else:  # no copy of a large payload: two segments instead of one
            self._write(parts, self.timeout_ms)
            self._write(msg, self.timeout_ms)

    def _write_chunk(self, view):
        self._write(view, self.timeout_ms)

    def _write(self, data, timeout_ms):
        if self.sock is None:
            raise OSError(107, "not connected")  # ENOTCONN
        view = memoryview(data)
        sent = 0
        started = ticks_ms()
        try:
            while sent < len(data):
                try:
                    n = self._send(view[sent:])
                except OSError as exc:
                    if not _would_block(exc):
                        raise
                    n = None
                if n:
                    sent += n
                    continue
                if ticks_diff(ticks_ms(), started) >= timeout_ms:
                    raise OSError(110, "write timed out after %d ms" % timeout_ms)
                poller = select.poll()
                poller.register(self.sock, select.POLLOUT)
                poller.poll(10)
        except OSError:
            self.close()
            raise
        self._last_tx = ticks_ms()

    def _fill(self):
        """Read what the socket has into the buffer; False when nothing was there."""
        free = len(self._rx) - self._rx_len
        if free == 0:
            return False
        try:
            n = self._recv_into(self._rx_view[self._rx_len:])
        except OSError as exc:
            if _would_block(exc):
                return False
            self.close()
            raise
        if n is None:
            return False
        if n == 0:
            self.close()
            raise OSError(104, "connection closed by the broker")  # ECONNRESET
        self._rx_len += n
        self._last_rx = ticks_ms()
        return True

    def _next_packet(self):
        """The header byte of the next complete packet in the buffer (reading the socket
        as needed, never waiting), or None."""
        while True:
            if self.sock is None:
                raise OSError(107, "not connected")
            if self._skip:
                self._discard()
                if self._skip:
                    if not self._fill():
                        return None
                    continue
            header = self._parse()
            if header is not None:
                return header
            if not self._fill():
                return None

    def _parse(self):
        rx = self._rx
        have = self._rx_len
        if have < 2:
            return None
        remaining = 0
        shift = 0
        i = 1
        while True:
            if i >= have:
                return None
            byte = rx[i]
            remaining |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
            if i > 4:
                self.close()
                raise MQTTException(-3, "malformed remaining length")
        self._body = i
        self._end = i + remaining
        if self._end > len(rx):
            self._oversize()
            return None
        if self._end > have:
            return None
        return rx[0]

    def _oversize(self):
        # Too big to hold: acknowledge it (else the broker redelivers it forever), drop it.
        rx = self._rx
        if rx[0] & 0xF0 == _PUBLISH and (rx[0] >> 1) & 3 == 1 and self._rx_len >= self._body + 2:
            topic_len = (rx[self._body] << 8) | rx[self._body + 1]
            at = self._body + 2 + topic_len
            if self._rx_len >= at + 2:
                self._puback((rx[at] << 8) | rx[at + 1])
        self.dropped_oversize += 1
        self._skip = self._end
        self._discard()

    def _discard(self):
        n = min(self._skip, self._rx_len)
        self._drop_front(n)
        self._skip -= n

    def _drop_front(self, n):
        left = self._rx_len - n
        # The next packets arrived in the same read: move them to the front in place,
        # in pieces no longer than n so that no piece overlaps its own copy (a
        # temporary copy of the rest would need the heap when it may be short).
        rx = self._rx
        view = self._rx_view
        done = 0
        while done < left:
            piece = min(n, left - done)
            rx[done:done + piece] = view[n + done:n + done + piece]
            done += piece
        self._rx_len = left

    def _consume(self):
        self._drop_front(self._end)

    def _wait_packet(self, want, timeout_ms):
        """Wait up to timeout_ms for a complete packet; handle others while waiting for want."""
        started = ticks_ms()
        while True:
            header = self._next_packet()
            if header is not None:
                if want is None or header & 0xF0 == want:
                    return header
                self._handle(header)
                continue
            left = timeout_ms - ticks_diff(ticks_ms(), started)
            if left <= 0:
                return None
            self._poll.poll(min(left, 50))

    def _handle(self, header):
        kind = header & 0xF0
        rx = self._rx
        body = self._body
        if kind == _PUBLISH:
            qos = (header >> 1) & 3
            topic_len = (rx[body] << 8) | rx[body + 1]
            at = body + 2 + topic_len
            topic = bytes(self._rx_view[body + 2:at])
            pid = None
            if qos:
                pid = (rx[at] << 8) | rx[at + 1]
                at += 2
            try:
                msg = bytes(self._rx_view[at:self._end])
            except MemoryError:
                # No heap for the copy: drop it like an oversize one (acknowledged,
                # counted) rather than meet the same packet again on every call.
                msg = None
                self.dropped_oversize += 1
            self._consume()
            if self.cb and msg is not None:
                self.cb(topic, msg)
            if pid is not None:
                self._puback(pid)  # after the callback: at least once, never lost
            return
        if kind == _PUBACK:
            self.inflight.pop((rx[body] << 8) | rx[body + 1], None)
        elif kind == _SUBACK:
            self._suback = ((rx[body] << 8) | rx[body + 1], rx[body + 2])
        elif kind == _PINGRESP:
            self._ping_sent = None
        self._consume()

    def _puback(self, pid):
        self._write(bytes((_PUBACK, 2, pid >> 8, pid & 0xFF)), self.timeout_ms)

    def _keepalive(self):
        """Ping when the line has been quiet for keepalive; a ping unanswered for half of
        it (at least 2 s) means the connection is dead, even if writes still succeed."""
        if not self.keepalive or self.sock is None:
            return
        now = ticks_ms()
        period = self.keepalive * 1000
        if self._ping_sent is not None:
            if ticks_diff(now, self._ping_sent) >= max(2000, period // 2):
                self.close()
                raise OSError(110, "no PINGRESP: the connection is dead")
        elif ticks_diff(now, self._last_tx) >= period or ticks_diff(now, self._last_rx) >= period:
            self.ping()
