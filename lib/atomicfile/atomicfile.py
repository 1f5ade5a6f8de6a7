# Replace a file so that a reset at any moment leaves the old file or the new one,
# never a mix: write a temporary file beside it, then rename it over the old one.
import os
from micropython import const

_TMP = const(".tmp")


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def write_atomic(path, chunks, binary=False):
    """Write chunks (a str, or an iterable of str; bytes when binary) to path atomically.

    If writing fails part-way the old file is untouched and the partial
    temporary file is removed; the error propagates to the caller."""
    if isinstance(chunks, (str, bytes)):
        chunks = (chunks,)
    tmp = path + _TMP
    f = open(tmp, "wb" if binary else "w")
    try:
        for chunk in chunks:
            f.write(chunk)
        f.flush()
        if hasattr(os, "fsync"):  # CPython: make the bytes durable before the rename
            os.fsync(f.fileno())
    except BaseException:
        f.close()
        os.remove(tmp)
        raise
    f.close()
    try:
        os.rename(tmp, path)  # atomic replace on LittleFS and POSIX
    except OSError:
        # FAT will not rename over an existing file; a reset between these two
        # lines leaves only the complete temporary file, which recover() restores.
        os.remove(path)
        os.rename(tmp, path)


def recover(path):
    """After a reset: finish a write whose rename was lost, drop a torn one.

    When both files exist the temporary one is a torn write and is removed.
    When only the temporary one exists it is either the FAT case above (complete)
    or a torn first write; it is renamed into place and the caller's parser,
    which must check the content anyway, tells the two apart."""
    tmp = path + _TMP
    if not exists(tmp):
        return False
    if exists(path):
        os.remove(tmp)
        return False
    os.rename(tmp, path)
    return True
