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
    from oracle.electrode import deintercalate, removable_ions, working_ion
    from oracle.labelling import elemental_energies, label_structures

    config = oracle.electrode
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
        charged = [c for _, _, c, _ in jobs]
        elements = {el.symbol for c in charged for el in c.composition.elements} | {ion for *_, ion in jobs}
        references, _ = elemental_energies(oracle, elements, num_threads=ctx.num_threads)

        def on_result(i: int, fields: dict[str, Any]) -> None:
            e, discharged, _, ion = jobs[i]
            out[e.id] = _finish(ctx, references, e, discharged, ion, fields)

        label_structures(oracle, charged, num_threads=ctx.num_threads, references=references, on_result=on_result)
    return ElectrodeOutput(results=out, elapsed_s=time.perf_counter() - start)


def _finish(
    ctx: RoundContext,
    references: Any,
    e: EvaluationDoc,
    discharged: Structure,
    ion: str,
    fields: dict[str, Any],
) -> float | None:
    """Turn the charged state's oracle label (:func:`oracle.labelling.label_structures` fields) into an
    ElectrodeResult and store it (or the failure)."""
    status = fields.get("status")
    base = {"ion": ion, "charged_status": status, "charged_steps": fields.get("n_steps", 0), "round": ctx.round_index}
    if status == "failed" or fields.get("corrected_energy_per_atom") is None or not fields.get("relaxed_structure"):
        reason = fields.get("reason") or status
        _store(ctx, e, {**base, "status": "failed", "reason": f"charged state: {reason}"})
        return None
    discharged_per_atom = e.corrected_energy_per_atom
    if discharged_per_atom is None:
        discharged_per_atom = e.energy_per_atom
    try:
        electrode = electrode_from_labels(
            discharged, float(discharged_per_atom), fields, references.energy_per_atom(ion), ion
        )
    except (ValueError, KeyError) as exc:
        _store(ctx, e, {**base, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"})
        return None
    ok = {**base, "status": "ok", "reason": "", **electrode.model_dump(), "charged": fields["relaxed_structure"]}
    _store(ctx, e, ok)
    return electrode.average_voltage


def _store(ctx: RoundContext, e: EvaluationDoc, doc: dict[str, Any]) -> None:
    ctx.store.set_electrode(e.id, doc)


def electrode_from_labels(
    discharged: Structure,
    discharged_energy_per_atom: float,
    charged: dict[str, Any],
    ion_energy_per_atom: float,
    ion: str,
) -> Any:
    """The ElectrodeResult of ``discharged`` (its corrected energy in eV/atom) and its charged state's oracle label
    (``relaxed_structure`` and ``corrected_energy_per_atom`` eV/atom, same oracle); ``ion_energy_per_atom`` is the
    working ion's metal reference (eV/atom). Raises ValueError (or KeyError) when the pair has no voltage."""
    from oracle.electrode import ElectrodeResult

    relaxed = Structure.from_dict(charged["relaxed_structure"])
    return ElectrodeResult.from_energies(
        discharged.composition,
        discharged_energy_per_atom * len(discharged),
        relaxed.composition,
        float(charged["corrected_energy_per_atom"]) * len(relaxed),
        ion_energy_per_atom,
        ion=ion,
        discharged_volume=discharged.volume,
        charged_volume=relaxed.volume,
    )


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
