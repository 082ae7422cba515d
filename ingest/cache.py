"""The processed cache: cleaned data sets pickled under ``processed_dir()``, keyed by inputs and settings."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from core.signing import SUFFIX, read_signed, signature
from ingest.paths import processed_dir
from ingest.records import Dataset
from ingest.report import CleaningConfig

CACHE_VERSION = 1
"""Bump to invalidate every processed file (the code hash below already covers edits of ``ingest/``)."""


_NOT_HASHED = {"__init__.py", "cli.py", "seed.py", "download.py"}  # do not change what a given input produces


def code_hash() -> str:
    """sha256 of the ingest package's source: a change in parsing or cleaning invalidates the cache."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted([*root.glob("*.py"), *root.glob("sources/*.py")]):
        if path.name in _NOT_HASHED:
            continue
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Name, size and sha256 of one input (mtime alone misses copies and edits within a second)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"name": path.name, "size": path.stat().st_size, "sha256": h.hexdigest()}


def cache_key(name: str, files: list[Path], cleaning: CleaningConfig, params: dict[str, Any] | None = None) -> str:
    """sha256 of the data set name, the inputs' content, extra parameters and the cleaning settings."""
    payload = {
        "version": CACHE_VERSION,
        "code": code_hash(),
        "name": name,
        "files": [file_fingerprint(p) for p in files],
        "params": params or {},
        "cleaning": cleaning.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def cache_path(name: str, key: str) -> Path:
    """``<processed>/<name>-<first 16 hex of the key>.pkl``."""
    return processed_dir() / f"{name}-{key[:16]}.pkl"


def read_cached(path: Path) -> Dataset | None:
    """The cached data set, or None when missing or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        dataset = pickle.loads(read_signed(path))  # an unsigned or altered file is rebuilt, never unpickled
    except Exception:
        return None
    return dataset if isinstance(dataset, Dataset) else None


def write_cached(path: Path, dataset: Dataset) -> None:
    """Write atomically: readers never see a partial file."""
    data = pickle.dumps(dataset, protocol=pickle.HIGHEST_PROTOCOL)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        Path(str(path) + SUFFIX).unlink(missing_ok=True)
        os.replace(tmp, path)
        Path(str(path) + SUFFIX).write_text(signature(data) + "\n")  # last: a crash before it leaves a refused file
    finally:
        Path(tmp).unlink(missing_ok=True)
