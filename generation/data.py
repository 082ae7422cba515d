"""The public structures generators learn from and novelty is judged against: MP-20 and MPTS-52 files.

Rows are read from the MP-20 / MPTS-52 format files that also hold the reference phases
(:func:`oracle.phases.find_phase_file`: ``$BATTERY_DISCOVERY_PHASES_DIR``, ``../shared/data``, the data cache,
downloaded when online). A row keeps its CIF text unparsed; the reduced formula comes from the CIF's
``_chemical_formula_sum`` line, so an index over 12,000 structures is built in about a second and a structure
is parsed only when a candidate of the same formula asks.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pymatgen.core import Composition, Structure

from oracle.phases import find_phase_file
from structures.identity import same_structure

#: The default training sources (keys of ``oracle.phases.PHASE_FILES``).
DEFAULT_SOURCES: tuple[str, ...] = ("mp_20", "mpts_52")
_FORMULA = re.compile(r"_chemical_formula_sum\s+'?([^'\n]+)'?")


@dataclass(frozen=True, kw_only=True)
class TrainingRow:
    """One public structure: id, reduced formula, CIF text, band gap (eV; NaN where the file has none)."""

    material_id: str
    formula: str
    cif: str
    band_gap: float
    source: str
    spacegroup: int = 0
    """International number where the file gives one (MP-20's ``spacegroup.number``), else 0."""

    def structure(self) -> Structure:
        """The parsed structure."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_str(self.cif, fmt="cif")


def _formula(cif: str) -> str:
    match = _FORMULA.search(cif)
    if match:
        try:
            return Composition(match.group(1)).reduced_formula
        except Exception:  # an odd formula line: fall back to parsing the structure
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_str(cif, fmt="cif").composition.reduced_formula


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_rows(path: Path | str, source: str) -> list[TrainingRow]:
    """Rows of one MP-20 / MPTS-52 format file (csv or csv.gz with ``material_id`` and ``cif`` columns)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as handle:  # type: ignore[operator]
        reader = csv.DictReader(handle)
        return [
            TrainingRow(
                material_id=str(r.get("material_id") or f"{source}-{i}"),
                formula=_formula(r["cif"]),
                cif=r["cif"],
                band_gap=_float(r.get("band_gap")),
                source=source,
                spacegroup=int(_float(r.get("spacegroup.number")) if r.get("spacegroup.number") else 0),
            )
            for i, r in enumerate(reader)
        ]


@lru_cache(maxsize=4)
def _cached_rows(sources: tuple[str, ...]) -> tuple[TrainingRow, ...]:
    return tuple(row for source in sources for row in read_rows(find_phase_file(source), source))


def training_rows(sources: Sequence[str] = DEFAULT_SOURCES) -> list[TrainingRow]:
    """Every row of ``sources`` (read once per process)."""
    return list(_cached_rows(tuple(sources)))


def rows_hash(rows: Sequence[TrainingRow]) -> str:
    """Content hash (16 hex) of the rows' ids and CIFs: names a training set."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.material_id.encode())
        digest.update(row.cif.encode())
    return digest.hexdigest()[:16]


@dataclass
class NoveltyIndex:
    """Known structures by reduced formula; a structure is novel when none of its formula matches it."""

    rows: dict[str, list[TrainingRow]] = field(default_factory=dict)
    extra: dict[str, list[Structure]] = field(default_factory=dict)
    _parsed: dict[str, list[Structure]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_rows(cls, rows: Iterable[TrainingRow]) -> NoveltyIndex:
        """An index over training rows."""
        index = cls()
        for row in rows:
            index.rows.setdefault(row.formula, []).append(row)
        return index

    def add(self, structures: Iterable[Structure]) -> None:
        """Also count these (e.g. the store's candidates) as known."""
        for s in structures:
            self.extra.setdefault(s.composition.reduced_formula, []).append(s)

    def _known(self, formula: str) -> list[Structure]:
        if formula not in self._parsed:
            self._parsed[formula] = [r.structure() for r in self.rows.get(formula, [])]
        return self._parsed[formula] + self.extra.get(formula, [])

    def match(self, structure: Structure) -> str:
        """Id of a known structure ``structure`` matches ('store' for an added one), or '' when it is novel."""
        formula = structure.composition.reduced_formula
        known = self._known(formula)
        for i, other in enumerate(known):
            if same_structure(structure, other):
                rows = self.rows.get(formula, [])
                return rows[i].material_id if i < len(rows) else "store"
        return ""

    def is_novel(self, structure: Structure) -> bool:
        """True when no known structure matches."""
        return not self.match(structure)
