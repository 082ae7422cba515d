"""The stages of one round as plain functions of (store, config, inputs).

No Prefect here: ``tasks/`` wraps each stage in a task and ``flows/`` orders them. Every stage
reads what it needs from the store and writes its results back idempotently, so a crashed round
can be re-run without duplicates or lost results.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pymatgen.core import Structure

from acquisition import select
from battery_discovery.config import LoopConfig
from core import __version__
from core.errors import ModelNotFoundError
from core.paths import subdir
from core.threads import torch_threads
from generation import generate_candidates, load_seeds
from generation.fingerprint import coarse_fingerprint, same_structure
from store.documents import BatchEntry, CandidateDoc, EvaluationDoc, ModelDoc, Provenance, RoundDoc, utcnow
from store.repository import CandidateStore

if TYPE_CHECKING:
    from oracle import ElementalReferences, RelaxationResult


def _provenance(config: LoopConfig, round_index: int, **extra: Any) -> Provenance:
    return Provenance(campaign=config.campaign, round=round_index, code_version=__version__, **extra)


def _candidate_doc(
    structure: Structure, cid: str, fp: str, config: LoopConfig, round_index: int, **source: Any
) -> CandidateDoc:
    comp = structure.composition
    elements = sorted(el.symbol for el in comp.elements)
    return CandidateDoc(
        _id=cid,
        campaign=config.campaign,
        fingerprint=fp,
        formula=comp.reduced_formula,
        elements=elements,
        chemsys="-".join(elements),
        n_sites=len(structure),
        structure=structure.as_dict(),
        provenance=_provenance(config, round_index),
        **source,
    )


def register_structures(
    store: CandidateStore,
    config: LoopConfig,
    round_index: int,
    items: list[tuple[Structure, dict[str, Any]]],
    limit: int,
) -> tuple[list[str], list[str]]:
    """Store structures the campaign has not seen (StructureMatcher against the store and each other).

    Safe when several processes register at once: an id taken meanwhile is re-read and compared.

    Args:
        items: (structure, source fields of CandidateDoc) pairs.
        limit: most new documents to write.

    Returns:
        (ids of the items in input order, the existing id for duplicates and "" for items left out by
        ``limit``; ids newly written).
    """
    fps = [coarse_fingerprint(s) for s, _ in items]
    known: dict[str, dict[str, Structure]] = {}
    for doc in store.find_by_fingerprints(config.campaign, fps):
        known.setdefault(doc.fingerprint, {})[doc.id] = Structure.from_dict(doc.structure)
    ids: list[str] = []
    new_ids: list[str] = []
    for (structure, source), fp in zip(items, fps, strict=True):
        group = known.setdefault(fp, {})
        match = next((cid for cid, other in group.items() if same_structure(structure, other)), None)
        if match is None and len(new_ids) < limit:
            match = _insert_new(store, config, round_index, structure, fp, group, source)
            if match in group and group[match] is structure:
                new_ids.append(match)
        ids.append(match or "")
    return ids, new_ids


def _insert_new(
    store: CandidateStore,
    config: LoopConfig,
    round_index: int,
    structure: Structure,
    fp: str,
    group: dict[str, Structure],
    source: dict[str, Any],
) -> str:
    """Write ``structure`` under the first free id of its fingerprint; returns the id it ended up with."""
    base = f"{config.campaign}-{fp}"
    for k in range(1, 10_000):
        cid = base if k == 1 else f"{base}-{k}"
        if cid in group:
            continue
        if store.insert_candidate(_candidate_doc(structure, cid, fp, config, round_index, **source)):
            group[cid] = structure
            return cid
        # taken by another process meanwhile: the same structure, or another polymorph
        other = store.get_candidates([cid])
        if other:
            group[cid] = Structure.from_dict(other[0].structure)
            if same_structure(structure, group[cid]):
                return cid
    raise RuntimeError(f"no free candidate id for fingerprint {fp}")


# ------------------------------------------------------------------------------------- seed
def seed_stage(store: CandidateStore, config: LoopConfig) -> list[str]:
    """Round 0: store the seed structures as candidates; returns their ids (input order).

    Replay mode: the whole pool becomes the candidate set (labels kept on the candidates, hidden from
    the loop until the replay oracle reveals them) and ``replay.initial`` of them, drawn with
    ``replay.seed``, are returned as round 0's batch.
    """
    if config.mode == "replay":
        return _seed_pool(store, config)
    seeds = load_seeds(config.seeds)
    items = [(s.structure, {"source": "seed", "parent": s.name}) for s in seeds]
    ids, _ = register_structures(store, config, 0, items, limit=len(items))
    return list(dict.fromkeys(ids))  # two seed files with one structure count once


def _seed_pool(store: CandidateStore, config: LoopConfig) -> list[str]:
    from ingest import load_dataset
    from ingest.seed import seed_store

    seed_store(load_dataset(config.replay.pool), store, campaign=config.campaign)
    pool = store.candidate_ids(config.campaign, "dataset")
    order = np.random.default_rng(config.replay.seed).permutation(len(pool))
    return [pool[i] for i in order[: config.replay.initial]]


# --------------------------------------------------------------------------------- generate
@dataclass(frozen=True, kw_only=True)
class GenerateOutput:
    """What the generate stage wrote."""

    n_candidates: int
    new_ids: list[str]
    n_parents: int
    elapsed_s: float


def generate_stage(store: CandidateStore, config: LoopConfig, round_index: int) -> GenerateOutput:
    """Derive candidates from the seeds and the best evaluated structures; store the new ones.

    Replay mode generates nothing: the pool is the candidate set.
    """
    start = time.perf_counter()
    if config.mode == "replay":
        return GenerateOutput(n_candidates=0, new_ids=[], n_parents=0, elapsed_s=time.perf_counter() - start)
    parents = [(s.name, s.structure) for s in load_seeds(config.seeds)]
    seed_ids = {c.id for c in store.find_seeds(config.campaign)}
    labelled = [
        e
        for e in store.labelled(config.campaign, config.oracle_key())
        if e.relaxed_structure and e.candidate_id not in seed_ids
    ]  # the seeds are parents already
    best = sorted(labelled, key=lambda e: e.formation_energy_per_atom)[: config.generate.parents_per_round]
    parents += [(e.candidate_id, Structure.from_dict(e.relaxed_structure)) for e in best]
    candidates = generate_candidates(parents, config.generate, limit=0)
    items = [
        (
            c.structure,
            {
                "source": c.kind,
                "parent": c.parent,
                "substitutions": c.substitutions,
                "probability": c.probability,
            },
        )
        for c in candidates
    ]
    # the cap is per round: a re-run of a crashed round tops up to it, never past it
    room = max(0, config.candidates_per_round - store.count_generated(config.campaign, round_index))
    _, new_ids = register_structures(store, config, round_index, items, limit=room)
    return GenerateOutput(
        n_candidates=len(candidates),
        new_ids=new_ids,
        n_parents=len(parents),
        elapsed_s=time.perf_counter() - start,
    )


# ---------------------------------------------------------------------------------- predict
@dataclass(frozen=True, kw_only=True)
class PredictOutput:
    """Member predictions on the pool: ``members`` is K x n x m (m = len(config.targets), target units),
    or empty without a model."""

    pool_ids: list[str]
    members: list[list[list[float]]]
    model_version: str | None
    elapsed_s: float


def load_ensembles(model: ModelDoc, targets: tuple[str, ...]) -> list[Any]:
    """The registered ensembles of ``model``, one per target: its folder holds one ensemble (a single
    target) or one subfolder per target."""
    from surrogates import GNNEnsemble

    root = Path(model.path)
    if len(targets) == 1 and (root / "ensemble.json").is_file():
        return [GNNEnsemble.load(root)]
    return [GNNEnsemble.load(root / target) for target in targets]


#: Replay pools' graphs, built once per process: (store, database, campaign, cutoff) -> (id -> row, graphs).
_POOL_GRAPHS: dict[tuple[str, str, str, float], tuple[dict[str, int], Any]] = {}


def _pool_graphs(store: CandidateStore, config: LoopConfig, ids: list[str], ensemble: Any) -> Any:
    """Replay mode: the graphs of ``ids`` cut from the whole pool's graphs (built on first use and kept,
    since the pool never changes); None in discovery mode, whose pool grows every round."""
    if config.mode != "replay":
        return None
    from surrogates.graphs import build_graphs

    key = (config.store_uri, config.database, config.campaign, float(ensemble.config.cutoff))
    hit = _POOL_GRAPHS.get(key)
    if hit is None or any(i not in hit[0] for i in ids):
        everything = store.candidate_ids(config.campaign, "dataset")
        structures = [Structure.from_dict(c.structure) for c in store.get_candidates(everything)]
        while len(_POOL_GRAPHS) >= 4:  # a benchmark walks through campaigns: keep a few
            _POOL_GRAPHS.pop(next(iter(_POOL_GRAPHS)))
        hit = _POOL_GRAPHS[key] = (
            {cid: k for k, cid in enumerate(everything)},
            build_graphs(structures, ensemble.config.cutoff, ensemble.element_types),
        )
    index, graphs = hit
    return graphs.subset([index[i] for i in ids])


def predict_stage(store: CandidateStore, config: LoopConfig, round_index: int) -> PredictOutput:
    """Predict the target for every unevaluated candidate with the newest model of the campaign."""
    start = time.perf_counter()
    if config.mode == "replay":  # the pool's graphs are cached: ids are enough
        pool_ids = store.pending_ids(config.campaign)
        pool = []
    else:
        pool = store.pending_candidates(config.campaign)
        pool_ids = [c.id for c in pool]
    model = store.latest_model(config.campaign, before_round=round_index)
    try:
        ensembles = load_ensembles(model, config.targets) if model is not None and pool_ids else []
    except ModelNotFoundError:
        ensembles = []
    if not ensembles:
        return PredictOutput(pool_ids=pool_ids, members=[], model_version=None, elapsed_s=time.perf_counter() - start)
    graphs = _pool_graphs(store, config, pool_ids, ensembles[0])
    with torch_threads(config.surrogate.num_threads):
        if graphs is not None:
            members = np.stack([e.predict_graphs(graphs) for e in ensembles], axis=-1)  # K x n x m
        else:
            structures = [Structure.from_dict(c.structure) for c in pool]
            members = np.stack([e.predict_members(structures) for e in ensembles], axis=-1)
    return PredictOutput(
        pool_ids=pool_ids,
        members=members.astype(float).tolist(),
        model_version=model.id,  # type: ignore[union-attr]
        elapsed_s=time.perf_counter() - start,
    )


# ---------------------------------------------------------------------------------- acquire
@dataclass(frozen=True, kw_only=True)
class AcquireOutput:
    """The chosen batch, one entry per candidate, in selection order."""

    entries: list[BatchEntry]
    strategy: str
    elapsed_s: float


def acquire_stage(
    store: CandidateStore, config: LoopConfig, round_index: int, prediction: PredictOutput
) -> AcquireOutput:
    """Choose ``batch_size`` candidates and record the batch on the round (idempotent: a batch
    already recorded for this round is returned as it is)."""
    start = time.perf_counter()
    existing = store.get_round(config.campaign, round_index)
    if existing is not None and existing.acquired:
        return AcquireOutput(entries=existing.acquired, strategy="resumed", elapsed_s=time.perf_counter() - start)
    pool = store.candidate_briefs(prediction.pool_ids)
    if not pool:
        return AcquireOutput(entries=[], strategy=config.acquisition.strategy, elapsed_s=time.perf_counter() - start)
    observed = observed_targets(store, config)
    m = len(config.targets)
    usable = bool(prediction.members) and bool(np.all(np.isfinite(np.asarray(prediction.members))))
    if usable:
        members = np.asarray(prediction.members, dtype=float).reshape(-1, len(pool), m)
        strategy = config.acquisition  # select() falls back from logei to ucb without labels (and notes it)
    else:  # no model yet, or one predicting NaN/inf: nothing to exploit
        members = np.zeros((1, len(pool), m))
        strategy = config.acquisition.model_copy(update={"strategy": "random"})
    selection = select(
        members,
        config.batch_size,
        strategy,
        outcome_names=config.targets,
        observed=observed if len(observed) else None,
        keys=[c["formula"] for c in pool],
    )
    mean, std = members.mean(0), members.std(0)  # n x m
    entries = [
        BatchEntry(
            candidate_id=pool[i]["_id"],
            formula=pool[i]["formula"],
            n_sites=pool[i]["n_sites"],
            mean=float(mean[i, 0]) if usable else None,
            std=float(std[i, 0]) if usable else None,
            means={t: float(mean[i, j]) for j, t in enumerate(config.targets)} if usable else {},
            stds={t: float(std[i, j]) for j, t in enumerate(config.targets)} if usable else {},
            acquisition_value=value,
        )
        for i, value in zip(selection.indices, selection.values, strict=True)
    ]
    store.set_status([e.candidate_id for e in entries], "acquired")
    doc = existing or RoundDoc(_id=f"{config.campaign}:{round_index}", campaign=config.campaign, round=round_index)
    store.save_round(
        doc.model_copy(
            update={
                "acquired": entries,
                "n_pool": len(pool),
                "prediction_model": prediction.model_version,
                "acquisition_notes": list(selection.notes),
            }
        )
    )
    return AcquireOutput(entries=entries, strategy=selection.strategy, elapsed_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------------- oracle
@dataclass(frozen=True, kw_only=True)
class EvaluateOutput:
    """Oracle outcome per candidate id, and how many were computed now (not resumed)."""

    status: dict[str, str]
    formation_energy: dict[str, float | None]
    n_computed: int
    elapsed_s: float


def evaluate_stage(
    store: CandidateStore,
    config: LoopConfig,
    round_index: int,
    candidate_ids: list[str],
    *,
    model_version: str | None = None,
    seeds: bool = False,
    progress: Any = None,
) -> EvaluateOutput:
    """Run the oracle on candidates without a result yet; each result is stored as soon as it exists.

    Candidates are relaxed in lockstep batches of ``oracle.batch_size`` (one batched potential call
    per step); energies are corrected onto the MP scale where the potential allows it (see
    :mod:`oracle.compat`) before the formation energy is taken.

    Args:
        progress: optional callable ``progress(done, total, formula)`` called as each result is stored.
    """
    from oracle import get_potential, relax_many

    start = time.perf_counter()
    key = config.oracle_key()
    done = store.evaluated_ids(key, candidate_ids)
    todo = [c for c in store.get_candidates(candidate_ids) if c.id not in done]
    relax_cfg = config.oracle.relax_config(seeds=seeds)
    stored = 0
    if todo and config.mode == "replay":
        stored = _replay(store, config, round_index, todo, model_version, seeds, progress)
    elif todo:
        potential = get_potential(config.oracle.potential)
        # a missing reference is a set-up problem, not a property of the material: fail the round
        # before any result is written, so nothing is stored as a permanent failure
        references, _ = elemental_energies(config, {el for c in todo for el in c.elements})
        provenance = _provenance(
            config,
            round_index,
            model_version=model_version,
            acquisition=None if seeds else config.acquisition.model_dump(),
            oracle=potential.name,
            oracle_version=potential.version,
        )

        def store_result(i: int, result: RelaxationResult) -> None:
            nonlocal stored
            cand = todo[i]
            fields = _label(result, cand, config, references, potential.energy_scale)
            store.put_evaluation(_evaluation_doc(cand, config, provenance, **fields))
            stored += 1
            if progress is not None:
                progress(stored - 1, len(todo), cand.formula)

        with torch_threads(config.oracle.num_threads):
            relax_many(
                [Structure.from_dict(c.structure) for c in todo],
                relax_cfg,
                batch_size=config.oracle.batch_size,
                on_result=store_result,
            )
    results = store.get_evaluations(candidate_ids, key)
    return EvaluateOutput(
        status={cid: results[cid].status for cid in candidate_ids if cid in results},
        formation_energy={cid: results[cid].formation_energy_per_atom for cid in candidate_ids if cid in results},
        n_computed=stored,
        elapsed_s=time.perf_counter() - start,
    )


def _evaluation_doc(cand: CandidateDoc, config: LoopConfig, provenance: Provenance, **fields: Any) -> EvaluationDoc:
    """The evaluation of ``cand`` by this campaign's oracle (id ``<candidate id>:<oracle key>``)."""
    key = config.oracle_key()
    return EvaluationDoc(
        _id=f"{cand.id}:{key}",
        candidate_id=cand.id,
        campaign=config.campaign,
        oracle_key=key,
        elements=cand.elements,
        provenance=provenance,
        **fields,
    )


