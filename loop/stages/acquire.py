"""Acquire: choose the round's batch from the predictions and record it on the round."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from acquisition import select
from acquisition.config import AcquisitionConfig
from loop.labels import observed_targets
from loop.roles import RoundContext
from loop.stages.predict import PredictOutput
from store.documents import BatchEntry, RoundDoc


@dataclass(frozen=True, kw_only=True)
class AcquireOutput:
    """The chosen batch, one entry per candidate, in selection order."""

    entries: list[BatchEntry]
    strategy: str
    elapsed_s: float


def acquire_stage(
    acquisition: AcquisitionConfig, ctx: RoundContext, prediction: PredictOutput, *, batch_size: int
) -> AcquireOutput:
    """Choose ``batch_size`` candidates and record the batch on the round (idempotent: a batch already
    recorded for this round is returned as it is). Without a model, or with one predicting NaN/inf, the
    batch is random."""
    start = time.perf_counter()
    store = ctx.store
    existing = store.get_round(ctx.campaign, ctx.round_index)
    if existing is not None and existing.acquired:
        return AcquireOutput(entries=existing.acquired, strategy="resumed", elapsed_s=time.perf_counter() - start)
    pool = store.candidate_briefs(prediction.pool_ids)
    if not pool:
        return AcquireOutput(entries=[], strategy=acquisition.strategy, elapsed_s=time.perf_counter() - start)
    names = prediction.outcomes or ctx.targets
    observed = np.asarray(prediction.observed, dtype=float) if prediction.outcomes else observed_targets(ctx)
    m = len(names)
    usable = bool(prediction.members) and bool(np.all(np.isfinite(np.asarray(prediction.members))))
    if usable:
        members = np.asarray(prediction.members, dtype=float).reshape(-1, len(pool), m)
        strategy = acquisition  # select() falls back from logei to ucb without labels (and notes it)
    else:  # no model yet, or one predicting NaN/inf: nothing to exploit
        members = np.zeros((1, len(pool), m))
        strategy = acquisition.model_copy(update={"strategy": "random"})
    selection = select(
        members,
        batch_size,
        strategy,
        outcome_names=names,
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
            means={t: float(mean[i, j]) for j, t in enumerate(names)} if usable else {},
            stds={t: float(std[i, j]) for j, t in enumerate(names)} if usable else {},
            acquisition_value=value,
        )
        for i, value in zip(selection.indices, selection.values, strict=True)
    ]
    store.set_status([e.candidate_id for e in entries], "acquired")
    doc = existing or RoundDoc(_id=f"{ctx.campaign}:{ctx.round_index}", campaign=ctx.campaign, round=ctx.round_index)
    update = {
        "acquired": entries,
        "n_pool": len(pool),
        "prediction_model": prediction.model_version,
        "acquisition_notes": list(selection.notes),
    }
    store.save_round(doc.model_copy(update=update))
    return AcquireOutput(entries=entries, strategy=selection.strategy, elapsed_s=time.perf_counter() - start)
