"""Records and data sets: structures (or compositions) with labelled properties, units in ``properties``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Composition, Structure

from core.errors import DiscoveryError
from ingest.report import CleaningReport


class DatasetError(DiscoveryError):
    """A data set that cannot be loaded or used as asked (unknown spec, missing file, no structures)."""


@dataclass(frozen=True, kw_only=True)
class Record:
    """One cleaned entry of a data set."""

    id: str
    """Stable id within the data set (row index or source id)."""
    formula: str
    """Reduced formula."""
    structure: Structure | None
    """Ordered structure (Å), or None where the source has only a composition."""
    composition: Composition
    """Composition of the structure, or the source's composition."""
    labels: dict[str, float]
    """Property name -> value, in the units of ``Dataset.properties``; a missing property is absent."""
    source: str
    """Where it came from, e.g. ``perov5:val.csv`` or ``obelix``."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Extra source fields kept for reference (space group, DOI, material id, ...)."""


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """A cleaned data set with its cleaning report, content hash and official splits."""

    name: str
    records: list[Record]
    properties: dict[str, str]
    """Property name -> 'description (unit)'."""
    report: CleaningReport
    data_hash: str
    """sha256 of the cleaned content (ids, structures, compositions, labels)."""
    splits: dict[str, list[str]]
    """Official splits by record id, e.g. ``{"train": [...], "test": [...]}``; ``{}`` if none."""

    def __len__(self) -> int:
        return len(self.records)

    @property
    def ids(self) -> list[str]:
        """Record ids in order."""
        return [r.id for r in self.records]

    def structures(self) -> list[Structure]:
        """Every record's structure; raises :class:`DatasetError` when some records have none."""
        missing = [r.id for r in self.records if r.structure is None]
        if missing:
            raise DatasetError(
                f"{self.name}: {len(missing)} of {len(self.records)} records have no structure (e.g. {missing[0]!r}); "
                "use .with_structures() or CleaningConfig(require_structure=True)"
            )
        return [r.structure for r in self.records]  # type: ignore[misc]

    def targets(self, prop: str) -> np.ndarray:
        """Values of ``prop`` in record order (float64, NaN where a record lacks it)."""
        if prop not in self.properties:
            raise DatasetError(f"{self.name} has no property {prop!r}; properties: {', '.join(self.properties)}")
        return np.array([r.labels.get(prop, np.nan) for r in self.records], dtype=np.float64)

    def subset(self, ids: list[str] | set[str], name: str | None = None) -> Dataset:
        """The records whose id is in ``ids`` (record order kept), with splits restricted and a new hash."""
        keep = set(ids)
        records = [r for r in self.records if r.id in keep]
        splits = {k: [i for i in v if i in keep] for k, v in self.splits.items()}
        return Dataset(
            name=name or self.name,
            records=records,
            properties=self.properties,
            report=self.report,
            data_hash=content_hash(records),
            splits=splits,
        )

    def with_structures(self) -> Dataset:
        """Only the records that have a structure."""
        return self.subset([r.id for r in self.records if r.structure is not None])


def _structure_key(s: Structure) -> list[Any]:
    lattice = np.round(s.lattice.matrix, 6).tolist()
    sites = [
        [sorted((str(sp), round(float(occ), 4)) for sp, occ in site.species.items()), np.round(site.frac_coords, 6)]
        for site in s
    ]
    return [lattice, [[sp, fc.tolist()] for sp, fc in sites]]


def content_hash(records: list[Record]) -> str:
    """sha256 of ids, structures (rounded to 1e-6), compositions and labels, in record order."""
    h = hashlib.sha256()
    for r in records:
        item = {
            "id": r.id,
            "structure": None if r.structure is None else _structure_key(r.structure),
            "composition": {str(k): round(float(v), 6) for k, v in r.composition.items()},
            "labels": {k: float(v) for k, v in sorted(r.labels.items())},
        }
        h.update(json.dumps(item, sort_keys=True, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass(kw_only=True)
class RawRecord:
    """One input row as a source read it, before cleaning."""

    id: str
    structure: Structure | None = None
    composition: Composition | None = None
    labels: dict[str, float] = field(default_factory=dict)
    censored: set[str] = field(default_factory=set)
    """Labels reported only as a bound (e.g. '<1E-10'); the bound is in ``labels``."""
    error: tuple[str, str] | None = None
    """(issue kind, message) when the row could not be parsed; the row is dropped with this reason."""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class RawDataset:
    """What a source read: rows, property descriptions, splits and default plausible ranges."""

    name: str
    source: str
    rows: list[RawRecord]
    properties: dict[str, str]
    splits: dict[str, list[str]] = field(default_factory=dict)
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