def _replay(
    store: CandidateStore,
    config: LoopConfig,
    round_index: int,
    todo: list[CandidateDoc],
    model_version: str | None,
    seeds: bool,
    progress: Any,
) -> int:
    """The replay oracle: reveal each candidate's known labels (its structure counts as relaxed)."""
    provenance = _provenance(
        config,
        round_index,
        model_version=model_version,
        acquisition=None if seeds else config.acquisition.model_dump(),
        oracle="replay",
        oracle_version=config.replay.pool,
    )
    for k, cand in enumerate(todo):
        labels = {t: float(v) for t, v in cand.labels.items() if isinstance(v, int | float) and math.isfinite(v)}
        missing = [t for t in config.targets if t not in labels]
        store.put_evaluation(
            _evaluation_doc(
                cand,
                config,
                provenance,
                formula=cand.formula,
                status="failed" if len(missing) == len(config.targets) else "converged",
                reason=f"no label for {', '.join(missing)} in the pool" if missing else "",
                labels=labels,
                relaxed_structure=cand.structure,
                potential="replay",
                potential_version=config.replay.pool,
                fmax=0.0,
                max_steps=0,
                elapsed_s=0.0,
            )
        )
        if progress is not None:
            progress(k, len(todo), cand.formula)
    return len(todo)


