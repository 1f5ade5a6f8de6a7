# A bounded FIFO for messages waiting for a link: when it is full (by count or by
# bytes) the oldest item is dropped and counted, so memory stays bounded however long
# the outage lasts.


class RingBuffer:
    def __init__(self, capacity, max_bytes=None):
        self._items = [None] * capacity
        self._sizes = [0] * capacity
        self._head = 0
        self._count = 0
        self._bytes = 0
        self.max_bytes = max_bytes
        self.dropped = 0

    def __len__(self):
        return self._count

    def push(self, item, size=None):
        """Append item; drop the oldest items while over a bound. size: the item's
        bytes (default len(item))."""
        size = len(item) if size is None else size
        if self.max_bytes is not None and size > self.max_bytes:
            self.dropped += 1  # could never fit: drop the new item itself
            return
        self.make_room(size)
        slot = (self._head + self._count) % len(self._items)
        self._items[slot] = item
        self._sizes[slot] = size
        self._count += 1
        self._bytes += size

    def make_room(self, size):
        """Drop (and count) the oldest items until one of size bytes fits; how many.
        A caller that reports the drop count inside the item it pushes next calls this
        first, so that count includes what the push would drop."""
        dropped = 0
        while self._count and (self._count == len(self._items) or
                               (self.max_bytes is not None and self._bytes + size > self.max_bytes)):
            self.pop()
            dropped += 1
        self.dropped += dropped
        return dropped

    def peek(self):
        return self._items[self._head] if self._count else None

    def pop(self):
        if not self._count:
            return None
        item = self._items[self._head]
        self._items[self._head] = None
        self._bytes -= self._sizes[self._head]
        self._head = (self._head + 1) % len(self._items)
        self._count -= 1
        return item

    def clear(self):
        while self._count:
            self.pop()
