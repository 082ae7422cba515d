"""Evaluate: the labeler labels the batch; each result is stored as soon as it exists."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from loop.roles import Labeler, Progress, RoundContext


@dataclass(frozen=True, kw_only=True)
class EvaluateOutput:
    """Labelling outcome per candidate id, and how many were computed now (not resumed)."""

    status: dict[str, str]
    formation_energy: dict[str, float | None]
    n_computed: int
    elapsed_s: float


def evaluate_stage(
    labeler: Labeler,
    ctx: RoundContext,
    candidate_ids: list[str],
    *,
    model_version: str | None = None,
    acquisition: dict[str, Any] | None = None,
    seeds: bool = False,
    progress: Progress | None = None,
) -> EvaluateOutput:
    """Label the candidates without a result under the labeler's key yet (a re-run skips those done).

    Args:
        model_version: the surrogate that predicted the batch (provenance).
        acquisition: the acquisition settings that chose it (provenance; None for round 0).
        seeds: round 0's batch.
        progress: ``progress(done, total, formula)`` as each result is stored.
    """
    start = time.perf_counter()
    store = ctx.store
    done = store.evaluated_ids(ctx.labeler_key, candidate_ids)
    todo = [c for c in store.get_candidates(candidate_ids) if c.id not in done]
    stored = 0
    if todo:
        provenance = ctx.provenance(model_version=model_version, acquisition=acquisition)
        stored = labeler.label(ctx, todo, seeds=seeds, provenance=provenance, progress=progress)
    results = store.get_evaluations(candidate_ids, ctx.labeler_key)
    return EvaluateOutput(
        status={cid: results[cid].status for cid in candidate_ids if cid in results},
        formation_energy={cid: results[cid].formation_energy_per_atom for cid in candidate_ids if cid in results},
        n_computed=stored,
        elapsed_s=time.perf_counter() - start,
    )


def prepare_stage(labeler: Labeler, ctx: RoundContext, candidate_ids: list[str]) -> None:
    """The labeler's shared set-up for the batch (e.g. elemental references), before parallel shares."""
    labeler.prepare(ctx, ctx.store.get_candidates(candidate_ids))


def chunk_ids(ids: list[str], *, workers: int, batch_size: int) -> list[list[str]]:
    """Split a batch into shares for parallel workers: at least one per worker, none over ``batch_size``.

    Shares are interleaved (``ids[k::n]``) so sizes mix when the batch is sorted. Empty shares are dropped.
    """
    n = max(workers, math.ceil(len(ids) / batch_size)) if ids else 0
    return [share for k in range(n) if (share := ids[k::n])]


def merge_evaluations(parts: list[EvaluateOutput]) -> EvaluateOutput:
    """One EvaluateOutput from per-share ones (elapsed: the sum of the parts' times, s)."""
    return EvaluateOutput(
        status={k: v for p in parts for k, v in p.status.items()},
        formation_energy={k: v for p in parts for k, v in p.formation_energy.items()},
        n_computed=sum(p.n_computed for p in parts),
        elapsed_s=sum(p.elapsed_s for p in parts),
    )
