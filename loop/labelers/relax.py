"""The ``relax`` labeler: relaxation with a pretrained potential, formation energy and convex hull.

The science is in :mod:`oracle` (pure functions of values); this module reads candidates, calls it and
writes each result to the store as soon as it exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from pymatgen.core import Structure

from loop.config import LoopConfig
from loop.labelers.rows import fmt
from loop.registry import LABELERS
from loop.roles import Progress, RoundContext
from oracle.config import OracleConfig
from store.documents import BatchEntry, CandidateDoc, EvaluationDoc, Provenance, RoundDoc
from store.novelty import (
    NoveltyChecker,
    check_labels,
    discovery_metrics,
    is_known,
    needs_relaxed_check,
    reference_phases,
)


@LABELERS.register("relax")
@dataclass(frozen=True, kw_only=True)
class RelaxLabeler:
    """Relax (or single-point, for seeds) with ``oracle.relax.potential``; label the formation energy (eV/atom)
    on the MP-compatible scale; after each round, the energy above hull of every label of the campaign."""

    name: ClassVar[str] = "relax"
    targets: ClassVar[tuple[str, ...]] = ("formation_energy_per_atom",)
    #: Further targets it can provide when asked: the electrode results (``oracle.electrode``), computed then for
    #: every labelled Li/Na candidate.
    optional_targets: ClassVar[tuple[str, ...]] = ("average_voltage", "volume_change")
    #: Outcomes scored on every candidate when the config names none (see ``LoopConfig.properties``).
    default_properties: ClassVar[tuple[str, ...]] = ("e_above_hull", "band_gap", "log10_conductivity")
    reads: ClassVar[tuple[str, ...]] = ("oracle",)
    """The config sections this labeler reads (:func:`loop.plan.build_plan` refuses changed settings no role reads)."""

    oracle: OracleConfig

    @classmethod
    def from_config(cls, config: LoopConfig) -> RelaxLabeler:
        """The labeler of ``config`` (its ``oracle`` section)."""
        return cls(oracle=config.oracle)

    @property
    def key(self) -> str:
        """:meth:`oracle.config.OracleConfig.key`: a hash of every setting that can change a result."""
        return self.oracle.key()

    def label(
        self,
        ctx: RoundContext,
        candidates: list[CandidateDoc],
        *,
        seeds: bool,
        provenance: Provenance,
        progress: Progress | None = None,
    ) -> int:
        """Label ``candidates`` with the oracle (:func:`oracle.labelling.label_structures`): relaxed in lockstep
        batches of ``oracle.batch_size`` (one batched potential call per step), refined by the second tier when
        ``oracle.refine`` names one, corrected onto the MP scale, turned into a formation energy and stored as
        soon as each exists."""
        from oracle import get_potential
        from oracle.labelling import elemental_energies, label_structures

        if not candidates:
            return 0
        # a missing reference is a set-up problem, not a property of the material: fail the round
        # before any result is written, so nothing is stored as a permanent failure
        references, _ = elemental_energies(
            self.oracle, {el for c in candidates for el in c.elements}, num_threads=ctx.num_threads
        )
        versions = [get_potential(self.oracle.relax.potential).version]
        if self.oracle.refine.potential is not None:
            versions.append(get_potential(self.oracle.refine.potential).version)
        provenance = provenance.model_copy(update={"oracle": self.oracle.name, "oracle_version": " + ".join(versions)})
        stored = 0

        def store_result(i: int, fields: dict[str, Any]) -> None:
            nonlocal stored
            cand = candidates[i]
            ctx.store.put_evaluation(
                EvaluationDoc.from_relaxation(cand, fields, oracle_key=self.key, provenance=provenance)
            )
            stored += 1
            if progress is not None:
                progress(stored - 1, len(candidates), cand.formula)

        label_structures(
            self.oracle,
            [Structure.from_dict(c.structure) for c in candidates],
            seeds=seeds,
            num_threads=ctx.num_threads,
            references=references,
            formulas=[c.formula for c in candidates],
            on_result=store_result,
        )
        return stored

    def prepare(self, ctx: RoundContext, candidates: list[CandidateDoc]) -> None:
        """Compute (or read from the cache) the elemental references of ``candidates`` once, before workers
        relax shares of the batch in parallel."""
        from oracle.labelling import elemental_energies

        elemental_energies(self.oracle, {el for c in candidates for el in c.elements}, num_threads=ctx.num_threads)

    def finish_round(self, ctx: RoundContext) -> dict[str, Any]:
        """Tell each new label known or novel on its relaxed structure, then recompute the signed energy above hull
        (eV/atom) and decomposition of every label of the campaign; returns the campaign's discovery counts
        (:func:`store.novelty.discovery_metrics`: evaluated, stable, stable and known, S.U.N. and its rate).

        Novelty (:mod:`store.novelty`): matched against the reference phases of the hull (not the computed ones) and
        the campaign's seeds, before the hull. On the MP scale the hull of each chemical system holds the Materials
        Project reference phases (:mod:`oracle.phases`) and every other labelled structure of the campaign; each
        value records how many reference phases its system held, where they came from and whether the hull is thin.
        Otherwise the hull holds the elemental references (same potential) and the campaign's structures. A phase
        found in a later round can raise the value of an earlier one, hence the recomputation.
        """
        labels = ctx.store.labelled(ctx.campaign, self.key)
        if any(e.relaxed_structure and needs_relaxed_check(e.novelty) for e in labels):
            checker = NoveltyChecker(
                phase_set=reference_phases(self.oracle.reference_phases, self.oracle.competing_phases),
                store=ctx.store,
                campaign=ctx.campaign,
            )
            check_labels(ctx.store, checker, labels)
        self._hulls(ctx, [e for e in labels if e.energy_per_atom is not None])
        return discovery_metrics(ctx.store, ctx.campaign, self.key)

    def _hulls(self, ctx: RoundContext, usable: list[EvaluationDoc]) -> None:
        """The hull of every usable label (see :meth:`finish_round`)."""
        if not usable:
            return
        entries = [
            (
                e.id,
                e.formula,
                e.corrected_energy_per_atom if e.corrected_energy_per_atom is not None else e.energy_per_atom,
            )
            for e in usable
        ]
        from oracle.completion import complete, reference_phase_set

        phase_set = reference_phase_set(self.oracle)
        if phase_set is not None:
            # competitors the reference files lack (Li2O, LiF, ...): computed once per data home and oracle
            systems = sorted({tuple(sorted(e.elements)) for e in usable})
            complete(phase_set, systems, self.oracle, num_threads=ctx.num_threads, **self.oracle.completion.kwargs())
        if phase_set is None:
            self._elemental_hull(ctx, usable, entries)
            return
        # computed phases this campaign's labels call for, not what other campaigns added to the shared cache
        phase_set = phase_set.restricted(systems)
        for key, formula, energy in entries:
            others = [c for c in entries if c[0] != key]
            st = phase_set.stability(formula, float(energy), context=others)  # type: ignore[arg-type]
            hull = {
                "n_phases": st.n_phases,
                "sources": st.sources,
                "thin": st.thin,
                "hull_formation_energy": st.hull_formation_energy,
            }
            ctx.store.set_hull(key, st.e_above_hull, st.decomposition, hull)
        for e in usable:
            if e.window is None and ({"Li", "Na"} & set(e.elements)):
                ctx.store.set_window(e.id, _window(phase_set, e))

    def _elemental_hull(self, ctx: RoundContext, usable: list[Any], entries: list[Any]) -> None:
        """The hull of the elemental references, the campaign's labels and (allowed) MP competing phases."""
        from oracle.hull import hull_energies
        from oracle.labelling import competing_phase_entries, elemental_energies

        _, energies = elemental_energies(
            self.oracle, {el for e in usable for el in e.elements}, num_threads=ctx.num_threads
        )
        phases = competing_phase_entries(self.oracle, [e.elements for e in usable])
        for key, res in hull_energies(entries, energies, phases).items():
            ctx.store.set_hull(key, res.e_above_hull, res.decomposition)

    def best(self, ctx: RoundContext, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` most stable novel labels, then the ``n`` most stable known ones (reference phases, seeds),
        each ranked apart: lowest signed energy above hull, then formation energy (eV/atom), with whether and as
        what it is known, what the hull rests on and the model properties of the relaxed structure (mean, std)."""
        labelled = sorted(ctx.store.labelled(ctx.campaign, self.key), key=_stability_key)
        novel = [e for e in labelled if not is_known(e)][:n]
        known = [e for e in labelled if is_known(e)][:n]
        return [_best_row(e) for e in novel + known]

    def parent_rank(self, ctx: RoundContext) -> list[tuple[str, dict[str, Any]]]:
        """Relaxed structures, most stable first (energy above hull, then formation energy)."""
        labelled = [e for e in ctx.store.labelled(ctx.campaign, self.key) if e.relaxed_structure]
        labelled.sort(key=_stability_key)
        return [(e.candidate_id, e.relaxed_structure) for e in labelled]  # type: ignore[misc]

    def batch_row(self, entry: BatchEntry, targets: tuple[str, ...]) -> dict[str, Any]:
        """Formula, id, sites, predicted formation energy and spread, the other predicted outcomes (mean and std),
        acquisition value, oracle result."""
        others = [name for name in entry.means if name not in targets]
        return {
            "formula": entry.formula,
            "candidate_id": entry.candidate_id,
            "n_sites": entry.n_sites,
            "predicted_mean_eV_per_atom": fmt(entry.mean),
            "predicted_std_eV_per_atom": fmt(entry.std),
            **{f"{name}_mean": fmt(entry.means.get(name)) for name in others},
            **{f"{name}_std": fmt(entry.stds.get(name)) for name in others},
            "acquisition_value": fmt(entry.acquisition_value, ".4g"),
            "oracle_status": entry.status,
            "formation_energy_eV_per_atom": fmt(entry.formation_energy_per_atom),
        }

    def best_markdown(self, doc: RoundDoc, targets: tuple[str, ...]) -> str:
        """The most stable novel labels so far and, apart, the most stable known ones, with their predicted
        properties, and the campaign's S.U.N. count."""
        novel = [b for b in doc.best if b.get("novelty") != "known"]
        known = [b for b in doc.best if b.get("novelty") == "known"]
        m = doc.metrics
        sun = ""
        if "n_sun" in m:
            sun = (
                f"\n**S.U.N.** (stable within {m.get('stable_threshold_eV_per_atom', 0.1):g} eV/atom of the hull, "
                f"unique, novel): {m['n_sun']} of {m.get('n_evaluated', 0)} evaluated candidates "
                f"({m.get('sun_rate', 0.0):.1%}); stable but known: {m.get('n_stable_known', 0)}\n"
            )
        return (
            "## Most stable novel candidates so far (eV/atom; energy above the hull of MP phases, signed)\n"
            + _best_rows_markdown(novel)
            + (f"\n{novelty_scope(novel)}\n" if novelty_scope(novel) else "")
            + "\n## Most stable known materials (matching a reference phase or a seed)\n"
            + _best_rows_markdown(known)
            + sun
        )


def _best_rows_markdown(best: list[dict[str, Any]]) -> str:
    """A markdown table of best rows: formula, id, what it is known as, energies, properties (mean ± std)."""
    names = sorted({k[: -len("_mean")] for b in best for k in b if k.endswith("_mean")})
    head = "| formula | id | known as | formation energy | E above hull (phases) |" + "".join(f" {n} |" for n in names)
    rule = "| --- " * (5 + len(names)) + "|"
    rows = []
    for b in best:
        hull = "" if b.get("e_above_hull") is None else f"{b['e_above_hull']:+.3f}"
        if b.get("hull_phases") is not None:
            hull += f" ({hull_phases_label(b)})"
        cells = "".join(
            f" {b[n + '_mean']:.2f} ± {b.get(n + '_std', 0.0):.2f} |" if n + "_mean" in b else " |" for n in names
        )
        energy = f"{b['formation_energy_per_atom']:.3f}"
        rows.append(f"| {b['formula']} | {b['candidate_id']} | {known_as_label(b)} | {energy} | {hull} |{cells}")
    body = "\n".join(rows) if rows else "| none yet |" + " |" * (4 + len(names))
    return f"{head}\n{rule}\n{body}\n"


def known_as_label(row: dict[str, Any]) -> str:
    """``'mp-1234 (mp_20)'``, ``'seed:Li2O'``, ``'novel'`` or ``''`` (not checked): what a best row is known as."""
    if row.get("novelty") == "known":
        source = row.get("known_source")
        match = str(row.get("known_as") or "")
        return f"{match} ({source})" if source and source not in ("seed", "dataset") else match
    return "novel" if row.get("novelty") == "novel" else ""


def novelty_scope(best: list[dict[str, Any]]) -> str:
    """What the novel rows were checked against, e.g. ``'novel: matching none of seeds, mp_20, mpts_52 (not MP's
    own phases online: set MP_API_KEY)'``; '' when no row is novel."""
    scopes = sorted(
        {str(b["checked_against"]) for b in best if b.get("novelty") == "novel" and b.get("checked_against")}
    )
    if not scopes:
        return ""
    offline = not all("mp-api" in scope for scope in scopes)
    return f"novel: matching none of {' / '.join(scopes)}" + (
        " (not MP's own phases online: set MP_API_KEY)" if offline else ""
    )


def hull_phases_label(row: dict[str, Any]) -> str:
    """``'14: mp_20 8, computed 4, campaign 2, thin'``: how many phases a hull held and where they came from."""
    sources = row.get("hull_sources") or {}
    parts = ", ".join(f"{name} {count}" for name, count in sorted(sources.items(), key=lambda kv: (-kv[1], kv[0])))
    text = f"{row.get('hull_phases')}" + (f": {parts}" if parts else "")
    return text + (", thin" if row.get("hull_thin") else "")


def _window(phase_set: Any, e: EvaluationDoc) -> dict[str, Any]:
    """The electrochemical stability window of a labelled structure at its own energy against the reference
    phases (:func:`oracle.window.stability_window`), or a failed record with the reason."""
    from oracle.window import stability_window

    ion = "Li" if "Li" in e.elements else "Na"
    energy = e.corrected_energy_per_atom if e.corrected_energy_per_atom is not None else e.energy_per_atom
    try:
        window = stability_window(e.formula, energy, phase_set.entries({*e.elements, ion}), ion=ion)
    except (ValueError, KeyError) as exc:
        return {"status": "failed", "ion": ion, "reason": f"{type(exc).__name__}: {exc}"}
    return {"status": "ok", **window.model_dump(mode="json")}


def _stability_key(e: EvaluationDoc) -> tuple[float, float]:
    """Sort key: signed energy above hull (unknown last), then formation energy (eV/atom)."""
    e_hull = e.energy_above_hull if e.energy_above_hull is not None else math.inf
    return (e_hull, e.formation_energy_per_atom if e.formation_energy_per_atom is not None else math.inf)


def _best_row(e: EvaluationDoc) -> dict[str, Any]:
    """One "best so far" row: id, formula, energies (eV/atom), hull context, model properties (mean, std)."""
    row: dict[str, Any] = {
        "candidate_id": e.candidate_id,
        "formula": e.formula,
        "formation_energy_per_atom": e.formation_energy_per_atom,
        "e_above_hull": e.energy_above_hull,
        "hull_phases": e.hull.get("n_phases"),
        "hull_sources": e.hull.get("sources"),
        "hull_thin": e.hull.get("thin"),
        "novelty": e.novelty.status if e.novelty is not None else None,
        "known_as": e.novelty.match if e.novelty is not None else None,
        "known_source": e.novelty.match_source if e.novelty is not None else None,
        "checked_against": e.novelty.checked_against if e.novelty is not None else None,
    }
    for name, value in sorted(e.properties.items()):
        row[f"{name}_mean"] = value.get("mean")
        row[f"{name}_std"] = value.get("std")
    return row
