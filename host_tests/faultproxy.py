"""A TCP proxy between a device and the broker that makes the network misbehave on
command: delay, black-hole (the socket stays open, nothing is forwarded), cut (FIN),
reset (RST) and refuse new connections, each direction on its own, at once or on a
schedule (play). Loopback only; one thread serves every connection."""
import selectors
import socket
import struct
import threading
import time

UP, DOWN = "up", "down"  # device -> broker, broker -> device


class _Pair:
    """One proxied connection: the device's socket and ours to the broker."""

    def __init__(self, device, broker):
        self.sockets = {UP: device, DOWN: broker}  # read from sockets[d], write to the other
        self.pending = {UP: [], DOWN: []}  # (due monotonic time, bytes) held by a delay
        self.opened = time.monotonic()

    def target(self, direction):
        return self.sockets[DOWN if direction == UP else UP]

    def close(self, reset=False):
        for sock in self.sockets.values():
            if reset:  # linger 0: close() sends RST, as a crashed peer or a NAT timeout does
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()


class FaultProxy:
    def __init__(self, broker_host, broker_port):
        self.broker = (broker_host, broker_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.host = "127.0.0.1"
        self.delay_s = {UP: 0.0, DOWN: 0.0}
        self.blackhole = {UP: False, DOWN: False}
        self.refusing = False
        self.connections = 0  # accepted and forwarded, since the start
        self._pairs = []
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ, None)
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._thread.start()

    # --- faults, callable from the test's thread ---

    def cut(self):
        """Close every open connection cleanly (FIN both ways)."""
        self._close_all(reset=False)

    def reset(self):
        """Abort every open connection (RST both ways)."""
        self._close_all(reset=True)

    def black_hole(self, up=True, down=True):
        """Keep the connections open but forward nothing in these directions (data is lost)."""
        with self._lock:
            self.blackhole = {UP: up, DOWN: down}

    def heal(self):
        """Forward everything at once again, accept new connections."""
        with self._lock:
            self.blackhole = {UP: False, DOWN: False}
            self.delay_s = {UP: 0.0, DOWN: 0.0}
            self.refusing = False

    def delay(self, up_s=0.0, down_s=0.0):
        with self._lock:
            self.delay_s = {UP: up_s, DOWN: down_s}

    def refuse(self, refusing=True):
        """New connections are accepted and reset at once (the broker looks down)."""
        with self._lock:
            self.refusing = refusing

    def play(self, schedule):
        """Apply faults on a schedule, in this (the caller's) thread: schedule is a list of
        (seconds from now, fault, keyword arguments), fault a method's name: "delay",
        "black_hole", "cut", "reset", "refuse", "heal"."""
        started = time.monotonic()
        for at_s, fault, kwargs in sorted(schedule, key=lambda step: step[0]):
            time.sleep(max(0.0, started + at_s - time.monotonic()))
            getattr(self, fault)(**kwargs)

    def open_connections(self):
        with self._lock:
            return len(self._pairs)

    def close(self):
        self._running = False
        self._thread.join(5)
        self._close_all(reset=False)
        self.listener.close()

    # --- the serving thread ---

    def _close_all(self, reset):
        with self._lock:
            pairs, self._pairs = self._pairs, []
            for pair in pairs:
                for sock in pair.sockets.values():
                    try:
                        self._selector.unregister(sock)
                    except (KeyError, ValueError):
                        pass
                pair.close(reset)

    def _serve(self):
        while self._running:
            for key, _ in self._selector.select(timeout=0.01):
                if key.data is None:
                    self._accept()
                else:
                    self._forward(*key.data)
            self._release_delayed()

    def _accept(self):
        device, _ = self.listener.accept()
        with self._lock:
            refusing = self.refusing
        if refusing:
            device.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            device.close()
            return
        try:
            broker = socket.create_connection(self.broker, timeout=2)
        except OSError:
            device.close()
            return
        for sock in (device, broker):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
        pair = _Pair(device, broker)
        with self._lock:
            self._pairs.append(pair)
            self.connections += 1
            self._selector.register(device, selectors.EVENT_READ, (pair, UP))
            self._selector.register(broker, selectors.EVENT_READ, (pair, DOWN))

    def _forward(self, pair, direction):
        try:
            data = pair.sockets[direction].recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # one side closed: close the other, as a path through a NAT would
            self._drop(pair)
            return
        with self._lock:
            if self.blackhole[direction]:
                return
            delay = self.delay_s[direction]
        if delay:
            pair.pending[direction].append((time.monotonic() + delay, data))
        else:
            self._send(pair, direction, data)

    def _release_delayed(self):
        now = time.monotonic()
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            for direction, queue in pair.pending.items():
                while queue and queue[0][0] <= now:
                    self._send(pair, direction, queue.pop(0)[1])

    def _send(self, pair, direction, data):
        try:
            pair.target(direction).setblocking(True)
            pair.target(direction).sendall(data)
            pair.target(direction).setblocking(False)
        except OSError:
            self._drop(pair)

    def _drop(self, pair):
        with self._lock:
            if pair not in self._pairs:
                return
            self._pairs.remove(pair)
            for sock in pair.sockets.values():
                try:
                    self._selector.unregister(sock)
                except (KeyError, ValueError):
                    pass
        pair.close()
