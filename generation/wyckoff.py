"""Crystals as Wyckoff sequences: a space group and the (element, Wyckoff letter) of each orbit.

The representation of the WyFormer idea (Kazeev et al., "Wyckoff Transformer", 2025): a structure is reduced to
its space group and one (element, letter) pair per symmetry orbit, a short discrete sequence a small model can
learn; PyXtal turns a sequence back into a structure by placing the atoms on those Wyckoff positions with random
free parameters and a random lattice of that crystal system.
"""

from __future__ import annotations

import math
import string
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pymatgen.core import Element, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

#: Wyckoff letters as spglib and PyXtal write them (space group 221 and a few others use 'A' after 'z').
LETTERS: tuple[str, ...] = (*string.ascii_lowercase, "A")
#: Lattice centring -> primitive cell size as a fraction of the conventional cell.
_CENTRING = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "R": 3, "F": 4}


@dataclass(frozen=True, kw_only=True)
class WyckoffSequence:
    """Space group number and its orbits as (element symbol, Wyckoff letter), in canonical order."""

    space_group: int
    sites: tuple[tuple[str, str], ...]

    @classmethod
    def canonical(cls, space_group: int, sites: Sequence[tuple[str, str]]) -> WyckoffSequence:
        """Orbits sorted by electronegativity (cations first), then letter."""
        key = {el: (Element(el).X if Element(el).X == Element(el).X else 0.0, Element(el).Z) for el, _ in sites}
        return cls(space_group=space_group, sites=tuple(sorted(sites, key=lambda s: (*key[s[0]], s[1]))))

    def num_ions(self) -> dict[str, int]:
        """Element -> atoms in the conventional cell."""
        table = wyckoff_table(self.space_group)
        out: dict[str, int] = {}
        for el, letter in self.sites:
            out[el] = out.get(el, 0) + table[letter][0]
        return out

    def primitive_size(self) -> float:
        """Atoms of the primitive cell."""
        return sum(self.num_ions().values()) / centring(self.space_group)

    def as_text(self) -> str:
        """E.g. ``'62: Li 4a, Fe 4c, P 4c, O 4c, O 4c, O 8d'``."""
        table = wyckoff_table(self.space_group)
        return f"{self.space_group}: " + ", ".join(f"{el} {table[letter][0]}{letter}" for el, letter in self.sites)


@lru_cache(maxsize=256)
def wyckoff_table(space_group: int) -> dict[str, tuple[int, int]]:
    """Letter -> (multiplicity in the conventional cell, free parameters) of ``space_group`` (PyXtal's tables)."""
    from pyxtal.symmetry import Group

    return {wp.letter: (int(wp.multiplicity), int(wp.get_dof())) for wp in Group(space_group).Wyckoff_positions}


@lru_cache(maxsize=256)
def centring(space_group: int) -> int:
    """Conventional / primitive cell size of ``space_group`` (1, 2, 3 or 4)."""
    from pyxtal.symmetry import Group

    return _CENTRING.get(Group(space_group).symbol[0], 1)


def encode(structure: Structure, symprec: float = 0.1) -> WyckoffSequence:
    """The Wyckoff sequence of ``structure`` (spglib at ``symprec`` Å); ValueError when symmetry detection fails."""
    try:
        data = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_dataset()
    except Exception as exc:
        raise ValueError(f"no symmetry dataset: {exc}") from exc
    if data is None:
        raise ValueError("spglib found no symmetry dataset")
    orbits: dict[int, tuple[str, str]] = {}
    for i, (orbit, letter) in enumerate(zip(data.equivalent_atoms, data.wyckoffs, strict=True)):
        orbits.setdefault(int(orbit), (structure[i].specie.symbol, str(letter)))
    return WyckoffSequence.canonical(int(data.number), list(orbits.values()))


class _OutOfTime(Exception):
    """PyXtal's placement ran past its time budget."""


_BUDGET = threading.local()
_PATCHED = False
_PATCH_LOCK = threading.Lock()


def _install_deadline() -> None:
    """Wrap PyXtal's coordinate placement with a per-thread deadline check (once per process).

    PyXtal retries hopeless placements (fixed positions too close, too many atoms for the cell) up to 10 x 40 x 10
    times, which can take minutes; the deadline turns that into a quick failure.
    """
    global _PATCHED
    with _PATCH_LOCK:
        if _PATCHED:
            return
        from pyxtal.crystal import random_crystal

        original = random_crystal._set_coords

        def _set_coords(self: Any) -> Any:
            if time.monotonic() > getattr(_BUDGET, "deadline", math.inf):
                raise _OutOfTime
            return original(self)

        random_crystal._set_coords = _set_coords  # type: ignore[method-assign]
        _PATCHED = True


def pyxtal_random(
    space_group: int,
    species: Sequence[str],
    num_ions: Sequence[int],
    seed: int,
    *,
    sites: Sequence[Sequence[str]] | None = None,
    budget_s: float = 2.0,
) -> Structure | None:
    """PyXtal's random crystal (conventional cell) of ``num_ions`` atoms of ``species`` in ``space_group``, on the
    Wyckoff ``sites`` when given; None when PyXtal fails or runs past ``budget_s`` seconds."""
    from pyxtal import pyxtal

    _install_deadline()
    crystal = pyxtal()
    _BUDGET.deadline = time.monotonic() + budget_s
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            crystal.from_random(
                3, space_group, list(species), list(num_ions), sites=[list(s) for s in sites] if sites else None,
                random_state=seed, max_count=3,
            )  # fmt: skip
    except Exception:  # PyXtal raises when it cannot place the atoms; _OutOfTime when it took too long
        return None
    finally:
        _BUDGET.deadline = math.inf
    if not crystal.valid:
        return None
    try:
        return crystal.to_pymatgen()
    except Exception:  # a degenerate cell
        return None


def build(
    sequence: WyckoffSequence,
    seed: int,
    *,
    tries: int = 3,
    budget_s: float = 2.0,
    accept: Callable[[Structure], bool] | None = None,
) -> Structure | None:
    """A structure with these Wyckoff sites (PyXtal, random free parameters and lattice), primitive cell, or None
    when PyXtal cannot place them (e.g. a fixed position used twice, or atoms that do not fit) within the budget.
    With ``accept``, a placement it refuses (e.g. atoms too close) is retried with the next seed."""
    table = wyckoff_table(sequence.space_group)
    species = list(dict.fromkeys(el for el, _ in sequence.sites))
    if any(letter not in table for _, letter in sequence.sites):
        return None
    sites = [[f"{table[w][0]}{w}" for el, w in sequence.sites if el == sp] for sp in species]
    num_ions = [sum(table[w][0] for el, w in sequence.sites if el == sp) for sp in species]
    for attempt in range(tries):
        conv = pyxtal_random(sequence.space_group, species, num_ions, seed + attempt, sites=sites, budget_s=budget_s)
        if conv is None:
            continue
        try:
            prim = conv.get_primitive_structure()
        except Exception:  # a degenerate cell
            continue
        if accept is None or accept(prim):
            return prim
    return None
