# HMAC-SHA256 (RFC 2104) on hashlib.sha256, for MicroPython ports that have no hmac
# module (the unix port and the ESP32 have hashlib.sha256; CPython has both). The API
# follows CPython's hmac: new(key, msg).digest() / hexdigest(), and compare_digest().
# MicroPython's hash objects cannot be copied and give their digest once, so each
# HMAC hashes its padded key afresh: 2 extra compression rounds, nothing for short messages.
from binascii import hexlify
from hashlib import sha256
from micropython import const

_BLOCK = const(64)  # SHA-256's block size in bytes
DIGEST_SIZE = 32


def _padded(key, pad):
    """The key XORed with pad over one block (a key longer than a block is hashed first)."""
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    out = bytearray(_BLOCK)
    for i in range(_BLOCK):
        out[i] = (key[i] if i < len(key) else 0) ^ pad
    return out


class HMAC:
    digest_size = DIGEST_SIZE

    def __init__(self, key, msg=None):
        if type(key) is str:
            raise TypeError("key must be bytes")
        self._outer_pad = _padded(key, 0x5C)
        self._inner = sha256(_padded(key, 0x36))
        self._digest = None
        if msg is not None:
            self.update(msg)

    def update(self, data):
        if self._digest is not None:
            raise ValueError("the digest was already taken")
        self._inner.update(data)

    def digest(self):
        if self._digest is None:
            outer = sha256(self._outer_pad)
            outer.update(self._inner.digest())
            self._digest = outer.digest()
        return self._digest

    def hexdigest(self):
        return hexlify(self.digest()).decode()


def new(key, msg=None):
    return HMAC(key, msg)


def compare_digest(a, b):
    """a == b for two byte strings, in a time that does not depend on where they differ
    (an attacker timing the answers cannot find a valid MAC byte by byte). A length
    difference returns at once: a MAC's length is no secret."""
    if type(a) is str:
        a = a.encode()
    if type(b) is str:
        b = b.encode()
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
