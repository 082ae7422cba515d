"""Reading configuration files: one YAML mapping, or one clear ConfigError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError


def read_mapping(file: Path, what: str = "config keys") -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty for an empty file).

    Raises:
        ConfigError: missing or unreadable file, not UTF-8 text, invalid YAML, nesting too deep to read, or
            something other than a mapping at the top level.
    """
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML ({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
    except RecursionError:
        raise ConfigError(f"{file}: not valid YAML (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of {what} at the top level")
    return data
