"""Charge-balanced compositions drawn from a palette of elements (the input of random structure search)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Composition

from generation.filters import charge_balanced

#: Elements common in Li/Na battery materials (cathodes, electrolytes, anodes), used when no palette is given.
BATTERY_PALETTE: tuple[str, ...] = (
    "Li", "Na", "K", "Mg", "Ca", "Sr", "Ba", "Al", "Ga", "In", "B", "Si", "Ge", "Sn", "P", "Sb", "N", "O", "S",
    "Se", "F", "Cl", "Br", "I", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Y", "Zr", "Nb", "Mo",
    "La", "Ta", "W",
)  # fmt: skip
#: Elements that take a negative oxidation state (at least one is needed for an ionic compound).
ANIONS: frozenset[str] = frozenset({"N", "O", "S", "Se", "F", "Cl", "Br", "I", "P", "Sb"})


def random_compositions(
    rng: np.random.Generator,
    n: int,
    *,
    palette: Sequence[str] = BATTERY_PALETTE,
    require_any: Sequence[str] = (),
    max_elements: int = 3,
    max_per_element: int = 6,
    max_atoms: int = 12,
    max_tries: int = 20000,
) -> list[Composition]:
    """Up to ``n`` distinct charge-balanced formula units (pymatgen's oxidation-state guess), each with one
    element of ``require_any`` (when given), at least one anion and 2..``max_elements`` elements.

    Args:
        rng: numpy random generator (the draw is reproducible for a seed).
        max_per_element: largest count of one element in the formula unit.
        max_atoms: largest formula unit (atoms).
    """
    palette = list(dict.fromkeys(palette))
    anions = [e for e in palette if e in ANIONS]
    if not anions:
        raise ValueError("the element palette holds no anion (N, O, S, Se, F, Cl, Br, I, P, Sb)")
    required = [e for e in require_any if e in palette] or list(require_any)
    seen: set[str] = set()
    out: list[Composition] = []
    for _ in range(max_tries):
        if len(out) >= n:
            break
        k = int(rng.integers(2, max_elements + 1))
        chosen = [str(rng.choice(required))] if required else []
        anion = str(rng.choice(anions))
        if anion not in chosen:
            chosen.append(anion)
        others = [e for e in palette if e not in chosen]
        while len(chosen) < k and others:
            pick = str(rng.choice(others))
            chosen.append(pick)
            others.remove(pick)
        counts = rng.integers(1, max_per_element + 1, size=len(chosen))
        if counts.sum() > max_atoms:
            continue
        comp = Composition(dict(zip(chosen, counts.tolist(), strict=True)))
        formula = comp.reduced_formula
        if formula in seen or not charge_balanced(formula):
            continue
        seen.add(formula)
        out.append(comp.reduced_composition)
    return out
