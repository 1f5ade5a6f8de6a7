# Staged updates of application files, the download side. The request names a
# manifest by URL and its sha256; the manifest lists files with their sha256 and size:
#   {"version": "0.2.0", "files": [{"path": "firmware/node.py", "sha256": "...", "size": 1234}]}
# (a file may carry its own "url"; by default it lies beside the manifest, under its
# path). Each file streams through one small buffer into ota-files/new/ while it is hashed;
# the staged manifest is written last, after every hash matched. Any failure removes
# the staging folder: a bad or partial update changes nothing.
import json
import os
from binascii import hexlify
from hashlib import sha256 as new_sha256

from atomicfile import exists, write_atomic
from httpget import HttpError, get_steps, join as url_join
from micropython import const
from ota_files import MANIFEST, STAGED, join, make_dirs, remove_tree

_MANIFEST_MAX = const(8192)
_BUF_SIZE = const(512)
_HEX = const("0123456789abcdef")
_SPACE_MARGIN = const(16384)  # bytes left free on the flash after staging


class UpdateError(ValueError):
    """The update was refused or failed; nothing was changed. The message says why."""


def _check_hash(value, what):
    if type(value) is not str or len(value) != 64 or any(c not in _HEX for c in value):
        raise UpdateError("%s must be 64 lowercase hex digits (a sha256)" % what)


def check_request(url, sha256):
    """Raises UpdateError unless url is an http:// URL and sha256 a hex sha256."""
    if type(url) is not str or not url.startswith("http://") or len(url) > 512:
        raise UpdateError("'url' must be the http:// URL of a manifest")
    _check_hash(sha256, "'sha256'")


def _check_path(path, allowed):
    if type(path) is not str or not path or len(path) > 96:
        raise UpdateError("manifest: every file needs a 'path'")
    if path.startswith("/") or ".." in path or "//" in path or "\\" in path:
        raise UpdateError("manifest: path %r leaves the application folders" % path)
    if not any(path.startswith(prefix) for prefix in allowed):
        raise UpdateError("manifest: %r is not under %s" % (path, ", ".join(allowed)))


def check_manifest(manifest, allowed, required=()):
    """UpdateError unless manifest is well formed, its paths are under allowed, and each
    of required (path prefixes) starts one of its paths."""
    if type(manifest) is not dict or type(manifest.get("version")) is not str:
        raise UpdateError("manifest: needs a 'version' string")
    files = manifest.get("files")
    if type(files) is not list or not files:
        raise UpdateError("manifest: needs a non-empty 'files' list")
    seen = []
    for entry in files:
        if type(entry) is not dict:
            raise UpdateError("manifest: each file must be an object")
        _check_path(entry.get("path"), allowed)
        if entry["path"] in seen:
            raise UpdateError("manifest: %s listed twice" % entry["path"])
        seen.append(entry["path"])
        _check_hash(entry.get("sha256"), "manifest: sha256 of %s" % entry["path"])
        if type(entry.get("size")) is not int or entry["size"] < 0:
            raise UpdateError("manifest: %s needs its 'size' in bytes" % entry["path"])
    for prefix in required:
        if not any(path.startswith(prefix) for path in seen):
            raise UpdateError("manifest: no %s* file: this device needs one in an update" % prefix)


def _free_bytes(root):
    try:
        stat = os.statvfs(root or ".")
    except (OSError, AttributeError):
        return None
    return stat[0] * stat[4]  # block size * free blocks


def stage_steps(root, url, sha256, log=print, allowed=("firmware/", "lib/"), required=()):
    """Step generator: fetch, verify and stage the update; returns its manifest.
    allowed: the folders it may write; required: path prefixes it must carry (see
    check_manifest). Raises UpdateError (nothing changed) when anything is wrong."""
    staging = join(root, STAGED)
    remove_tree(staging)  # a half-staged earlier attempt
    buf = bytearray(_BUF_SIZE)
    try:
        manifest = yield from _manifest_steps(url, sha256, buf, allowed, required)
        total = sum(entry["size"] for entry in manifest["files"])
        free = _free_bytes(root)
        if free is not None and total + _SPACE_MARGIN > free:
            raise UpdateError("the update needs %d bytes, the flash has %d free" % (total, free))
        for entry in manifest["files"]:
            yield from _file_steps(url_join(url, entry.get("url") or entry["path"]), entry,
                                   join(staging, entry["path"]), buf)
            log("ota: %s verified" % entry["path"])
        paths = [entry["path"] for entry in manifest["files"]]
        added = [p for p in paths if not exists(join(root, p))]  # removed again on a rollback
        write_atomic(join(root, MANIFEST), json.dumps({"version": manifest["version"], "files": paths,
                                                       "added": added}))
    except HttpError as exc:
        remove_tree(staging)
        raise UpdateError("download failed: %s" % exc)
    except BaseException:
        remove_tree(staging)
        raise
    log("ota: %s staged, %d files, %d bytes" % (manifest["version"], len(paths), total))
    return manifest


def _manifest_steps(url, sha256, buf, allowed, required):
    data = bytearray()
    yield from get_steps(url, data.extend, buf, max_bytes=_MANIFEST_MAX)
    digest = new_sha256(data).digest()
    if hexlify(digest).decode() != sha256:
        raise UpdateError("manifest sha256 does not match the request")
    try:
        manifest = json.loads(data)
    except ValueError:
        raise UpdateError("manifest is not JSON")
    check_manifest(manifest, allowed, required)
    return manifest


def _file_steps(url, entry, target, buf):
    make_dirs(target)
    digest = new_sha256()
    with open(target, "wb") as out:
        def sink(chunk):
            digest.update(chunk)
            out.write(chunk)

        size = yield from get_steps(url, sink, buf, max_bytes=entry["size"])
    if size != entry["size"]:
        raise UpdateError("%s: got %d bytes, the manifest says %d" % (entry["path"], size, entry["size"]))
    if hexlify(digest.digest()).decode() != entry["sha256"]:
        raise UpdateError("%s: sha256 does not match the manifest" % entry["path"])