def _label(
    result: RelaxationResult,
    cand: CandidateDoc,
    config: LoopConfig,
    references: ElementalReferences,
    energy_scale: str,
) -> dict[str, Any]:
    """EvaluationDoc fields of one relaxation: corrected energy, formation energy, or a failure reason."""
    from oracle.compat import correct_energy

    fields = result.model_dump(exclude={"formula"})
    fields["formula"] = cand.formula
    if result.status == "failed":
        return fields
    problem = ""
    try:
        relaxed = Structure.from_dict(result.relaxed_structure or cand.structure)
        corrected = correct_energy(
            relaxed, float(result.energy_total), energy_scale=energy_scale, correction=config.oracle.energy_correction
        )
        formation = references.formation_energy_per_atom(relaxed.composition, corrected.energy_per_atom * len(relaxed))
        fields.update(
            corrected_energy_per_atom=corrected.energy_per_atom,
            energy_correction_per_atom=corrected.correction_per_atom,
            correction_scheme=corrected.scheme,
            formation_energy_per_atom=formation,
        )
        if not math.isfinite(formation):
            problem = "no finite formation energy"
    except Exception as exc:
        problem = f"no formation energy: {type(exc).__name__}: {exc}"
    if problem:
        fields.update(status="failed", reason="; ".join(r for r in (result.reason, problem) if r))
    return fields


