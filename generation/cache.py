"""A disk cache of one parent's candidates for generators that are pure functions of (parent, settings).

Substitution spends about 0.6 s per parent (bond-valence decoration, the data-mined substitution table); a loop
with hundreds of parents re-derives the same candidates every round. The cache keys each parent's candidates by
the generator, its code version, the parent structure and the settings that generator reads; a changed setting,
structure or version is a different key, never a stale hit. Files live under ``<data home>/cache/generated/``;
deleting the folder only costs time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from generation.base import Candidate
from generation.config import GenerateConfig


def cache_dir() -> Path:
    """``<data home>/cache/generated`` (created on first use)."""
    from core.paths import subdir

    path = subdir("cache") / "generated"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(generator: str, version: str, parent: Structure, config: GenerateConfig, fields: Iterable[str]) -> str:
    """A hex digest of everything the candidates depend on: the generator, its version, the parent and ``fields``
    of ``config`` (the settings the generator reads)."""
    settings = {name: getattr(config, name) for name in sorted(fields)}
    identity = {
        "generator": generator,
        "version": version,
        "parent": parent.as_dict(),
        "settings": json.loads(json.dumps(settings, default=list)),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _to_json(candidate: Candidate) -> dict[str, Any]:
    doc = asdict(candidate)
    doc["structure"] = candidate.structure.as_dict()
    doc["parents"] = list(candidate.parents)
    return doc


def _from_json(doc: dict[str, Any]) -> Candidate:
    return Candidate(**{**doc, "structure": Structure.from_dict(doc["structure"]), "parents": tuple(doc["parents"])})


def cached_candidates(
    key: str, parent_name: str, make: Callable[[], list[Candidate]], *, folder: Path | None = None
) -> list[Candidate]:
    """The candidates stored under ``key`` (renamed to ``parent_name``), or ``make()``'s, stored first.

    A file that cannot be read (truncated by a crash) is recomputed and rewritten; writes go through a temporary
    file and a rename, so two processes filling the same key never leave a partial file.
    """
    path = (folder or cache_dir()) / f"{key}.json.gz"
    if path.is_file():
        try:
            with gzip.open(path, "rt") as fh:
                docs = json.load(fh)
            return [replace(_from_json(d), parent=parent_name) for d in docs]
        except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError):
            pass  # unreadable: recompute below
    made = make()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with gzip.open(tmp, "wt") as fh:
        json.dump([_to_json(c) for c in made], fh)
    tmp.replace(path)
    return made
