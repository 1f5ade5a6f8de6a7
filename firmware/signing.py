# Signed commands (README.md, "Signed commands: the wire form"). With signing.key set
# (32 bytes, hex), a command, a broadcast or a config is taken only as the envelope
#   {"signed": "<the command's JSON text, ASCII>", "ts": <Unix seconds>, "sig": "<64 hex>"}
# where sig = HMAC-SHA256(key, UTF-8 of "farmnode-sig-1\n<device_id>\n<kind>\n<ts>\n<signed>"),
# kind "command" (commands and broadcast topics) or "config" (config topic); a broadcast's
# sig may be {"<device_id>": "<64 hex>", ...}. The signature covers the exact characters
# of "signed", never a re-serialisation. It must also be fresh: ts within window_s of the
# device's clock (which must be set), not before this boot began, and not accepted before
# (a redelivery of an answered command_id gets its first answer; anything else is refused).
# This module is loaded only when a key is set or an envelope arrives.
from binascii import hexlify, unhexlify

from hmac_sha256 import compare_digest
from hmac_sha256 import new as hmac_new
from micropython import const

TAG = "farmnode-sig-1"
_REMEMBERED = const(32)  # accepted signatures kept to refuse a replay (the window bounds the rest)
_KEPT_BYTES = const(16)  # of each: 128 bits cannot collide by chance
# Both clocks count whole seconds: the boot's start, now - uptime, may come out up to a
# second late; a signature that old is no replay of an earlier boot's command.
_BOOT_SLACK_S = const(2)


class SignatureError(ValueError):
    """The message is refused; the text says why (it goes back in "error")."""


def mac_text(device_id, kind, ts, text):
    """What the signature covers (ASCII)."""
    return "%s\n%s\n%s\n%d\n%s" % (TAG, device_id, kind, ts, text)


def sign(key, device_id, kind, ts, text):
    """The hex signature of text for device_id: what a backend computes (tests use it)."""
    return hmac_new(key, mac_text(device_id, kind, ts, text).encode()).hexdigest()


class Verifier:
    """Checks envelopes for one node and remembers the signatures it accepted."""

    def __init__(self):
        self._macs = bytearray(_REMEMBERED * _KEPT_BYTES)
        self._times = [None] * _REMEMBERED  # the ts of each remembered signature
        self._next = 0
        self._floor = None  # ts at or below this are refused: their signatures were forgotten
        self._window_s = None  # of the last check (signing.window_s may change live)

    def open(self, data, kind, node):
        """(text, repeat) of an envelope: the signed JSON text, and whether this very
        message was accepted before (a redelivery or a replay). Raises SignatureError."""
        signing = node.cfg["signing"]
        if type(data) is not dict or "signed" not in data:
            raise SignatureError("missing: this device takes only signed %ss (README.md: Signed commands)" % kind)
        text = data["signed"]
        if type(text) is not str:
            raise SignatureError("'signed' must be a string: the %s's JSON text" % kind)
        if not signing["key"]:
            return text, False  # no key: nothing to check it with; taken as an unsigned message is
        ts = data.get("ts")
        if type(ts) is not int:
            raise SignatureError("'ts' must be a whole number of Unix seconds")
        sig = data.get("sig")
        if type(sig) is dict:  # a broadcast: one signature per device
            sig = sig.get(node.link.device_id)
            if sig is None:
                raise SignatureError("'sig' has no signature for %s" % node.link.device_id)
        if type(sig) is not str or len(sig) != 64:
            raise SignatureError("'sig' must be 64 hex digits, or an object of them by device_id")
        if len(text.encode()) != len(text):
            # MicroPython's JSON decoder and others differ on escaped non-ASCII: the bytes
            # signed would not be the bytes checked.
            raise SignatureError("'signed' must be ASCII (escape other characters as \\uXXXX inside it)")
        mac = hmac_new(unhexlify(signing["key"]), mac_text(node.link.device_id, kind, ts, text).encode()).digest()
        if not compare_digest(hexlify(mac), sig.lower()):
            raise SignatureError("bad: not made with this device's key for this %s" % kind)
        return text, self._fresh(ts, mac, signing["window_s"], node)

    def _fresh(self, ts, mac, window_s, node):
        """Whether a correctly signed message was seen before; SignatureError if it is
        out of the time window (a replay of an old one, or a clock that is off)."""
        now = node.clock.unix()
        if now is None:
            raise SignatureError("the device clock is not set yet (NTP): "
                                 "the age of a signed message cannot be checked")
        if self._window_s is not None and window_s > self._window_s:
            # A wider window: what was forgotten as out of the old one must stay refused.
            self._raise_floor(now - self._window_s)
        self._window_s = window_s
        if ts > now + window_s:
            raise SignatureError("signed %d s in the future (window %d s): check the signer's clock"
                                 % (ts - now, window_s))
        if ts < now - window_s:
            raise SignatureError("expired: signed %d s ago (window %d s)" % (now - ts, window_s))
        if ts < now - node.uptime_s() - _BOOT_SLACK_S:
            raise SignatureError("signed before this device started (a replay, or the signer's clock is behind)")
        kept = mac[:_KEPT_BYTES]
        for slot in range(_REMEMBERED):
            at = slot * _KEPT_BYTES
            if self._times[slot] == ts and self._macs[at:at + _KEPT_BYTES] == kept:
                return True
        if self._floor is not None and ts <= self._floor:
            raise SignatureError("too many signed messages within the window to tell a replay: "
                                 "sign it again")
        slot = self._next
        old = self._times[slot]
        if old is not None and old >= now - window_s:  # forgotten while it could still be replayed
            self._raise_floor(old)
        self._times[slot] = ts
        self._macs[slot * _KEPT_BYTES:(slot + 1) * _KEPT_BYTES] = kept
        self._next = (slot + 1) % _REMEMBERED
        return False

    def _raise_floor(self, ts):
        self._floor = ts if self._floor is None else max(self._floor, ts)
