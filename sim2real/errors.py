"""The one error type users see: a message that names the thing and the fix."""


class Sim2RealError(Exception):
    """A user-facing error; the CLI prints its message (no traceback) and exits 2."""


class ConfigError(Sim2RealError):
    """A preset or config file is invalid."""


class DatasetError(Sim2RealError):
    """A data set on disk is missing, unreadable or inconsistent."""


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """A library error's text as one line (its first non-empty line, shortened): messages stay one line."""
    text = str(exc).strip()
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not first:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."
