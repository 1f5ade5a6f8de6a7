"""A device's settings files (config.json, secrets.json) read on the host and checked by
the firmware's own validator: the host refuses what the device would refuse, in the
device's words (`relays.irrigation.pin: GPIO 35 is input-only ...`)."""
import json
from pathlib import Path


class SettingsError(Exception):
    """The file cannot be read, or the device would refuse it; the text says why."""


def load_checked(path):
    """The JSON object in path, checked as the device checks its files."""
    from firmware import config

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{path}: {exc}") from None
    try:
        config.apply(config.defaults(), data)
    except config.ConfigError as exc:
        reasons = "; ".join(f"{key}: {reason}" for key, reason in exc.problems)
        raise SettingsError(f"{path} would be refused by the device: {reasons}") from None
    return data
