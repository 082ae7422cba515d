"""One line for a pydantic validation error: the field and why."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, what: str = "config value") -> str:
    """``invalid <what> for <field>: <message> (+N more)`` for the first error of ``exc``."""
    errors = exc.errors()
    err = errors[0]
    where = ".".join(_printable(p) for p in err["loc"]) or "config"
    extra = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    message = " ".join(str(err["msg"]).removeprefix("Value error, ").splitlines())
    return f"invalid {what} for {where}: {message}{extra}"


def _printable(part: object) -> str:
    """A location part as text; quoted (escapes shown) when it holds a newline or another unprintable character."""
    text = str(part)
    return text if text.isprintable() else repr(text)
