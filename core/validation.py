"""One line for a pydantic validation error: the field and why."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, what: str = "config value") -> str:
    """``invalid <what> for <field>: <message> (+N more)`` for the first error of ``exc``."""
    errors = exc.errors()
    err = errors[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    extra = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"invalid {what} for {where}: {message}{extra}"
