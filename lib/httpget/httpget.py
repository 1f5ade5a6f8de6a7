# A streaming HTTP GET for small devices. The body is handed to a callback chunk by
# chunk through one buffer the caller owns, so a file larger than the free heap can
# be fetched; the request is HTTP/1.0, so the server sends the body plainly and
# closes. get_steps() is a step generator: it yields whenever the socket has nothing
# yet, so a cooperative main loop keeps running during a download.
import socket

from micropython import const
from ticks import ticks_diff, ticks_ms

_WOULD_BLOCK = const((11, 115))  # EAGAIN, EINPROGRESS
_CONNECT_TIMEOUT_S = const(5)


class HttpError(Exception):
    """The download failed; the message says how."""


def parse_url(url):
    """(host, port, path) of an http:// URL."""
    if type(url) is not str or not url.startswith("http://"):
        raise HttpError("only http:// URLs can be fetched, got %r" % (url,))
    rest = url[7:]
    slash = rest.find("/")
    hostport, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    host, _, port = hostport.partition(":")
    if not host:
        raise HttpError("no host in %r" % url)
    try:
        port = int(port) if port else 80
    except ValueError:
        raise HttpError("bad port in %r" % url)
    return host, port, path


def join(base, relative):
    """relative resolved against the URL base (a file beside a manifest)."""
    if relative.startswith("http://"):
        return relative
    if relative.startswith("/"):
        host, port, _ = parse_url(base)
        return "http://%s:%d%s" % (host, port, relative)
    return base[:base.rfind("/") + 1] + relative


def _read(sock, buf):
    """Bytes read into buf: 0 at the end of the stream, None when nothing is there yet."""
    try:
        if hasattr(sock, "readinto"):
            return sock.readinto(buf)  # MicroPython: None when it would block
        return sock.recv_into(buf)
    except OSError as exc:
        if exc.args and exc.args[0] in _WOULD_BLOCK:
            return None
        raise HttpError("connection failed: %s" % exc)


def _send_all(sock, data):
    sent = 0
    while sent < len(data):
        sent += sock.send(data[sent:])


def _chunks(sock, buf, idle_ms):
    """Step generator: (n) read into buf; 0 at the end; HttpError after idle_ms of silence."""
    last = ticks_ms()
    while True:
        n = _read(sock, buf)
        if n is None:
            if ticks_diff(ticks_ms(), last) > idle_ms:
                raise HttpError("no data for %d s: server gone?" % (idle_ms // 1000))
            yield None
            continue
        return n


def get_steps(url, sink, buf, idle_ms=10000, max_bytes=None):
    """Step generator: GET url and feed the body to sink(memoryview) in pieces; returns
    the body's length. Raises HttpError for a status other than 200, a body shorter
    than its Content-Length, more than max_bytes, or idle_ms without data."""
    host, port, path = parse_url(url)
    try:
        address = socket.getaddrinfo(host, port)[0][-1]
    except OSError as exc:
        raise HttpError("cannot resolve %s: %s" % (host, exc))
    sock = socket.socket()
    try:
        sock.settimeout(_CONNECT_TIMEOUT_S)
        try:
            sock.connect(address)
            _send_all(sock, b"GET " + path.encode() + b" HTTP/1.0\r\nHost: " + host.encode()
                      + b"\r\nConnection: close\r\n\r\n")
        except OSError as exc:
            raise HttpError("cannot reach %s:%d: %s" % (host, port, exc))
        sock.setblocking(False)
        view = memoryview(buf)
        body_start, filled = yield from _headers(sock, buf, view, idle_ms)
        length = _content_length(bytes(view[:body_start]), url)
        received = filled - body_start
        if received:
            sink(view[body_start:filled])
        while length is None or received < length:
            if max_bytes is not None and received > max_bytes:
                raise HttpError("%s is larger than %d bytes" % (url, max_bytes))
            n = yield from _chunks(sock, buf, idle_ms)
            if not n:
                break
            received += n
            sink(view[:n])
        if length is not None and received != length:
            raise HttpError("truncated: got %d of %d bytes of %s" % (received, length, url))
        if max_bytes is not None and received > max_bytes:
            raise HttpError("%s is larger than %d bytes" % (url, max_bytes))
        return received
    finally:
        sock.close()


def _headers(sock, buf, view, idle_ms):
    """Read until the end of the headers; (where the body starts, bytes in buf)."""
    filled = 0
    while True:
        if filled == len(buf):
            raise HttpError("response headers longer than %d bytes" % len(buf))
        n = yield from _chunks(sock, view[filled:], idle_ms)
        if not n:
            raise HttpError("connection closed before the response headers ended")
        filled += n
        end = bytes(view[:filled]).find(b"\r\n\r\n")
        if end >= 0:
            return end + 4, filled


def _content_length(head, url):
    lines = head.split(b"\r\n")
    status = lines[0].split()
    if len(status) < 2 or not status[0].startswith(b"HTTP/"):
        raise HttpError("not an HTTP response from %s" % url)
    if status[1] != b"200":
        raise HttpError("HTTP %s for %s" % (status[1].decode(), url))
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip().decode())
            except ValueError:
                raise HttpError("bad Content-Length from %s" % url)
    return None
