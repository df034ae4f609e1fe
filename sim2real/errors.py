"""The one error type users see: a message that names the thing and the fix."""


class Sim2RealError(Exception):
    """A user-facing error; the CLI prints its message (no traceback) and exits 2."""


class ConfigError(Sim2RealError):
    """A preset or config file is invalid."""


class DatasetError(Sim2RealError):
    """A data set on disk is missing, unreadable or inconsistent."""
