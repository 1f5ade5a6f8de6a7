# A scripted MQTT peer for client tests on both interpreters: a TCP listener on
# 127.0.0.1 whose one connection is served by a thread that follows a script.
# Steps: ("packet",) read one MQTT packet and record it; ("packet_head",) read one
# and record its first 8 bytes and its length (for packets too big to keep); ("request",)
# read an HTTP request's head and record it (the peer then plays an HTTP server); ("send", bytes);
# ("sleep", ms); ("close",); ("hold", ms) keep the socket open, reading nothing.
import _thread
import os
import socket
import time

from ticks import sleep_ms


def _port_candidates():
    while True:
        yield 20000 + int.from_bytes(os.urandom(2), "big") % 30000


class ScriptedBroker:
    def __init__(self, script):
        self.script = script
        self.packets = []  # raw bytes of each packet the client sent
        self.done = False
        self.error = None
        self.listener = socket.socket()
        if hasattr(socket, "SO_REUSEADDR"):
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for port in _port_candidates():
            try:
                self.listener.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
                self.port = port
                break
            except OSError:
                pass
        self.listener.listen(1)
        _thread.start_new_thread(self._serve, ())

    def _recv_exact(self, conn, n, keep=True):
        chunks = []
        got = 0
        while got < n:
            chunk = conn.recv(min(n - got, 2048))
            if not chunk:
                raise OSError("client closed")
            got += len(chunk)
            if keep:
                chunks.append(chunk)
        return b"".join(chunks)

    def _read_packet(self, conn, keep=True):
        raw = self._recv_exact(conn, 1)
        length = 0
        shift = 0
        while True:
            byte = self._recv_exact(conn, 1)
            raw += byte
            length |= (byte[0] & 0x7F) << shift
            shift += 7
            if not byte[0] & 0x80:
                break
        if keep:
            return raw + self._recv_exact(conn, length)
        head = raw + self._recv_exact(conn, min(length, 8))
        self._recv_exact(conn, length - min(length, 8), keep=False)
        return head[:8], len(raw) + length

    def _serve(self):
        conn = None
        try:
            conn, _ = self.listener.accept()
            for step in self.script:
                kind = step[0]
                if kind == "packet":
                    self.packets.append(self._read_packet(conn))
                elif kind == "packet_head":
                    self.packets.append(self._read_packet(conn, keep=False))
                elif kind == "request":
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        head += self._recv_exact(conn, 1)
                    self.packets.append(head)
                elif kind == "send":
                    conn.send(step[1])
                elif kind in ("sleep", "hold"):
                    sleep_ms(step[1])
                elif kind == "close":
                    conn.close()
                    conn = None
        except Exception as exc:
            self.error = exc
        finally:
            if conn is not None:
                conn.close()
            self.listener.close()
            self.done = True

    def wait(self, timeout_ms=5000):
        waited = 0
        while not self.done and waited < timeout_ms:
            time.sleep(0.01)
            waited += 10
        assert self.done, "scripted broker did not finish its script"
        if self.error is not None:
            raise self.error
        return self.packets


CONNACK_OK = b"\x20\x02\x00\x00"
