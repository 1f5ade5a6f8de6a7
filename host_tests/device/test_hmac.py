# lib/hmac_sha256 against the HMAC-SHA-256 test vectors of RFC 4231 (section 4), on
# both interpreters: MicroPython has hashlib.sha256 but no hmac module.
from binascii import unhexlify

import hmac_sha256

# (key, data, expected HMAC-SHA-256 in hex) for test cases 1-4, 6 and 7; case 5 below.
RFC_4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    # a key longer than SHA-256's 64-byte block is hashed first
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. "
                    b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


def test_rfc_4231_vectors():
    for key, data, expected in RFC_4231:
        assert hmac_sha256.new(key, data).hexdigest() == expected, (key[:4], data[:20])
        assert hmac_sha256.new(key, data).digest() == unhexlify(expected)


def test_rfc_4231_truncated_output():
    # Test case 5: the first 128 bits of the MAC.
    mac = hmac_sha256.new(b"\x0c" * 20, b"Test With Truncation").digest()
    assert mac[:16] == unhexlify("a3b6167473100ee06e0c796c2955552b")


def test_update_in_pieces_equals_one_message():
    key, data, expected = RFC_4231[5]
    mac = hmac_sha256.new(key)
    for start in range(0, len(data), 7):
        mac.update(data[start:start + 7])
    assert mac.hexdigest() == expected
    assert mac.hexdigest() == expected  # a second call gives the same digest
    try:
        mac.update(b"more")
        raise AssertionError("update after the digest must fail")
    except ValueError:
        pass


def test_a_key_of_exactly_one_block_is_used_as_is():
    # 64 bytes: neither padded nor hashed; a 65-byte key is hashed, so they differ.
    block = bytes(range(64))
    assert hmac_sha256.new(block, b"x").digest() != hmac_sha256.new(block + b"\x00", b"x").digest()
    assert hmac_sha256.new(block[:63], b"x").digest() == hmac_sha256.new(block[:63] + b"\x00", b"x").digest()


def test_compare_digest():
    mac = hmac_sha256.new(b"Jefe", b"what do ya want for nothing?").digest()
    assert hmac_sha256.compare_digest(mac, bytes(mac))
    assert not hmac_sha256.compare_digest(mac, mac[:-1] + bytes([mac[-1] ^ 1]))
    assert not hmac_sha256.compare_digest(mac, bytes([mac[0] ^ 0x80]) + mac[1:])
    assert not hmac_sha256.compare_digest(mac, mac[:31])
    assert not hmac_sha256.compare_digest(b"", mac)
    assert hmac_sha256.compare_digest("5bdc", b"5bdc") and not hmac_sha256.compare_digest("5bdc", "5bdd")


def test_a_text_key_is_refused():
    try:
        hmac_sha256.new("Jefe", b"x")
        raise AssertionError("a str key must be refused (its bytes would be a guess)")
    except TypeError:
        pass