def label_value(evaluation: EvaluationDoc | Mapping[str, Any], prop: str) -> float:
    """The value of target ``prop`` in an evaluation (a document or a projected row): a replayed label or a
    field such as ``formation_energy_per_atom``; NaN when it has none."""
    if isinstance(evaluation, Mapping):
        labels, other = evaluation.get("labels") or {}, evaluation.get(prop)
    else:
        labels, other = evaluation.labels, getattr(evaluation, prop, None)
    value = labels.get(prop, other)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def observed_targets(store: CandidateStore, config: LoopConfig) -> np.ndarray:
    """``n_obs x m`` target values of the campaign's evaluations (NaN: missing), without reading structures."""
    fields = ["labels", *[t for t in config.targets if t in EvaluationDoc.model_fields]]
    rows = store.evaluation_rows(config.campaign, config.oracle_key(), fields)
    values = [[label_value(r, t) for t in config.targets] for r in rows]
    return np.asarray(values, dtype=float).reshape(len(rows), len(config.targets))


def training_data(store: CandidateStore, config: LoopConfig) -> tuple[list[EvaluationDoc], np.ndarray]:
    """Evaluations with a structure and at least one finite target, and their targets ``n x m`` (NaN: missing)."""
    evaluations = [e for e in store.evaluated(config.campaign, config.oracle_key()) if e.relaxed_structure]
    values = np.array([[label_value(e, t) for t in config.targets] for e in evaluations], dtype=float)
    values = values.reshape(len(evaluations), len(config.targets))
    keep = np.isfinite(values).any(axis=1)
    return [e for e, k in zip(evaluations, keep, strict=True) if k], values[keep]


