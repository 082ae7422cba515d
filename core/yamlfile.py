"""Reading configuration files: one YAML mapping, or one clear ConfigError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError


def read_mapping(file: Path, what: str = "config keys") -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty for an empty file).

    Raises:
        ConfigError: missing file, invalid YAML, or something other than a mapping at the top level.
    """
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of {what} at the top level")
    return data
