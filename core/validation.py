"""Validation helpers: one line for a pydantic validation error (the field and why); durations from the environment."""

from __future__ import annotations

import math
import os

from pydantic import ValidationError

from core.errors import ConfigError


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


def env_seconds(name: str, default: float, hint: str = "") -> float:
    """A duration in seconds (finite, >= 0) from environment variable ``name``; ``default`` when unset or blank.
    Raises ConfigError naming the variable (and ``hint``, e.g. ``"0: never"``) for anything else."""
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else float(default)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        extra = f" ({hint})" if hint else ""
        raise ConfigError(f"{name}={raw!r}: give a number of seconds >= 0{extra}")
    return value
