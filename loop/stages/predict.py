"""Predict: member predictions of the campaign's newest model on every unlabelled candidate."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Structure

from core.errors import ModelNotFoundError
from core.threads import torch_threads
from loop.labels import label_value
from loop.properties.base import Property, PropertyInputs, combine_samples
from loop.roles import RoundContext


@dataclass(frozen=True, kw_only=True)
class PredictOutput:
    """Posterior samples on the pool: ``members`` is ``S x n x M`` (target units), or empty without a model.

    Without properties ``M`` is the number of learned targets and ``S`` the ensemble's ``K`` members; with
    properties, ``outcomes`` names the ``M`` columns (targets, then properties) and ``observed`` holds their
    ``n_obs x M`` values on the labelled structures (see :func:`loop.properties.base.combine_samples`).
    """

    pool_ids: list[str]
    members: list[list[list[float]]]
    model_version: str | None
    elapsed_s: float
    outcomes: tuple[str, ...] = ()
    observed: list[list[float]] = field(default_factory=list)
    #: Why the newest model could not be used (missing or corrupt files, named), so the batch is picked at random.
    model_problem: str | None = None


#: Fixed pools' graphs, built once per process: (store, database, campaign, cutoff) -> (id -> row, graphs).
_POOL_GRAPHS: dict[tuple[str, str, str, float], tuple[dict[str, int], Any]] = {}


def _pool_graphs(ctx: RoundContext, ids: list[str], ensemble: Any) -> Any:
    """The graphs of ``ids`` cut from the whole fixed pool's graphs (built on first use and kept)."""
    from surrogates.graphs import build_graphs

    key = (ctx.store_uri, ctx.database, ctx.campaign, float(ensemble.config.cutoff))
    hit = _POOL_GRAPHS.get(key)
    if hit is None or any(i not in hit[0] for i in ids):
        everything = ctx.store.candidate_ids(ctx.campaign, "dataset")
        structures = [Structure.from_dict(c.structure) for c in ctx.store.get_candidates(everything)]
        while len(_POOL_GRAPHS) >= 4:  # a benchmark walks through campaigns: keep a few
            _POOL_GRAPHS.pop(next(iter(_POOL_GRAPHS)))
        hit = _POOL_GRAPHS[key] = (
            {cid: k for k, cid in enumerate(everything)},
            build_graphs(structures, ensemble.config.cutoff, ensemble.element_types),
        )
    index, graphs = hit
    return graphs.subset([index[i] for i in ids])


#: Fixed pools' descriptor features, computed once per process: (store, database, campaign) -> (id -> row, rows).
_POOL_FEATURES: dict[tuple[str, str, str], tuple[dict[str, int], np.ndarray]] = {}


def _pool_features(ctx: RoundContext, ids: list[str]) -> np.ndarray:
    """``surrogate_features`` rows of ``ids`` cut from the whole fixed pool's (computed on first use and kept)."""
    from surrogates.descriptor_surrogate import surrogate_features

    key = (ctx.store_uri, ctx.database, ctx.campaign)
    hit = _POOL_FEATURES.get(key)
    if hit is None or any(i not in hit[0] for i in ids):
        everything = ctx.store.candidate_ids(ctx.campaign, "dataset")
        structures = [Structure.from_dict(c.structure) for c in ctx.store.get_candidates(everything)]
        while len(_POOL_FEATURES) >= 4:
            _POOL_FEATURES.pop(next(iter(_POOL_FEATURES)))
        hit = _POOL_FEATURES[key] = ({cid: k for k, cid in enumerate(everything)}, surrogate_features(structures))
    index, rows = hit
    return rows[[index[i] for i in ids]]


def candidate_features(ctx: RoundContext, ids: list[str]) -> np.ndarray:
    """``surrogate_features`` rows (describe + CHGNet) of candidates ``ids``, in order: a fixed pool's from its
    per-process cache, any other candidate's from its structure (cached per structure)."""
    from surrogates.descriptor_surrogate import surrogate_features

    hit = _POOL_FEATURES.get((ctx.store_uri, ctx.database, ctx.campaign))
    if hit is None or any(i not in hit[0] for i in ids):
        dataset = set(ctx.store.candidate_ids(ctx.campaign, "dataset"))
        if ids and all(i in dataset for i in ids):  # a fixed pool: computed once for all of it
            return _pool_features(ctx, ids)
        docs = ctx.store.get_candidates(ids)
        if len(docs) != len(ids):
            raise ValueError(f"{len(ids) - len(docs)} of {len(ids)} candidates are missing from the store")
        return surrogate_features([Structure.from_dict(c.structure) for c in docs])
    index, rows = hit
    return rows[[index[i] for i in ids]]