# ---------------------------------------------------------------------------------- retrain
@dataclass(frozen=True, kw_only=True)
class RetrainOutput:
    """The model trained at the end of a round (None when there are too few labels)."""

    model_version: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    n_train: int = 0
    elapsed_s: float = 0.0


def _model_folders(root: Path, targets: tuple[str, ...]) -> list[Path]:
    """Where each target's ensemble lives: the model folder itself for one target, else a subfolder each."""
    return [root] if len(targets) == 1 else [root / t for t in targets]


def _previous_ensembles(store: CandidateStore, config: LoopConfig, round_index: int) -> list[Any]:
    """The ensembles of the campaign's newest model before ``round_index`` (empty when none or unreadable)."""
    if not config.surrogate.warm_start:
        return []
    model = store.latest_model(config.campaign, before_round=round_index)
    if model is None:
        return []
    try:
        return load_ensembles(model, config.targets)
    except (ModelNotFoundError, OSError, ValueError):
        return []


def retrain_stage(store: CandidateStore, config: LoopConfig, round_index: int) -> RetrainOutput:
    """Train one ensemble per target on every label so far; register them as ``<campaign>-r<round>``.

    Nothing is trained for the ``random`` strategy, which never reads predictions, nor after the last round
    of a replay campaign with ``replay.final_model`` off.
    """
    from surrogates import GNNEnsemble

    start = time.perf_counter()
    version = f"{config.campaign}-r{round_index}"
    existing = store.get_model(version)
    if existing is not None and all(
        (f / "ensemble.json").is_file() for f in _model_folders(Path(existing.path), config.targets)
    ):
        # a re-run of a finished round keeps the model later rounds were predicted with
        return RetrainOutput(
            model_version=version,
            metrics=existing.metrics,
            n_train=existing.n_train,
            elapsed_s=time.perf_counter() - start,
        )
    if config.acquisition.strategy == "random":  # random acquisition never reads a model: none is trained
        return RetrainOutput(model_version=None, n_train=0, elapsed_s=time.perf_counter() - start)
    if config.mode == "replay" and not config.replay.final_model and round_index >= config.rounds:
        return RetrainOutput(model_version=None, n_train=0, elapsed_s=time.perf_counter() - start)
    labelled, values = training_data(store, config)
    counts = np.isfinite(values).sum(axis=0) if len(labelled) else np.zeros(len(config.targets))
    if len(labelled) < 2 or counts.min() < 2:
        return RetrainOutput(model_version=None, n_train=len(labelled), elapsed_s=time.perf_counter() - start)
    structures = [Structure.from_dict(e.relaxed_structure) for e in labelled]
    root = subdir("models") / config.database / version
    previous = _previous_ensembles(store, config, round_index)  # warm start (surrogate.warm_start)
    per_target: dict[str, dict[str, Any]] = {}
    for j, (target, folder) in enumerate(zip(config.targets, _model_folders(root, config.targets), strict=True)):
        rows = np.flatnonzero(np.isfinite(values[:, j]))
        with torch_threads(config.surrogate.num_threads):
            ensemble = GNNEnsemble.fit(
                [structures[i] for i in rows],
                values[rows, j].tolist(),
                config=config.surrogate,
                property_name=target,
                version=version,
                init_from=previous[j] if previous else None,
            )
        metrics = {k: v for k, v in ensemble.metrics.items() if isinstance(v, int | float | str | bool | list)}
        if not all(math.isfinite(v) for v in metrics.values() if isinstance(v, float)):
            raise ModelNotFoundError(f"training {version} ({target}) diverged (non-finite metrics {metrics})")
        ensemble.save(folder)
        per_target[target] = metrics
    metrics = per_target[config.targets[0]] if len(config.targets) == 1 else per_target
    store.register_model(
        ModelDoc(
            _id=version,
            campaign=config.campaign,
            round=round_index,
            property_name=",".join(config.targets),
            architecture=config.surrogate.architecture,
            n_members=config.surrogate.n_members,
            path=str(root),
            n_train=len(labelled),
            metrics=metrics,
            config=config.surrogate.model_dump(),
            code_version=__version__,
        )
    )
    return RetrainOutput(
        model_version=version, metrics=metrics, n_train=len(labelled), elapsed_s=time.perf_counter() - start
    )


