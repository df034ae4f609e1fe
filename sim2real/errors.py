"""The one error type users see: a message that names the thing and the fix."""


class Sim2RealError(Exception):
    """A user-facing error; the CLI prints its message (no traceback) and exits 2."""


class ConfigError(Sim2RealError):
    """A preset or config file is invalid."""


class DatasetError(Sim2RealError):
    """A data set on disk is missing, unreadable or inconsistent."""


def one_line(exc: BaseException | str, with_type: bool = False, limit: int = 300) -> str:
    """An exception's text as one line, for wrapping a library error into a user message.

    Libraries often explain over several lines (imageio lists plugins to install, torch
    prints tracebacks of the loader); the first non-empty line says what went wrong, so
    that line is kept, its whitespace collapsed and its length capped at ``limit``.
    ``with_type`` prefixes the exception's class name (``OSError: ...``); an exception
    with no text gives its class name alone.
    """
    text = exc if isinstance(exc, str) else str(exc)
    first = next((" ".join(line.split()) for line in text.splitlines() if line.strip()), "")
    if len(first) > limit:
        first = first[:limit - 3].rstrip() + "..."
    if isinstance(exc, str):
        return first
    name = type(exc).__name__
    if not first:
        return name
    return f"{name}: {first}" if with_type else first
