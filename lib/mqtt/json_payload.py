# A message payload that is a value written as JSON while it is sent, for
# MQTTClient.publish(): a large value (a whole config) never exists in the heap as one
# string, which a fragmented heap may have no room for. The value is encoded twice,
# once to count its bytes (MQTT sends the length first), once onto the socket through
# one small buffer. (Text made piece by piece: text_payload.py.)
import io
import json


class _Count(io.IOBase):
    def __init__(self):
        self.n = 0

    def write(self, data):
        # MicroPython's json.dump writes bytes; CPython's writes str.
        self.n += len(data.encode() if type(data) is str else data)
        return len(data)


class _Chunks(io.IOBase):
    """Fills buf and hands each full one to send(view)."""

    def __init__(self, send, buf):
        self._send = send
        self._buf = buf
        self._view = memoryview(buf)
        self._used = 0

    def write(self, data):
        if type(data) is str:
            data = data.encode()
        n = len(data)
        done = 0
        while done < n:
            if self._used == len(self._buf):
                self.flush()
            take = min(n - done, len(self._buf) - self._used)
            self._buf[self._used:self._used + take] = data[done:done + take]
            self._used += take
            done += take
        return n

    def flush(self):
        if self._used:
            self._send(self._view[:self._used])
            self._used = 0


class JsonPayload:
    """value, to be sent as JSON text."""

    def __init__(self, value):
        self.value = value

    def __len__(self):
        count = _Count()
        json.dump(self.value, count)
        return count.n

    def write_to(self, send, buf):
        """Encode the value into buf, calling send(memoryview) each time it is full."""
        chunks = _Chunks(send, buf)
        json.dump(self.value, chunks)
        chunks.flush()

    def text(self):
        """The whole text at once (for a client that takes only strings)."""
        return json.dumps(self.value)

