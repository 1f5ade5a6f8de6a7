# Helpers for tests that run on both CPython and MicroPython, where pytest
# (and its fixtures) do not exist.
import os


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exception of exc_type it raised; fail if it did not."""
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError("%s not raised by %r" % (exc_type.__name__, fn))


def tmpdir():
    """A fresh, empty directory for one test (the runner points FARMNODE_TEST_TMP at pytest's tmp)."""
    base = os.getenv("FARMNODE_TEST_TMP") or "/tmp"
    while True:
        path = "%s/t%s" % (base, "".join("%02x" % b for b in os.urandom(4)))
        try:
            os.mkdir(path)
            return path
        except OSError:
            pass  # name taken; draw again


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def read_text(path):
    with open(path) as f:
        return f.read()


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


def drive(steps):
    """Run a step generator to its end without sleeping; return (times it yielded, result)."""
    yields = 0
    try:
        while True:
            next(steps)
            yields += 1
    except StopIteration as stop:
        return yields, stop.value
