# Staged updates of application files, the boot side. ota_fetch puts verified files in
# ota-files/new/ with a manifest; at the next boot, before the application is imported,
# Swap.boot() moves the current files to ota-files/old/ and the new ones into place. The
# update is on trial until the application calls confirm() (it reached its server);
# after max_boots boots on trial without that, the old files come back.
# Every step is journaled in ota-files/trial.json and can be redone, so a reset at any
# moment of a swap or a rollback finishes it at the next boot.
import json
import os

from atomicfile import exists, write_atomic
from ota_files import MANIFEST, OLD, REPORT, STAGED, TRIAL, join, make_dirs, read_json, remove_tree


class Swap:
    def __init__(self, root="", max_boots=3, log=print):
        self.root = root
        self.max_boots = max_boots
        self._log = log

    def _p(self, path):
        return join(self.root, path)

    def boot(self):
        """At every boot, before the application is imported: swap in a staged update,
        count a boot on trial, or roll back. Returns what happened, or None."""
        trial = read_json(self._p(TRIAL))
        if trial is None:
            staged = read_json(self._p(MANIFEST))
            if staged is None:
                return None
            trial = {"state": "swapping", "version": staged["version"], "files": staged["files"],
                     "added": staged["added"], "boots": 0}
            self._journal(trial)
            os.remove(self._p(MANIFEST))
        if trial["state"] == "swapping":
            self._swap_in(trial["files"])
            remove_tree(self._p(STAGED))
            trial["state"] = "trial"
        if trial["state"] == "trial":
            trial["boots"] += 1
            if trial["boots"] <= self.max_boots:
                self._journal(trial)
                self._log("ota: %s on trial, boot %d of %d" % (trial["version"], trial["boots"], self.max_boots))
                return "trial"
            trial["state"] = "rolling_back"
            self._journal(trial)
        self._roll_back(trial)
        return "rolled_back"

    def _journal(self, trial):
        write_atomic(self._p(TRIAL), json.dumps(trial))

    def _swap_in(self, files):
        for path in files:
            new = self._p(STAGED + "/" + path)
            if not exists(new):
                continue  # moved before a reset
            here = self._p(path)
            if exists(here):
                old = self._p(OLD + "/" + path)
                make_dirs(old)
                os.rename(here, old)
            make_dirs(here)
            os.rename(new, here)

    def _roll_back(self, trial):
        for path in trial["files"]:
            here = self._p(path)
            old = self._p(OLD + "/" + path)
            if exists(old):
                if exists(here):
                    os.remove(here)
                os.rename(old, here)
            elif path in trial["added"] and exists(here):
                os.remove(here)
        self._finish(trial, "rolled_back")
        self._log("ota: %s did not reach the broker in %d boots, previous files back"
                  % (trial["version"], self.max_boots))

    def _finish(self, trial, result):
        remove_tree(self._p(OLD))
        remove_tree(self._p(STAGED))
        write_atomic(self._p(REPORT), json.dumps({"result": result, "version": trial["version"]}))
        os.remove(self._p(TRIAL))

    def confirm(self):
        """The application reached its server: keep the update on trial, if any.
        Returns its version, or None when there was none."""
        trial = read_json(self._p(TRIAL))
        if trial is None or trial["state"] != "trial":
            return None
        self._finish(trial, "updated")
        return trial["version"]

    def take_report(self):
        """What the last update came to ({"result", "version"}), once; None if nothing new."""
        report = read_json(self._p(REPORT))
        if report is not None:
            os.remove(self._p(REPORT))
        return report

    def on_trial(self):
        trial = read_json(self._p(TRIAL))
        return trial is not None and trial["state"] == "trial"
