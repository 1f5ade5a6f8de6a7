# The exceptions the node's parts raise to one another. They live here, in a module
# that is never unloaded: a module loaded for one job and loaded again later makes
# new classes, and an except clause must still match what the new copy raises.


class ConfigError(ValueError):
    """A config was refused. problems: list of (key, reason); key/reason: the first."""

    def __init__(self, problems):
        super().__init__("; ".join("%s: %s" % p for p in problems))
        self.problems = problems
        self.key = problems[0][0]
        self.reason = problems[0][1]


class CommandError(ValueError):
    """A command is wrong; the message says how (it goes back in "error")."""


class Refused(Exception):
    """A relay change the safety rules refuse; str() names the rule."""
