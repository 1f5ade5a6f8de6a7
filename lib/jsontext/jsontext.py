# JSON text as json.dumps writes it, but floats with 15 significant digits: the most a
# double holds exactly (written by this module only where json.dumps shows more).
# MicroPython's own repr of a double shows the binary noise (json.dumps(70.9) ==
# "70.90000000000001" on the unix port); a value rounded to 0.1 must reach the wire as
# 70.9. Strings, ints, booleans and None go through json.dumps.
# pieces() writes the same text piece by piece, for a payload sent as it is written
# (a whole config): it never exists in the heap as one string, nor as a copy.
import json

# json.dumps itself where its floats come out clean already (CPython; a single-precision
# port such as the ESP32's, whose repr keeps fewer digits): it is C, and much faster.
_CLEAN = json.dumps([70.9, 8.8, 1.834]) == "[70.9, 8.8, 1.834]"


def _float(value):
    text = "%.15g" % value
    for mark in ".en":  # 70.9, 1e-07, nan / inf: already a float's text
        if mark in text:
            return text
    return text + ".0"  # 3.0 stays a float, as json.dumps writes it


class Omitting:
    """value, written by pieces() without the dict keys at the dotted paths in omit
    (a config without its secrets, with no copy made of it)."""

    def __init__(self, value, omit):
        self.value = value
        self.omit = omit


def pieces(value, omit=(), path=""):
    """value's JSON text as a sequence of str (a generator); dicts, lists, tuples, str,
    int, float, bool, None and Omitting. omit, path: what Omitting says, where."""
    kind = type(value)
    if kind is float and not _CLEAN:
        yield _float(value)
    elif kind is dict:
        yield "{"
        first = True
        for key in value:
            key = key if type(key) is str else str(key)
            if omit and path + key in omit:
                continue
            if not first:
                yield ", "  # constants: a piece allocates only for what it writes
            first = False
            yield json.dumps(key)
            yield ": "
            yield from pieces(value[key], omit, path + key + "." if omit else path)
        yield "}"
    elif kind is list or kind is tuple:
        yield "["
        for i in range(len(value)):
            if i:
                yield ", "
            yield from pieces(value[i], omit, path)
        yield "]"
    elif kind is Omitting:
        yield from pieces(value.value, value.omit, "")
    else:
        yield json.dumps(value)


def _dumps(value):
    return "".join(pieces(value))


# dumps(value): value (dicts, lists, tuples, str, int, float, bool, None) as JSON text.
dumps = json.dumps if _CLEAN else _dumps
