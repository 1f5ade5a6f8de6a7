# lib/ota's boot side on a device folder: swap in, trial boots, confirm, roll back, and
# a reset in the middle of a swap or a rollback (the download side, with an HTTP server,
# is in host_tests/host/test_ota.py).
import json
import os

from atomicfile import exists
from ota import Swap
from ota_files import MANIFEST, make_dirs
from testkit import read_text, tmpdir, write_text


def device(files):
    root = tmpdir()
    for path in files:
        make_dirs(root + "/" + path)
        write_text(root + "/" + path, files[path])
    return root


def stage(root, version, files):
    """What ota_fetch leaves when every hash matched."""
    for path in files:
        make_dirs(root + "/ota-files/new/" + path)
        write_text(root + "/ota-files/new/" + path, files[path])
    added = [p for p in files if not exists(root + "/" + p)]
    write_text(root + "/" + MANIFEST, json.dumps({"version": version, "files": list(files), "added": added}))


def logs():
    lines = []
    return lines, lines.append


def test_nothing_staged_nothing_happens():
    root = device({"firmware/app.py": "v1"})
    assert Swap(root, log=print).boot() is None
    assert read_text(root + "/firmware/app.py") == "v1"


def test_a_staged_update_is_swapped_in_and_kept_once_confirmed():
    root = device({"firmware/app.py": "v1", "firmware/keep.py": "same"})
    stage(root, "0.2.0", {"firmware/app.py": "v2", "lib/extra.py": "new"})
    lines, log = logs()
    swap = Swap(root, max_boots=3, log=log)
    assert swap.boot() == "trial" and swap.on_trial()
    assert read_text(root + "/firmware/app.py") == "v2" and read_text(root + "/lib/extra.py") == "new"
    assert read_text(root + "/firmware/keep.py") == "same"
    assert not exists(root + "/ota-files/new")
    assert swap.confirm() == "0.2.0"
    assert not swap.on_trial() and not exists(root + "/ota-files/old")
    assert swap.take_report() == {"result": "updated", "version": "0.2.0"}
    assert swap.take_report() is None  # reported once
    assert swap.boot() is None and read_text(root + "/firmware/app.py") == "v2"
    assert "0.2.0 on trial, boot 1 of 3" in lines[0]


def test_an_update_that_never_reaches_the_broker_is_rolled_back_after_max_boots():
    root = device({"firmware/app.py": "v1"})
    stage(root, "0.2.0", {"firmware/app.py": "v2-crashes", "firmware/new_module.py": "x"})
    swap = Swap(root, max_boots=3, log=print)
    assert [swap.boot() for _ in range(3)] == ["trial", "trial", "trial"]
    assert read_text(root + "/firmware/app.py") == "v2-crashes"
    assert swap.boot() == "rolled_back"
    assert read_text(root + "/firmware/app.py") == "v1"
    assert not exists(root + "/firmware/new_module.py")  # what the update added goes too
    assert not exists(root + "/ota-files/old") and not swap.on_trial()
    assert swap.take_report() == {"result": "rolled_back", "version": "0.2.0"}
    assert swap.confirm() is None  # the old files reaching the broker confirm nothing
    assert swap.boot() is None


def test_a_reset_in_the_middle_of_a_swap_finishes_it_at_the_next_boot():
    root = device({"firmware/a.py": "a1", "firmware/b.py": "b1"})
    stage(root, "0.3.0", {"firmware/a.py": "a2", "firmware/b.py": "b2"})
    # The journal is written, a.py moved aside and replaced, then the power went.
    write_text(root + "/ota-files/trial.json", json.dumps({"state": "swapping", "version": "0.3.0", "boots": 0,
                                                     "files": ["firmware/a.py", "firmware/b.py"], "added": []}))
    os.remove(root + "/" + MANIFEST)
    make_dirs(root + "/ota-files/old/firmware/a.py")
    os.rename(root + "/firmware/a.py", root + "/ota-files/old/firmware/a.py")
    os.rename(root + "/ota-files/new/firmware/a.py", root + "/firmware/a.py")
    swap = Swap(root, log=print)
    assert swap.boot() == "trial"
    assert read_text(root + "/firmware/a.py") == "a2" and read_text(root + "/firmware/b.py") == "b2"
    for _ in range(3):
        swap.boot()
    assert read_text(root + "/firmware/a.py") == "a1" and read_text(root + "/firmware/b.py") == "b1"


def test_a_reset_in_the_middle_of_a_rollback_finishes_it():
    root = device({"firmware/a.py": "a1", "firmware/b.py": "b1"})
    stage(root, "0.3.0", {"firmware/a.py": "a2", "firmware/b.py": "b2"})
    swap = Swap(root, max_boots=1, log=print)
    swap.boot()
    trial = json.loads(read_text(root + "/ota-files/trial.json"))
    trial["state"] = "rolling_back"
    write_text(root + "/ota-files/trial.json", json.dumps(trial))
    os.remove(root + "/firmware/a.py")  # the power went after the first file's removal
    assert swap.boot() == "rolled_back"
    assert read_text(root + "/firmware/a.py") == "a1" and read_text(root + "/firmware/b.py") == "b1"
