"""Formation energy: one pure function, and the small contract a reference set offers.

Imports nothing else of the package, so the relaxation and the references can both use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pymatgen.core import Composition

from core.errors import DiscoveryError


def formation_energy_per_atom(composition: Composition | str, energy_total: float, mu: Callable[[str], float]) -> float:
    """(E_total - Σ n_i μ_i) / N (eV/atom) for a cell of ``composition`` with total energy ``energy_total`` (eV);
    ``mu(symbol)`` is the elemental reference energy (eV/atom)."""
    composition = Composition(composition)
    n_atoms = composition.num_atoms
    if n_atoms <= 0:
        raise DiscoveryError("formation energy of an empty composition")
    total_mu = sum(amount * mu(str(el)) for el, amount in composition.element_composition.items())
    return float((energy_total - total_mu) / n_atoms)


class FormationReferences(Protocol):
    """Anything that turns a cell's total energy into a formation energy (e.g. ElementalReferences)."""

    def formation_energy_per_atom(self, composition: Composition | str, energy_total: float) -> float:
        """Formation energy (eV/atom) of a cell of ``composition`` with total energy ``energy_total`` (eV)."""
        ...
