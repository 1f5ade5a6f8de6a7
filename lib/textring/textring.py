# The last lines of a text log in one buffer allocated once: adding a line copies it
# in over the oldest bytes, so keeping a log costs no heap and leaves no holes in it
# however long the device runs.


class TextRing:
    def __init__(self, size=1024):
        self._buf = bytearray(size)
        self._end = 0  # where the next byte goes
        self._wrapped = False

    def add(self, line):
        """Keep line (a str, without its newline); a line longer than the ring keeps its end."""
        data = line.encode() + b"\n"
        buf = self._buf
        size = len(buf)
        if len(data) > size:
            data = data[len(data) - size:]
        end = self._end
        first = min(len(data), size - end)
        buf[end:end + first] = data[:first]
        rest = len(data) - first
        if rest:
            buf[:rest] = data[first:]
        if end + len(data) >= size:
            self._wrapped = True
        self._end = (end + len(data)) % size

    def lines(self):
        """The whole lines still kept, oldest first."""
        buf = self._buf
        if self._wrapped:
            data = bytes(buf[self._end:]) + bytes(buf[:self._end])
            data = data[data.find(b"\n") + 1:]  # the oldest line lost its start
        else:
            data = bytes(buf[:self._end])
        try:
            text = data.decode()
        except UnicodeError:  # a character cut where the ring wrapped
            text = "".join(chr(b) if b < 128 else "?" for b in data)
        return text.split("\n")[:-1]

    def clear(self):
        self._end = 0
        self._wrapped = False