# ------------------------------------------------------------------------------ round state
def begin_round(store: CandidateStore, config: LoopConfig, round_index: int) -> RoundDoc:
    """The round's document: the existing one when resuming, else a new 'running' one."""
    existing = store.get_round(config.campaign, round_index)
    if existing is not None:
        return existing
    doc = RoundDoc(
        _id=f"{config.campaign}:{round_index}",
        campaign=config.campaign,
        round=round_index,
        config=config.model_dump(mode="json"),
        code_version=__version__,
    )
    store.save_round(doc)
    return doc


def replay_metrics(store: CandidateStore, config: LoopConfig, round_index: int = 0) -> dict[str, Any]:
    """Replay mode: targets found among the labelled candidates (cumulative) and in the whole pool.

    The pool's counts are read from all its candidates once, in round 0; later rounds reuse round 0's
    (the pool never changes within a campaign, and reading 3,800 label sets costs seconds per round).
    """
    from battery_discovery.replay import parse_target

    target = parse_target(config.replay.target)
    evaluated = store.evaluation_rows(config.campaign, config.oracle_key(), ["labels"])
    found = sorted(e["candidate_id"] for e in evaluated if target.holds(e.get("labels", {})))
    first = store.get_round(config.campaign, 0) if round_index > 0 else None
    known = first.metrics if first is not None and first.status == "completed" else {}
    if known.get("target") == target.text and {"n_pool", "n_targets_pool"} <= set(known):
        n_pool, n_targets_pool = int(known["n_pool"]), int(known["n_targets_pool"])
    else:
        pool = store.candidate_labels(config.campaign, "dataset")
        n_pool, n_targets_pool = len(pool), sum(target.holds(labels) for labels in pool.values())
    return {
        "target": target.text,
        "n_targets_found": len(found),
        "n_targets_pool": n_targets_pool,
        "n_labelled": len(evaluated),
        "n_pool": n_pool,
        "found": found,
    }


