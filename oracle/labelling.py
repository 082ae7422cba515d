"""From a relaxation to labels: corrected energy, formation energy, references and hull context.

Pure functions of values (no store): the ``relax`` labeller of the loop calls them and writes the results.
"""

from __future__ import annotations

import math
from typing import Any

from pymatgen.core import Structure

from core.threads import torch_threads
from oracle.config import OracleConfig
from oracle.formation import FormationReferences
from oracle.references import ElementalReferences
from oracle.relax import RelaxationResult


def relaxation_fields(
    result: RelaxationResult,
    structure: Structure,
    *,
    formula: str,
    references: FormationReferences,
    energy_scale: str,
    correction: str,
) -> dict[str, Any]:
    """Evaluation fields of one relaxation: the result's fields, the energy corrected onto the MP scale where the
    potential allows it (see :mod:`oracle.compat`), the formation energy (eV/atom), or a failure reason.

    Args:
        structure: the relaxed structure (the input one when the relaxation kept none).
        formula: the candidate's reduced formula (recorded as is).
        energy_scale: the potential's energy scale; ``correction``: ``OracleConfig.energy_correction``.
    """
    from oracle.compat import correct_energy

    fields = result.model_dump(exclude={"formula"})
    fields["formula"] = formula
    if result.status == "failed":
        return fields
    problem = ""
    try:
        corrected = correct_energy(
            structure, float(result.energy_total), energy_scale=energy_scale, correction=correction
        )
        formation = references.formation_energy_per_atom(
            structure.composition, corrected.energy_per_atom * len(structure)
        )
        fields.update(
            corrected_energy_per_atom=corrected.energy_per_atom,
            energy_correction_per_atom=corrected.correction_per_atom,
            correction_scheme=corrected.scheme,
            formation_energy_per_atom=formation,
        )
        if not math.isfinite(formation):
            problem = "no finite formation energy"
    except Exception as exc:  # a property of this material: recorded, the batch goes on
        problem = f"no formation energy: {type(exc).__name__}: {exc}"
    if problem:
        fields.update(status="failed", reason="; ".join(r for r in (result.reason, problem) if r))
    return fields


def elemental_energies(
    config: OracleConfig, elements: set[str], *, num_threads: int = 1
) -> tuple[ElementalReferences, dict[str, float]]:
    """The oracle's elemental references, with ``elements`` computed (or read from the cache).

    Returns:
        (the ElementalReferences, element -> energy per atom in eV/atom, sorted by element).
    """
    from oracle.potentials import get_potential

    source = config.resolved_reference_source(get_potential(config.relax.potential).energy_scale)
    references = ElementalReferences(config.relax.potential, source=source)
    with torch_threads(num_threads):
        energies = {el: references.energy_per_atom(el) for el in sorted(elements)}
    return references, energies


def competing_phase_entries(config: OracleConfig, systems: list[list[str]]) -> list[tuple[str, str, float]]:
    """MP phases of these chemical systems as hull context, when the oracle is on the MP scale and
    ``competing_phases`` allows it (``auto``: with ``$MP_API_KEY``); else none.

    Returns:
        (MP entry id, reduced formula, MP corrected energy in eV/atom) per phase.
    """
    from oracle.compat import mp_compatible
    from oracle.competing import CompetingPhases
    from oracle.potentials import get_potential

    if config.competing_phases == "off":
        return []
    if not mp_compatible(get_potential(config.relax.potential).energy_scale, config.energy_correction):
        return []
    source = CompetingPhases.from_env()
    if source is None:
        return []
    return [(f"mp:{p.entry_id}", p.formula, p.energy_per_atom) for p in source.for_systems(systems)]


def reference_phase_set(config: OracleConfig) -> Any:
    """The Materials Project reference phases (:class:`oracle.phases.PhaseSet`) for this oracle's hull: the files
    of ``reference_phases`` plus, when ``competing_phases`` allows it, MP's own phases; None when the energies
    are not on the MP scale or no phase file is configured."""
    from oracle.compat import mp_compatible
    from oracle.phases import default_phase_set
    from oracle.potentials import get_potential

    if not config.reference_phases:
        return None
    if not mp_compatible(get_potential(config.relax.potential).energy_scale, config.energy_correction):
        return None
    competing = None if config.competing_phases == "auto" else False
    return default_phase_set(config.reference_phases, competing=competing)
