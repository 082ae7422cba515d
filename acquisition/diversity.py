"""Diversity rules of a batch: at most ``max_per_key`` candidates per formula or chemical system, and a
minimum composition distance between any two picks.

Shapes: ``n`` pool candidates, ``E`` elements over all their compositions. Compositions are atomic
fractions; the distance of two is half the L1 distance of their fraction vectors (0 same, 1 disjoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from acquisition.config import DiversityConfig

__all__ = ["DiversityState"]


@dataclass(kw_only=True)
class DiversityState:
    """Tracks what the diversity rules still allow while a batch is picked.

    Attributes:
        config: the rules.
        groups: ``n`` group labels (formula or chemical system) when ``max_per_key`` is set, else None.
        fractions: ``n x E`` atomic fractions when ``min_composition_distance > 0``, else None.
        counts: picks so far per group.
    """

    config: DiversityConfig
    groups: list[str] | None = None
    fractions: np.ndarray | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, config: DiversityConfig, keys: Sequence[str] | None, n: int) -> DiversityState:
        """The state before the first pick, for ``n`` candidates with reduced formulas ``keys``.

        Raises:
            ValueError: a rule is active and ``keys`` is missing or not of length ``n``.
        """
        state = cls(config=config)
        if not config.active:
            return state
        if keys is None or len(keys) != n:
            raise ValueError(f"diversity rules need one key (reduced formula) per candidate: {n} expected")
        if config.max_per_key is not None:
            state.groups = [_chemsys(k) for k in keys] if config.group_by == "chemsys" else list(keys)
        if config.min_composition_distance > 0:
            state.fractions = _fractions(keys)
        return state

    def update(self, allowed: np.ndarray, i: int) -> None:
        """Mark ``i`` chosen and disallow what it excludes (in place on ``allowed``, ``(n,)`` bool)."""
        allowed[i] = False
        if self.groups is not None and self.config.max_per_key is not None:
            g = self.groups[i]
            self.counts[g] = self.counts.get(g, 0) + 1
            if self.counts[g] >= self.config.max_per_key:
                allowed &= np.array([h != g for h in self.groups])
        if self.fractions is not None:
            dist = 0.5 * np.abs(self.fractions - self.fractions[i]).sum(axis=1)
            allowed &= dist >= self.config.min_composition_distance


def _composition(formula: str) -> dict[str, float]:
    """Element -> atomic fraction of ``formula``; a key that is not a formula is its own element."""
    from pymatgen.core import Composition

    try:
        return {str(el): float(x) for el, x in Composition(formula).fractional_composition.items()}
    except Exception:  # not a formula: its own composition, far from every other
        return {f"?{formula}": 1.0}


def _chemsys(formula: str) -> str:
    """Chemical system, e.g. ``Fe-Li-O-P`` for ``LiFePO4``."""
    return "-".join(sorted(_composition(formula)))


def _fractions(keys: Sequence[str]) -> np.ndarray:
    """``n x E`` atomic fractions of the ``n`` formulas (columns: the elements, sorted)."""
    comps = [_composition(k) for k in keys]
    elements = sorted({el for c in comps for el in c})
    col = {el: j for j, el in enumerate(elements)}
    out = np.zeros((len(comps), len(elements)))
    for i, c in enumerate(comps):
        for el, x in c.items():
            out[i, col[el]] = x
    return out
