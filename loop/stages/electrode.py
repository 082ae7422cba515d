"""Electrode: intercalation voltage, capacity and energy density of labelled Li/Na candidates.

Each picked candidate's de-intercalated (charged) counterpart is built by :func:`oracle.electrode.deintercalate`
(as many ions as the redox capacity of the other cations allows), relaxed by the oracle's own potential and
settings, corrected onto the same energy scale, and paired with the labelled (discharged) structure through
pymatgen's ``InsertionElectrode`` (:class:`oracle.electrode.ElectrodeResult`). The working ion's metal reference
is the oracle's elemental reference. Every outcome is stored on the evaluation (``EvaluationDoc.electrode``), a
failure with its reason, so nothing is computed twice.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from pymatgen.core import Structure

from core.threads import torch_threads
from loop.roles import RoundContext
from oracle.config import OracleConfig
from store.documents import EvaluationDoc

#: Learned targets read from ``EvaluationDoc.electrode`` (the stage then labels every labelled candidate).
ELECTRODE_TARGETS = ("average_voltage", "volume_change")


@dataclass(frozen=True, kw_only=True)
class ElectrodeOutput:
    """Electrode results written now: evaluation id -> average voltage (V) or None when it failed."""

    results: dict[str, float | None]
    elapsed_s: float


def _stability(e: EvaluationDoc) -> tuple[float, float]:
    e_hull = e.energy_above_hull if e.energy_above_hull is not None else math.inf
    return (e_hull, e.formation_energy_per_atom if e.formation_energy_per_atom is not None else math.inf)


def pick_for_electrode(
    oracle: OracleConfig, labelled: list[EvaluationDoc], *, learn: bool, last_round: bool
) -> list[EvaluationDoc]:
    """The labelled candidates to compute now: every one without a result when voltage is learned, else the
    ``top_k`` most stable Li/Na ones whose other cations can be oxidised (after the last round only, unless
    ``when: every``)."""
    from oracle.electrode import working_ion

    config = oracle.electrode
    todo = [e for e in labelled if e.electrode is None and e.relaxed_structure]

    def has_ion(e: EvaluationDoc) -> bool:
        try:
            working_ion(e.formula, None if config.ion == "auto" else config.ion)
        except ValueError:
            return "Li" in e.elements and config.ion in ("auto", "Li")  # mixed Li/Na: Li
        return True

    if learn:
        return [e for e in todo if has_ion(e)]
    if config.top_k == 0 or (config.when == "last" and not last_round):
        return []

    def can_charge(e: EvaluationDoc) -> bool:  # an intercalation electrode at all: ions the redox can release
        from oracle.electrode import removable_ions

        ion = "Li" if "Li" in e.elements and config.ion in ("auto", "Li") else "Na"
        try:
            return removable_ions(e.formula, ion).n_removable > 0
        except ValueError:
            return False

    usable = (e for e in labelled if e.relaxed_structure and has_ion(e) and can_charge(e))
    ranked = sorted(usable, key=_stability)[: config.top_k]
    return [e for e in ranked if e.electrode is None]


def electrode_stage(oracle: OracleConfig, ctx: RoundContext, *, learn: bool, last_round: bool) -> ElectrodeOutput:
    """Compute and store the electrode of the picked candidates (see :func:`pick_for_electrode`)."""
    start = time.perf_counter()
    labelled = ctx.store.labelled(ctx.campaign, ctx.labeler_key)
    picked = pick_for_electrode(oracle, labelled, learn=learn, last_round=last_round)
    out: dict[str, float | None] = {}
    if not picked:
        return ElectrodeOutput(results=out, elapsed_s=time.perf_counter() - start)
    from oracle import get_potential, relax_many
    from oracle.electrode import deintercalate, removable_ions, working_ion
    from oracle.labelling import elemental_energies

    config = oracle.electrode
    potential = get_potential(oracle.relax.potential)
    jobs: list[tuple[EvaluationDoc, Structure, Structure, str]] = []
    for e in picked:
        structure = Structure.from_dict(e.relaxed_structure)  # type: ignore[arg-type]
        try:
            ion = working_ion(structure.composition, None if config.ion == "auto" else config.ion)
        except ValueError:
            ion = "Li"
        removal = removable_ions(structure.composition, ion)
        reason = removal.reason or ("" if removal.n_removable >= 1 - 1e-6 else "less than one removable ion per cell")
        if not reason and len(structure) > config.max_sites:
            reason = f"{len(structure)} sites > electrode.max_sites {config.max_sites}"
        if reason:
            _store(ctx, e, {"status": "failed", "ion": ion, "reason": reason})
            out[e.id] = None
            continue
        jobs.append((e, structure, deintercalate(structure, ion), ion))
    if jobs:
        references, _ = elemental_energies(oracle, {ion for *_, ion in jobs}, num_threads=ctx.num_threads)

        def on_result(i: int, result: Any) -> None:
            e, discharged, charged, ion = jobs[i]
            out[e.id] = _finish(ctx, oracle, potential, references, e, discharged, charged, ion, result)

        with torch_threads(ctx.num_threads):
            relax_many(
                [charged for _, _, charged, _ in jobs],
                oracle.relax_config(),
                batch_size=oracle.batch_size,
                on_result=on_result,
            )
    return ElectrodeOutput(results=out, elapsed_s=time.perf_counter() - start)


def _finish(
    ctx: RoundContext,
    oracle: OracleConfig,
    potential: Any,
    references: Any,
    e: EvaluationDoc,
    discharged: Structure,
    charged: Structure,
    ion: str,
    result: Any,
) -> float | None:
    """Turn the charged state's relaxation into an ElectrodeResult and store it (or the failure)."""
    base = {"ion": ion, "charged_status": result.status, "charged_steps": result.n_steps, "round": ctx.round_index}
    if result.status == "failed" or result.energy_total is None or result.relaxed_structure is None:
        _store(ctx, e, {**base, "status": "failed", "reason": f"charged state: {result.reason or result.status}"})
        return None
    discharged_per_atom = e.corrected_energy_per_atom
    if discharged_per_atom is None:
        discharged_per_atom = e.energy_per_atom
    try:
        electrode = electrode_from_charged(
            oracle,
            potential,
            references,
            discharged,
            float(discharged_per_atom),
            result,
            ion,
        )
    except (ValueError, KeyError) as exc:
        _store(ctx, e, {**base, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"})
        return None
    ok = {**base, "status": "ok", "reason": "", **electrode.model_dump(), "charged": result.relaxed_structure}
    _store(ctx, e, ok)
    return electrode.average_voltage


def _store(ctx: RoundContext, e: EvaluationDoc, doc: dict[str, Any]) -> None:
    ctx.store.set_electrode(e.id, doc)


def electrode_from_charged(
    oracle: OracleConfig,
    potential: Any,
    references: Any,
    discharged: Structure,
    discharged_energy_per_atom: float,
    result: Any,
    ion: str,
) -> Any:
    """The ElectrodeResult of ``discharged`` (its corrected energy in eV/atom) and the relaxation ``result`` of its
    charged state, corrected onto the same scale (``oracle.energy_correction``); the ion's metal reference from
    ``references``. Raises ValueError (or KeyError) when the pair has no voltage."""
    from oracle.compat import correct_energy
    from oracle.electrode import ElectrodeResult

    relaxed = Structure.from_dict(result.relaxed_structure)
    scale, correction = potential.energy_scale, oracle.energy_correction
    corrected = correct_energy(relaxed, float(result.energy_total), energy_scale=scale, correction=correction)
    return ElectrodeResult.from_energies(
        discharged.composition,
        discharged_energy_per_atom * len(discharged),
        relaxed.composition,
        corrected.energy_per_atom * len(relaxed),
        references.energy_per_atom(ion),
        ion=ion,
        discharged_volume=discharged.volume,
        charged_volume=relaxed.volume,
    )
