# What commands, calibration and the technician's REPL share to read the values they
# are given and to echo them back safely.
from firmware.errors import CommandError


def shown(value):
    """A value echoed in an error or a log: cut short (a hostile 3 kB name is not sent
    back whole) and in ASCII (a name with a lone surrogate would not be valid UTF-8)."""
    if type(value) in (list, dict):  # repr of a deeply nested one would recurse too deep
        return "%s of %d" % ("a list" if type(value) is list else "an object", len(value))
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    out = ""
    for ch in text:
        code = ord(ch)
        out += ch if 32 <= code < 127 else "\\u%04x" % code
    return out


def valid_id(value):
    """A command_id we echo back: 1 to 64 printable ASCII characters."""
    if type(value) is not str or not 0 < len(value) <= 64:
        return False
    for ch in value:
        if not 32 <= ord(ch) < 127:
            return False
    return True


def number(params, key, low, high, required=True):
    """params[key] as a number within low..high (None when absent and not required)."""
    value = params.get(key)
    if value is None:
        if required:
            raise CommandError("missing parameter '%s'" % key)
        return None
    if type(value) not in (int, float) or value != value:  # bool is not a number here; NaN fails
        raise CommandError("'%s' must be a number" % key)
    if not low <= value <= high:
        raise CommandError("'%s' must be between %s and %s, got %s" % (key, low, high, value))
    return value


def state(value):
    """A relay state as True (on) or False (off)."""
    if value in (True, 1, "on", "ON", "On", "1", "true"):
        return True
    if value in (False, 0, "off", "OFF", "Off", "0", "false"):
        return False
    raise CommandError("'state' must be on/off, 1/0 or true/false, got %s" % shown(value))
