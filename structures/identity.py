"""Structure identity: a coarse hash for indexing, StructureMatcher for the final word.

One place for the matcher tolerances: the loop's de-duplication (generated candidates, replay pools,
labelled seeds) and data-set cleaning all use :func:`matcher`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

#: StructureMatcher tolerances: fractional length 0.2, site 0.3 (of the average free length per atom),
#: angle 5 degrees, compared as primitive cells.
MATCHER_SETTINGS: dict[str, float | bool] = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5, "primitive_cell": True}


@lru_cache(maxsize=2)
def matcher(scale: bool = True) -> StructureMatcher:
    """The project's StructureMatcher; ``scale`` compares volume-scaled cells (True everywhere but where a
    data set's cleaning is told to compare cells as given)."""
    return StructureMatcher(**MATCHER_SETTINGS, scale=scale)  # type: ignore[arg-type]


def spacegroup_number(structure: Structure, symprec: float = 0.1) -> int:
    """International space-group number (1 when symmetry detection fails)."""
    try:
        return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception:  # spglib can fail on odd cells; treat them as P1
        return 1


def coarse_fingerprint(structure: Structure) -> str:
    """12-hex hash of the reduced formula.

    Deliberately coarse: symmetry detection is stricter than StructureMatcher's tolerances, so a
    space group in the key would let slightly distorted copies escape comparison. Polymorphs share
    the hash and are told apart by :func:`same_structure`.
    """
    return hashlib.sha1(structure.composition.reduced_formula.encode()).hexdigest()[:12]


def same_structure(a: Structure, b: Structure) -> bool:
    """True when pymatgen's StructureMatcher finds the two equivalent (volume scaled)."""
    if a.composition.reduced_formula != b.composition.reduced_formula:
        return False
    return bool(matcher().fit(a, b))


def deduplicate(structures: Sequence[Structure], known: Iterable[Structure] = ()) -> list[int]:
    """Indices of ``structures`` that match neither an earlier one nor any of ``known``."""
    seen: dict[str, list[Structure]] = {}
    for s in known:
        seen.setdefault(s.composition.reduced_formula, []).append(s)
    keep: list[int] = []
    for i, s in enumerate(structures):
        group = seen.setdefault(s.composition.reduced_formula, [])
        if any(same_structure(s, other) for other in group):
            continue
        group.append(s)
        keep.append(i)
    return keep
