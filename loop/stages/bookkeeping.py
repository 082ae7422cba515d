"""Round state in the store: begin (or resume) a round, record its batch, complete it, record timings."""

from __future__ import annotations

import time
from typing import Any

from core import __version__
from loop.properties.base import Property
from loop.roles import GenerateOutput, Labeler, RoundContext
from loop.stages.evaluate import EvaluateOutput
from loop.stages.predict import PredictOutput
from loop.stages.retrain import RetrainOutput
from loop.stages.score import score_labels_stage
from store.connection import redact_uri
from store.documents import BatchEntry, RoundDoc, utcnow


def begin_round(ctx: RoundContext, config: dict[str, Any]) -> RoundDoc:
    """The round's document: the existing one when resuming, else a new 'running' one holding ``config``
    (the campaign's config as JSON)."""
    existing = ctx.store.get_round(ctx.campaign, ctx.round_index)
    if existing is not None:
        return existing
    if isinstance(config.get("store_uri"), str):  # never a password in the store
        config = {**config, "store_uri": redact_uri(config["store_uri"])}
    doc = RoundDoc(
        _id=f"{ctx.campaign}:{ctx.round_index}",
        campaign=ctx.campaign,
        round=ctx.round_index,
        config=config,
        code_version=__version__,
    )
    ctx.store.save_round(doc)
    return doc


def resumed_generation(ctx: RoundContext) -> GenerateOutput | None:
    """When the round's batch is already recorded (a resumed round), what the round generated before; else None.

    Generating again would add candidates to a round whose pool was already chosen (they would count for this round
    but could never be in its batch), so a resumed round skips generation.
    """
    doc = ctx.store.get_round(ctx.campaign, ctx.round_index)
    if doc is None or not doc.acquired:
        return None
    ids = ctx.store.generated_ids(ctx.campaign, ctx.round_index)
    return GenerateOutput(n_candidates=len(ids), new_ids=ids, n_parents=0, elapsed_s=0.0)


def resumed_prediction(ctx: RoundContext) -> PredictOutput | None:
    """When the round's batch is already recorded (a resumed round), the model that predicted it, without predicting
    again; else None.

    The batch is kept as it was (acquisition resumes it), so new predictions would only overwrite the candidates'
    latest ones, with an older model when later rounds have run.
    """
    doc = ctx.store.get_round(ctx.campaign, ctx.round_index)
    if doc is None or not doc.acquired:
        return None
    return PredictOutput(
        pool_ids=[e.candidate_id for e in doc.acquired], members=[], model_version=doc.prediction_model, elapsed_s=0.0
    )


def redid_nothing(doc: RoundDoc | None, evaluation: EvaluateOutput, retrain: RetrainOutput) -> bool:
    """Whether this run of a round already completed (``doc``: its document when the run began) labelled nothing and
    kept the round's model: its document then stays as it was (results, best, metrics, timings, completion time)."""
    return (
        doc is not None
        and doc.status == "completed"
        and evaluation.n_computed == 0
        and not retrain.trained
        and retrain.model_version == doc.trained_model
    )


def record_batch(ctx: RoundContext, ids: list[str], config: dict[str, Any]) -> list[BatchEntry]:
    """Record ``ids`` as the round's batch without a model (round 0); a batch already recorded is kept."""
    doc = begin_round(ctx, config)
    if doc.acquired:
        return doc.acquired
    entries = [
        BatchEntry(candidate_id=c.id, formula=c.formula, n_sites=c.n_sites) for c in ctx.store.get_candidates(ids)
    ]
    ctx.store.save_round(doc.model_copy(update={"acquired": entries, "n_pool": len(entries)}))
    return entries


def complete_round(
    labeler: Labeler,
    ctx: RoundContext,
    *,
    n_generated: int,
    evaluation: EvaluateOutput,
    retrain: RetrainOutput,
    timings: dict[str, float],
    config: dict[str, Any],
    properties: tuple[Property, ...] = (),
) -> RoundDoc:
    """Run the labeler's end-of-round analysis, score the new labels on the model properties, fill in results,
    metrics and timings, mark the round completed.

    ``timings['store']`` of the returned document records how long this took (s). A round completed before whose
    re-run labelled nothing and kept its model (:func:`redid_nothing`) is returned as stored, nothing written.
    """
    start = time.perf_counter()
    store = ctx.store
    stored = store.get_round(ctx.campaign, ctx.round_index)
    if stored is not None and redid_nothing(stored, evaluation, retrain):
        return stored
    metrics = labeler.finish_round(ctx)
    score_labels_stage(properties, ctx)
    doc = store.get_round(ctx.campaign, ctx.round_index) or begin_round(ctx, config)
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
            "n_generated": max(n_generated, store.count_generated(ctx.campaign, ctx.round_index)),
            "n_evaluated": len(statuses),
            "n_failed": sum(s == "failed" for s in statuses),
            "trained_model": retrain.model_version,
            "model_metrics": retrain.metrics,
            "timings": dict(timings),
            "best": labeler.best(ctx),
            "metrics": metrics,
        }
    )
    store.save_round(doc)
    doc.timings["store"] = time.perf_counter() - start
    return doc


def record_timings(
    ctx: RoundContext, timings: dict[str, float], *, flow_run_id: str | None = None, flow_run_url: str | None = None
) -> RoundDoc:
    """Replace the round's timings (s per stage, plus total and orchestration overhead) and record the orchestrator's
    run that completed it (its id and UI address, when known)."""
    doc = ctx.store.get_round(ctx.campaign, ctx.round_index)
    if doc is None:
        raise ValueError(f"round {ctx.round_index} of {ctx.campaign!r} does not exist")
    update: dict[str, Any] = {"timings": dict(timings)}
    if flow_run_id:
        update.update(flow_run_id=flow_run_id, flow_run_url=flow_run_url or None)
    doc = doc.model_copy(update=update)
    ctx.store.save_round(doc)
    return doc
