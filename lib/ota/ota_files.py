# Where lib/ota keeps an update on the device, and the file helpers both sides use: the
# fetch (ota_fetch, staging) and the boot (ota, Swap). Apart, so that staging an update
# does not load the swap's code, nor the swap the fetch's.
import json
import os

from atomicfile import exists

# The folder: not a valid module name: a folder named like a module ("ota") would shadow it on sys.path.
DIR = "ota-files"
STAGED = DIR + "/new"
MANIFEST = STAGED + "/manifest.json"
OLD = DIR + "/old"  # the files an update replaced, while it is on trial (ota)
TRIAL = DIR + "/trial.json"
REPORT = DIR + "/report.json"


def join(root, path):
    return root.rstrip("/") + "/" + path if root else path


def is_dir(path):
    try:
        return os.stat(path)[0] & 0x4000 != 0
    except OSError:
        return False


def make_dirs(path):
    """Every folder above path (a file's path)."""
    end = path.find("/", 1)
    while end > 0:
        if not is_dir(path[:end]):
            os.mkdir(path[:end])
        end = path.find("/", end + 1)


def remove_tree(path):
    if is_dir(path):
        for name in os.listdir(path):
            remove_tree(path + "/" + name)
        os.rmdir(path)
    elif exists(path):
        os.remove(path)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
