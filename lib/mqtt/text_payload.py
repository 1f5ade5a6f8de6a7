# A message payload that is text made piece by piece while it is sent, for
# MQTTClient.publish(): a long message never exists in the heap as one string. The
# pieces are made twice, once to count their bytes (MQTT sends the length first), once
# onto the socket through the client's small buffer. Imports nothing: a device loads it
# for one message and lets it go.


class TextPayload:
    """pieces: a function returning an iterable of str (a generator function), called
    each time the text is counted or sent; together they make the payload."""

    def __init__(self, pieces):
        self.pieces = pieces

    def __len__(self):
        n = 0
        for piece in self.pieces():
            n += len(piece.encode())
        return n

    def write_to(self, send, buf):
        """Copy the pieces into buf, calling send(memoryview) each time it is full."""
        view = memoryview(buf)
        used = 0
        for piece in self.pieces():
            data = piece.encode()
            done = 0
            while done < len(data):
                if used == len(buf):
                    send(view)
                    used = 0
                take = min(len(data) - done, len(buf) - used)
                buf[used:used + take] = data[done:done + take]
                used += take
                done += take
        if used:
            send(view[:used])

    def text(self):
        """The whole text at once (for a client that takes only strings)."""
        return "".join(self.pieces())
