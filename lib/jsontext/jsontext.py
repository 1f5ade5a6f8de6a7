# JSON text as json.dumps writes it, but floats with 15 significant digits: the most a
# double holds exactly (written by this module only where json.dumps shows more). MicroPython's own repr of a double shows the binary noise
# (json.dumps(70.9) == "70.90000000000001" on the unix port); a value rounded to 0.1
# must reach the wire as 70.9. Strings, ints, booleans and None go through json.dumps.
import json


def _float(value):
    text = "%.15g" % value
    for mark in ".en":  # 70.9, 1e-07, nan / inf: already a float's text
        if mark in text:
            return text
    return text + ".0"  # 3.0 stays a float, as json.dumps writes it


def _write(value, parts):
    kind = type(value)
    if kind is float:
        parts.append(_float(value))
    elif kind is dict:
        parts.append("{")
        first = True
        for key in value:
            if not first:
                parts.append(", ")
            first = False
            parts.append(json.dumps(key if type(key) is str else str(key)))
            parts.append(": ")
            _write(value[key], parts)
        parts.append("}")
    elif kind is list or kind is tuple:
        parts.append("[")
        for i in range(len(value)):
            if i:
                parts.append(", ")
            _write(value[i], parts)
        parts.append("]")
    else:
        parts.append(json.dumps(value))


def _dumps(value):
    parts = []
    _write(value, parts)
    return "".join(parts)


# dumps(value): value (dicts, lists, tuples, str, int, float, bool, None) as JSON text.
# json.dumps itself where its floats come out clean already (CPython; a single-precision
# port such as the ESP32's, whose repr keeps fewer digits): it is C, and much faster.
dumps = json.dumps if json.dumps([70.9, 8.8, 1.834]) == "[70.9, 8.8, 1.834]" else _dumps