def best_so_far(store: CandidateStore, config: LoopConfig, n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` lowest formation energies among all labels (formula, id, eV/atom); in replay mode the
    targets found so far (formula, id, labels)."""
    if config.mode == "replay":
        from battery_discovery.replay import parse_target

        target = parse_target(config.replay.target)
        rows = store.evaluation_rows(config.campaign, config.oracle_key(), ["formula", "labels"])
        hits = [e for e in rows if target.holds(e.get("labels", {}))]
        return [{"candidate_id": e["candidate_id"], "formula": e["formula"], **e["labels"]} for e in hits[:n]]
    labelled = sorted(store.labelled(config.campaign, config.oracle_key()), key=lambda e: e.formation_energy_per_atom)
    return [
        {
            "candidate_id": e.candidate_id,
            "formula": e.formula,
            "formation_energy_per_atom": e.formation_energy_per_atom,
        }
        for e in labelled[:n]
    ]


def complete_round(
    store: CandidateStore,
    config: LoopConfig,
    round_index: int,
    *,
    n_generated: int,
    evaluation: EvaluateOutput,
    retrain: RetrainOutput,
    timings: dict[str, float],
) -> RoundDoc:
    """Fill in the oracle results, metrics and timings and mark the round completed.

    ``timings['store']`` records how long this final write took (s).
    """
    start = time.perf_counter()
    metrics: dict[str, Any] = {}
    if config.mode == "replay":
        metrics = replay_metrics(store, config, round_index)
    else:
        update_hull(store, config)
    doc = store.get_round(config.campaign, round_index) or begin_round(store, config, round_index)
    entries = [
        e.model_copy(
            update={
                "status": evaluation.status.get(e.candidate_id, e.status),
                "formation_energy_per_atom": evaluation.formation_energy.get(e.candidate_id),
            }
        )
        for e in doc.acquired
    ]
    statuses = list(evaluation.status.values())
    doc = doc.model_copy(
        update={
            "status": "completed",
            "completed_at": utcnow(),
            "acquired": entries,
            "n_generated": max(n_generated, store.count_generated(config.campaign, round_index)),
            "n_evaluated": len(statuses),
            "n_failed": sum(s == "failed" for s in statuses),
            "trained_model": retrain.model_version,
            "model_metrics": retrain.metrics,
            "timings": dict(timings),
            "best": best_so_far(store, config),
            "metrics": metrics,
        }
    )
    store.save_round(doc)
    doc.timings["store"] = time.perf_counter() - start
    return doc


def record_timings(store: CandidateStore, config: LoopConfig, round_index: int, timings: dict[str, float]) -> RoundDoc:
    """Replace the round's timings (s per stage, plus total and orchestration overhead)."""
    doc = store.get_round(config.campaign, round_index)
    if doc is None:
        raise ValueError(f"round {round_index} of {config.campaign!r} does not exist")
    doc = doc.model_copy(update={"timings": dict(timings)})
    store.save_round(doc)
    return doc


def record_batch(store: CandidateStore, config: LoopConfig, round_index: int, ids: list[str]) -> list[BatchEntry]:
    """Record ``ids`` as the round's batch without a model (round 0: the seeds)."""
    doc = begin_round(store, config, round_index)
    if doc.acquired:
        return doc.acquired
    entries = [BatchEntry(candidate_id=c.id, formula=c.formula, n_sites=c.n_sites) for c in store.get_candidates(ids)]
    store.save_round(doc.model_copy(update={"acquired": entries, "n_pool": len(entries)}))
    return entries


def check_seeds(config: LoopConfig) -> int:
    """Load and check the seeds without writing anything; returns how many there are."""
    return len(load_seeds(config.seeds))


def elemental_energies(config: LoopConfig, elements: set[str]) -> tuple[ElementalReferences, dict[str, float]]:
    """The oracle's elemental references, with ``elements`` computed (or read from the cache).

    Returns:
        (the ElementalReferences, element -> energy per atom in eV/atom, sorted by element).
    """
    from oracle import ElementalReferences, get_potential

    source = config.oracle.resolved_reference_source(get_potential(config.oracle.potential).energy_scale)
    references = ElementalReferences(config.oracle.potential, source=source)
    with torch_threads(config.oracle.num_threads):
        energies = {el: references.energy_per_atom(el) for el in sorted(elements)}
    return references, energies


def prepare_references(store: CandidateStore, config: LoopConfig, candidate_ids: list[str]) -> list[str]:
    """Make sure the elemental references of these candidates are computed and cached; returns the elements."""
    _, energies = elemental_energies(config, {el for c in store.get_candidates(candidate_ids) for el in c.elements})
    return list(energies)


def chunk_ids(ids: list[str], *, workers: int, batch_size: int) -> list[list[str]]:
    """Split a batch into shares for parallel workers: at least one per worker, none over ``batch_size``.

    Shares are interleaved (``ids[k::n]``) so sizes mix when the batch is sorted. Empty shares are dropped.
    """
    n = max(workers, math.ceil(len(ids) / batch_size)) if ids else 0
    return [share for k in range(n) if (share := ids[k::n])]


def merge_evaluations(parts: list[EvaluateOutput]) -> EvaluateOutput:
    """One EvaluateOutput from per-candidate ones (elapsed: the sum of the parts' times, s)."""
    return EvaluateOutput(
        status={k: v for p in parts for k, v in p.status.items()},
        formation_energy={k: v for p in parts for k, v in p.formation_energy.items()},
        n_computed=sum(p.n_computed for p in parts),
        elapsed_s=sum(p.elapsed_s for p in parts),
    )


@dataclass(frozen=True, kw_only=True)
class TransportOutput:
    """MD results written this round: evaluation id -> log10 conductivity (S/cm) or None when failed."""

    results: dict[str, float | None]
    elapsed_s: float


def transport_stage(store: CandidateStore, config: LoopConfig, round_index: int) -> TransportOutput:
    """MD diffusion runs for the ``oracle.md.top_k`` lowest-energy-above-hull labels with Li or Na and no
    result yet (a re-run skips those done); each result is stored as soon as it exists."""
    from oracle import get_potential
    from oracle.md import pick_ion, run_md

    start = time.perf_counter()
    md = config.oracle.md
    if not md.enabled or config.mode == "replay":
        return TransportOutput(results={}, elapsed_s=0.0)
    labelled = [e for e in store.labelled(config.campaign, config.oracle_key()) if e.relaxed_structure]
    ranked = sorted(
        labelled,
        key=lambda e: (
            e.energy_above_hull if e.energy_above_hull is not None else math.inf,
            e.formation_energy_per_atom,
        ),
    )
    picked = [e for e in ranked if pick_ion(Structure.from_dict(e.relaxed_structure), md.ion)][: md.top_k]
    potential = get_potential(config.oracle.potential)
    out: dict[str, float | None] = {}
    for evaluation in picked:
        if evaluation.transport is not None:
            continue
        with torch_threads(config.oracle.num_threads):
            result = run_md(Structure.from_dict(evaluation.relaxed_structure), md, potential)
        store.set_transport(evaluation.id, {**result.model_dump(), "round": round_index})
        out[evaluation.id] = result.log10_conductivity
    return TransportOutput(results=out, elapsed_s=time.perf_counter() - start)


def competing_phases(config: LoopConfig, systems: list[list[str]]) -> list[tuple[str, str, float]]:
    """MP phases of these chemical systems as hull context, when the oracle is on the MP scale and
    ``oracle.competing_phases`` allows it (``auto``: with ``$MP_API_KEY``); else none.

    Returns:
        (MP entry id, reduced formula, MP corrected energy in eV/atom) per phase.
    """
    from oracle import get_potential
    from oracle.compat import mp_compatible
    from oracle.competing import CompetingPhases

    if config.oracle.competing_phases == "off":
        return []
    if not mp_compatible(get_potential(config.oracle.potential).energy_scale, config.oracle.energy_correction):
        return []
    source = CompetingPhases.from_env()
    if source is None:
        return []
    return [(f"mp:{p.entry_id}", p.formula, p.energy_per_atom) for p in source.for_systems(systems)]


def update_hull(store: CandidateStore, config: LoopConfig) -> int:
    """Recompute the energy above hull of every label of the campaign; returns how many were written.

    The hull of each chemical system holds the elemental references (same potential) and all the
    campaign's evaluated structures in it; a phase found in a later round can raise the value of an
    earlier one, hence the recomputation.
    """
    from oracle.hull import hull_energies

    labelled = store.labelled(config.campaign, config.oracle_key())
    usable = [e for e in labelled if e.energy_per_atom is not None]
    if not usable:
        return 0
    _, energies = elemental_energies(config, {el for e in usable for el in e.elements})
    entries = [
        (e.id, e.formula, e.corrected_energy_per_atom if e.corrected_energy_per_atom is not None else e.energy_per_atom)
        for e in usable
    ]
    results = hull_energies(entries, energies, competing_phases(config, [e.elements for e in usable]))
    for key, res in results.items():
        store.set_hull(key, res.e_above_hull, res.decomposition)
    return len(results)
