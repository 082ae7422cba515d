"""From a relaxation to labels: corrected energy, formation energy, references and hull context.

Pure functions of values (no store): the ``relax`` labeler of the loop calls them and writes the results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from pymatgen.core import Structure

from core.threads import torch_threads
from oracle import relax as _relax
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

    source = config.resolved_reference_source(get_potential(config.final_potential).energy_scale)
    references = ElementalReferences(config.final_potential, source=source)
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
    if not mp_compatible(get_potential(config.final_potential).energy_scale, config.energy_correction):
        return []
    source = CompetingPhases.from_env()
    if source is None:
        return []
    return [(f"mp:{p.entry_id}", p.formula, p.energy_per_atom) for p in source.for_systems(systems)]


#: ``on_result(i, fields)``: structure ``i`` (input order) is labelled; ``fields`` as :func:`label_structures`.
OnLabel = Callable[[int, dict[str, Any]], None]


def label_structures(
    config: OracleConfig,
    structures: Sequence[Structure],
    *,
    seeds: bool = False,
    num_threads: int = 1,
    references: FormationReferences | None = None,
    formulas: Sequence[str] | None = None,
    on_result: OnLabel | None = None,
) -> list[dict[str, Any]]:
    """The oracle on ``n`` structures: relax (single point for seeds unless ``relax_seeds``), refine with the second
    tier when ``config.refine.potential`` is set, correct onto the MP scale, formation energy.

    Structures go in lockstep batches of ``config.batch_size``: each batch is relaxed with one batched call of the
    first potential per step, then its relaxed structures are refined together. A failure never stops the others.

    Args:
        references: elemental references of the final potential (default: computed or read from the cache; a
            missing one raises before anything is relaxed).
        formulas: recorded formula of each structure (default: its reduced formula).
        on_result: called as ``on_result(i, fields)`` as soon as structure ``i`` is labelled.

    Returns:
        ``n`` dicts in input order: :func:`relaxation_fields` (status, reason, energy_total eV, energy_per_atom,
        corrected_energy_per_atom and formation_energy_per_atom eV/atom, relaxed_structure, potential,
        potential_version, checkpoint_sha256, elapsed_s s, ...) plus ``refine`` (the second tier's record, or None).
    """
    from core.threads import torch_threads
    from oracle.potentials import get_potential

    if not structures:
        return []
    first = get_potential(config.relax.potential)  # a bad spec is a ConfigError, raised up front
    final = get_potential(config.final_potential)
    if references is None:
        elements = {el.symbol for s in structures for el in s.composition.elements}
        references, _ = elemental_energies(config, elements, num_threads=num_threads)
    names = list(formulas) if formulas is not None else [s.composition.reduced_formula for s in structures]
    out: list[dict[str, Any] | None] = [None] * len(structures)

    def done(i: int, result: RelaxationResult, refine: dict[str, Any] | None) -> None:
        structure = Structure.from_dict(result.relaxed_structure) if result.relaxed_structure else structures[i]
        fields = relaxation_fields(
            result,
            structure,
            formula=names[i],
            references=references,
            energy_scale=final.energy_scale,
            correction=config.energy_correction,
        )
        fields["refine"] = refine
        out[i] = fields
        if on_result is not None:
            on_result(i, fields)

    size = config.batch_size
    with torch_threads(num_threads):
        for offset in range(0, len(structures), size):
            chunk = list(structures[offset : offset + size])
            relaxed = _relax.relax_batch(chunk, config.relax_config(seeds=seeds), potential=first)
            if config.refine.potential is None:
                for k, result in enumerate(relaxed):
                    done(offset + k, result, None)
                continue
            _refine_chunk(config, offset, relaxed, done)
    return [f for f in out if f is not None]


def _refine_chunk(
    config: OracleConfig,
    offset: int,
    relaxed: list[RelaxationResult],
    done: Callable[[int, RelaxationResult, dict[str, Any] | None], None],
) -> None:
    """Second tier of one batch: refine every first-tier result that has a structure and an energy."""
    from oracle.potentials import get_potential

    potential = get_potential(config.refine.potential)  # type: ignore[arg-type]
    todo = [k for k, r in enumerate(relaxed) if r.status != "failed" and r.relaxed_structure is not None]
    for k, r in enumerate(relaxed):
        if k not in todo:
            done(offset + k, r, None)
    if not todo:
        return
    second = _relax.relax_batch(
        [Structure.from_dict(relaxed[k].relaxed_structure) for k in todo],  # type: ignore[arg-type]
        config.refine.relax_config(config.relax),
        potential=potential,
    )
    for k, tier2 in zip(todo, second, strict=True):
        tier1 = relaxed[k]
        record = {
            "potential": tier2.potential,
            "potential_version": tier2.potential_version,
            "checkpoint_sha256": tier2.checkpoint_sha256,
            "max_steps": config.refine.max_steps,
            "status": tier2.status,
            "reason": tier2.reason,
            "n_steps": tier2.n_steps,
            "elapsed_s": tier2.elapsed_s,
            "first_energy_per_atom": tier1.energy_per_atom,
            "energy_per_atom": tier2.energy_per_atom,
        }
        done(offset + k, _merge(tier1, tier2, relaxed_again=config.refine.max_steps > 0), record)


def _merge(tier1: RelaxationResult, tier2: RelaxationResult, *, relaxed_again: bool) -> RelaxationResult:
    """The first tier's result with the second tier's energy (and, after a re-relaxation, structure); failed with
    the second tier's reason when it failed."""
    if tier2.status == "failed" or tier2.energy_total is None:
        reason = f"refine ({tier2.potential}): {tier2.reason or 'failed'}"
        return tier1.model_copy(update={"status": "failed", "reason": reason})
    update: dict[str, Any] = {
        "energy_total": tier2.energy_total,
        "energy_per_atom": tier2.energy_per_atom,
        "formation_energy_per_atom": None,
        "elapsed_s": tier1.elapsed_s + tier2.elapsed_s,
    }
    if relaxed_again:
        update.update(
            relaxed_structure=tier2.relaxed_structure,
            max_force=tier2.max_force,
            energy_trajectory=[*tier1.energy_trajectory, *tier2.energy_trajectory],
        )
        if tier2.status == "unconverged" and tier1.status == "converged":
            update.update(status="unconverged", reason=f"refine ({tier2.potential}): {tier2.reason}")
    return tier1.model_copy(update=update)
