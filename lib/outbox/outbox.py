# A bounded queue of (topic, payload) messages in a file on flash, for a link that is
# down: it outlives a reset and holds far more than RAM could. One line per message,
# b"<payload length>\t<topic>\t<payload>\n": a line cut short by a reset mid-write
# fails its length check and is skipped. When the file would pass its bound, the oldest
# half goes (counted), as a RAM queue drops its oldest. A payload must hold no newline
# (json.dumps never writes one). Flash wears: the owner appends only while offline.
import os

from atomicfile import exists, recover, write_atomic
from micropython import const

DEFAULT_PATH = "outbox.txt"
_NEWLINE = const(10)
_COPY_CHUNK = const(256)


def _bytes(value):
    return value.encode() if isinstance(value, str) else bytes(value)


class Outbox:
    """path: the file; max_bytes: its bound. Messages are read back in order with
    take(), from a position kept in RAM: rewind() starts again from the oldest."""

    def __init__(self, path, max_bytes):
        self.path = path
        self.max_bytes = max_bytes
        self.unreadable = 0  # lines skipped: cut by a reset, or garbage
        self._read_at = 0
        recover(path)  # a drop of the oldest half cut by a reset: the old file or the new, whole
        try:
            self.size = os.stat(path)[6]
        except OSError:
            self.size = 0
        if self.size:
            with open(path, "rb") as f:
                f.seek(self.size - 1)
                sealed = f.read(1) == b"\n"
            if not sealed:  # cut mid-line: end it, so the next message starts clean
                with open(path, "ab") as f:
                    f.write(b"\n")
                self.size += 1

    def __len__(self):
        """Bytes not read back yet."""
        return self.size - self._read_at

    def append(self, topic, payload):
        """Add a message; returns how many of the oldest were dropped to make room."""
        topic, payload = _bytes(topic), _bytes(payload)
        head = str(len(payload)).encode() + b"\t"
        length = len(head) + len(topic) + len(payload) + 2
        if length > self.max_bytes:
            return 1  # could never fit: the new message itself is dropped
        dropped = self.make_room(len(topic), len(payload))
        with open(self.path, "ab") as f:
            for piece in (head, topic, b"\t", payload, b"\n"):
                f.write(piece)
        self.size += length
        return dropped

    def make_room(self, topic_bytes, payload_bytes):
        """Drop the oldest until a message of these sizes fits; how many were dropped."""
        length = len(str(payload_bytes)) + topic_bytes + payload_bytes + 3
        dropped = 0
        while self.size and self.size + length > self.max_bytes:
            dropped += self._drop_oldest_half()
        return dropped

    def take(self, count):
        """Up to count messages after the last taken, as (topic str, payload bytes)."""
        messages = []
        if self._read_at >= self.size:
            return messages
        with open(self.path, "rb") as f:
            f.seek(self._read_at)
            while len(messages) < count:
                line = f.readline()
                if not line:
                    break
                self._read_at += len(line)
                message = _parse(line)
                if message is None:
                    self.unreadable += 1
                else:
                    messages.append(message)
        return messages

    def rewind(self):
        self._read_at = 0

    def clear(self):
        if self.size or exists(self.path):
            try:
                os.remove(self.path)
            except OSError:
                pass
        self.size = self._read_at = 0

    def _drop_oldest_half(self):
        """Write the newer half (whole lines) as the file, atomically; returns the number
        of messages dropped."""
        middle = self.size // 2
        dropped = [0]

        def newer_half():
            with open(self.path, "rb") as old:
                while old.tell() < middle:  # count the lines that go
                    if not old.readline():
                        break
                    dropped[0] += 1
                while True:
                    chunk = old.read(_COPY_CHUNK)
                    if not chunk:
                        break
                    yield chunk

        write_atomic(self.path, newer_half(), binary=True)
        self.size = os.stat(self.path)[6]
        self._read_at = 0
        return dropped[0]


def _parse(line):
    """(topic, payload) of a line, or None when it is not whole."""
    first = line.find(b"\t")
    second = line.find(b"\t", first + 1)
    if first <= 0 or second < 0 or line[-1] != _NEWLINE:
        return None
    try:
        length = int(line[:first])
    except ValueError:
        return None
    payload = line[second + 1:-1]
    if len(payload) != length:
        return None
    return line[first + 1:second].decode(), payload