def labelled_features(ctx: RoundContext) -> np.ndarray:
    """``surrogate_features`` rows of the campaign's labelled structures in the order of ``observed_targets`` (and
    ``PredictOutput.observed``): each evaluation's relaxed structure, else its candidate's structure."""
    from surrogates.descriptor_surrogate import surrogate_features

    evaluations = ctx.store.evaluated(ctx.campaign, ctx.labeler_key)
    missing = [e.candidate_id for e in evaluations if not e.relaxed_structure]
    unrelaxed = {c.id: c.structure for c in ctx.store.get_candidates(missing)} if missing else {}
    structures = [Structure.from_dict(e.relaxed_structure or unrelaxed[e.candidate_id]) for e in evaluations]
    return surrogate_features(structures)


def predict_stage(ctx: RoundContext, *, fixed_pool: bool, properties: tuple[Property, ...] = ()) -> PredictOutput:
    """Predict the targets of every unlabelled candidate with the newest model of the campaign, and score them
    on the campaign's properties; the means and standard deviations are recorded on the candidates.

    Args:
        fixed_pool: the candidate set never changes (a pool source): its graphs are built once and cached,
            and structures are not re-read every round.
        properties: the campaign's property providers (their outcomes follow the targets).
    """
    from surrogates.registry import load_ensembles

    start = time.perf_counter()
    if fixed_pool:
        pool_ids, pool = ctx.store.pending_ids(ctx.campaign), []
    else:
        pool = ctx.store.pending_candidates(ctx.campaign)
        pool_ids = [c.id for c in pool]
    model = ctx.store.latest_model(ctx.campaign, before_round=ctx.round_index)
    problem = None
    try:
        ensembles = load_ensembles(model, ctx.targets) if model is not None and pool_ids else []
    except ModelNotFoundError as exc:  # a missing or corrupt model file: say which, pick at random this round
        ensembles, problem = [], f"model {model.id} cannot be used: {exc}"  # type: ignore[union-attr]
    if not ensembles:  # no model yet: acquisition picks at random, but over the campaign's outcomes
        return PredictOutput(
            pool_ids=pool_ids,
            members=[],
            model_version=None,
            elapsed_s=time.perf_counter() - start,
            outcomes=(*ctx.targets, *(p.name for p in properties)) if properties else (),
            model_problem=problem,
        )
    structures: list[Structure] = []
    graph_models = all(hasattr(e, "predict_graphs") for e in ensembles)  # GNN ensembles (else descriptor models)
    with torch_threads(ctx.num_threads):
        if fixed_pool and graph_models:
            graphs = _pool_graphs(ctx, pool_ids, ensembles[0])
            members = np.stack([e.predict_graphs(graphs) for e in ensembles], axis=-1)  # K x n x m
        elif fixed_pool:  # descriptor models on a fixed pool: its features are computed once
            x = _pool_features(ctx, pool_ids)
            members = np.stack([e.predict_features(x) for e in ensembles], axis=-1)  # S x n x m
        else:
            structures = [Structure.from_dict(c.structure) for c in pool]
            members = np.stack([e.predict_members(structures) for e in ensembles], axis=-1)
        if not properties:
            return PredictOutput(
                pool_ids=pool_ids,
                members=members.astype(float).tolist(),
                model_version=model.id,  # type: ignore[union-attr]
                elapsed_s=time.perf_counter() - start,
            )
        if not structures:
            structures = [Structure.from_dict(c.structure) for c in ctx.store.get_candidates(pool_ids)]
        samples, observed = _score_properties(ctx, properties, pool_ids, structures, members)
    outcomes = (*ctx.targets, *(p.name for p in properties))
    ctx.store.set_predictions(
        {
            cid: {
                name: {"mean": float(samples[:, i, j].mean()), "std": float(samples[:, i, j].std())}
                for j, name in enumerate(outcomes)
            }
            for i, cid in enumerate(pool_ids)
        },
        model_version=model.id,  # type: ignore[union-attr]
        round_index=ctx.round_index,
    )
    return PredictOutput(
        pool_ids=pool_ids,
        members=samples.astype(float).tolist(),
        model_version=model.id,  # type: ignore[union-attr]
        elapsed_s=time.perf_counter() - start,
        outcomes=outcomes,
        observed=observed.astype(float).tolist(),
    )


def _score_properties(
    ctx: RoundContext,
    properties: tuple[Property, ...],
    ids: list[str],
    structures: list[Structure],
    members: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``S x n x M`` samples of targets and properties on the pool, and ``n_obs x M`` values on the labels."""
    learned = {t: members[:, :, j] for j, t in enumerate(ctx.targets)}
    inputs = PropertyInputs(
        ids=ids, compositions=[s.composition for s in structures], structures=structures, learned=learned
    )
    samples = combine_samples(members, [p.samples(ctx, inputs) for p in properties])
    evaluations = ctx.store.evaluated(ctx.campaign, ctx.labeler_key)  # the order of observed_targets
    columns = [np.array([label_value(e, t) for e in evaluations], dtype=float) for t in ctx.targets]
    columns += [np.asarray(p.observed(ctx, evaluations), dtype=float) for p in properties]
    observed = np.stack(columns, axis=-1) if evaluations else np.zeros((0, len(columns)))
    return samples, observed
