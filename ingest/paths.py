"""Where ingested data lives: raw downloads, processed (parsed and cleaned) data sets, apart from models.

``<data home>/data/raw/<source>/`` holds downloads exactly as fetched (``perov_5/val.csv``, ``obelix/all.csv``,
``matbench/matbench_mp_gap.json.gz``, ``mp/<query hash>.json.gz``); a ``cache_dir`` argument replaces
``<data home>/data/raw`` (point it at ``../shared/data`` offline). ``<data home>/data/processed/`` holds cleaned
data sets (``<name>-<key>.pkl``) and whatever other stages derive from them keyed by ``Dataset.data_hash``
(e.g. model graphs). Models themselves live under ``<data home>/models/``.
"""

from __future__ import annotations

from pathlib import Path

from core.paths import subdir


def data_dir() -> Path:
    """``<data home>/data`` (created on first use)."""
    return subdir("data")


def raw_root(cache_dir: Path | None = None) -> Path:
    """Root of the raw downloads: ``cache_dir`` if given, else ``<data home>/data/raw``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser().resolve()
    path = data_dir() / "raw"
    path.mkdir(parents=True, exist_ok=True)
    return path


def raw_dir(source: str, cache_dir: Path | None = None) -> Path:
    """Folder of one source's raw files (not created: a read-only ``cache_dir`` must stay untouched)."""
    return raw_root(cache_dir) / source


def processed_dir() -> Path:
    """``<data home>/data/processed``: cleaned data sets and derived artefacts keyed by ``data_hash``."""
    path = data_dir() / "processed"
    path.mkdir(parents=True, exist_ok=True)
    return path
