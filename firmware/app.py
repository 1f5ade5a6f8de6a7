# The node application. For now it loads and checks the config and reports what it
# found on the console; the MQTT session and sensor loop join it in later issues.
from firmware import VERSION, config


def run(root=""):
    cfg, problems = config.load(root)
    print("farmnode %s, profile %s" % (VERSION, cfg["profile"]))
    for key, reason in problems:
        print("config problem: %s: %s" % (key, reason))
    return cfg, problems
