"""Where the project keeps its data: the embedded store, models, caches.

``BATTERY_DISCOVERY_HOME`` overrides everything. Otherwise, from a source checkout (the
usual editable install) it is ``<checkout>/var``; from a plain install, ``~/.battery-discovery``.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "BATTERY_DISCOVERY_HOME"


def project_root() -> Path | None:
    """The source checkout this package runs from, or None for a plain install."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "flows").is_dir() else None


def data_home() -> Path:
    """The data directory (created on first use)."""
    env = os.environ.get(ENV_HOME)
    if env:
        home = Path(env).expanduser().resolve()
    else:
        root = project_root()
        home = root / "var" if root is not None else Path.home() / ".battery-discovery"
    home.mkdir(parents=True, exist_ok=True)
    return home


def subdir(name: str) -> Path:
    """A named folder under the data home, e.g. ``models``, ``store``, ``cache``."""
    path = data_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
