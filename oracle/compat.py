"""Energies on the Materials Project scale (GGA/GGA+U with MP2020 corrections).

A potential declares its ``energy_scale`` (see :mod:`oracle.potentials`):

* ``mp2020`` - it learned MP2020-corrected energies (CHGNet, MPtrj-trained models): used as they are;
* ``mp_raw`` - it learned raw GGA/GGA+U energies (M3GNet-MP-2021): MP2020 anion and GGA+U corrections
  are added with pymatgen's ``MaterialsProject2020Compatibility`` (``check_potcar=False``);
* ``other`` - not comparable with MP data (r2SCAN, MatPES PBE): no correction; formation energies
  then use elemental references computed with the same potential.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from pymatgen.core import Structure
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedStructureEntry

Correction = Literal["auto", "mp2020", "none"]


@dataclass(frozen=True, kw_only=True)
class CorrectedEnergy:
    """An energy made comparable with MP data.

    Attributes:
        energy_per_atom: corrected energy (eV/atom).
        correction_per_atom: what was added to the potential's energy (eV/atom; 0 when none).
        scheme: ``"MP2020"``, ``"none (already MP2020)"`` or ``"none"``.
        mp_compatible: whether the value can be compared with MP energies and references.
    """

    energy_per_atom: float
    correction_per_atom: float
    scheme: str
    mp_compatible: bool


@cache
def _compatibility() -> MaterialsProject2020Compatibility:
    return MaterialsProject2020Compatibility(check_potcar=False)


def applies(energy_scale: str, correction: Correction) -> bool:
    """Whether MP2020 corrections are added for a potential of ``energy_scale`` under ``correction``."""
    if correction == "auto":
        return energy_scale == "mp_raw"
    return correction == "mp2020"


def mp_compatible(energy_scale: str, correction: Correction) -> bool:
    """Whether corrected energies of this potential compare with MP energies (and MP references).

    Already-corrected energies (``mp2020``) must not be corrected again; raw ones must be; for any other
    potential, an explicit ``correction="mp2020"`` is the user's statement that it gives raw GGA energies.
    """
    if energy_scale == "mp2020":
        return not applies(energy_scale, correction)
    return applies(energy_scale, correction)


def hubbard_values(structure: Structure) -> dict[str, float]:
    """The U values (eV) MP uses for this composition (GGA+U for oxides/fluorides of Co, Cr, Fe, ...)."""
    settings = _compatibility().u_settings
    symbols = {el.symbol for el in structure.composition.elements}
    for anion in ("O", "F"):
        if anion in symbols:
            return {el: float(u) for el, u in settings.get(anion, {}).items() if el in symbols and u}
    return {}


def correct_energy(
    structure: Structure, energy_total: float, *, energy_scale: str, correction: Correction = "auto"
) -> CorrectedEnergy:
    """The energy per atom of ``structure`` (total ``energy_total`` in eV) on the MP scale when possible.

    Raises:
        ValueError: if MP2020 rejects the entry (e.g. an element it has no rules for).
    """
    n = len(structure)
    if not applies(energy_scale, correction):
        scheme = "none (already MP2020)" if energy_scale == "mp2020" else "none"
        return CorrectedEnergy(
            energy_per_atom=energy_total / n,
            correction_per_atom=0.0,
            scheme=scheme,
            mp_compatible=mp_compatible(energy_scale, correction),
        )
    hubbards = hubbard_values(structure)
    entry = ComputedStructureEntry(
        structure,
        energy_total,
        parameters={"run_type": "GGA+U" if hubbards else "GGA", "hubbards": hubbards, "is_hubbard": bool(hubbards)},
    )
    processed = _compatibility().process_entry(entry)
    if processed is None:
        raise ValueError(f"MP2020 compatibility rejected {structure.composition.reduced_formula}")
    return CorrectedEnergy(
        energy_per_atom=processed.energy / n,
        correction_per_atom=processed.correction / n,
        scheme="MP2020",
        mp_compatible=True,
    )
