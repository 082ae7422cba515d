"""One Prefect task per stage of a round: thin functions of (config, inputs) that open the store, build the
campaign's roles and call the stage. Tasks that only write idempotently get ``retries``."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from loop.config import LoopConfig
from loop.plan import LoopPlan, cached_plan
from loop.roles import GenerateOutput, Progress, RoundContext
from loop.stages.acquire import AcquireOutput, acquire_stage
from loop.stages.bookkeeping import (
    begin_round,
    complete_round,
    record_batch,
    record_timings,
    resumed_generation,
    resumed_prediction,
)
from loop.stages.electrode import ElectrodeOutput, electrode_stage
from loop.stages.evaluate import EvaluateOutput, evaluate_stage, prepare_stage
from loop.stages.predict import PredictOutput, predict_stage
from loop.stages.retrain import RetrainOutput, retrain_stage, wants_model
from loop.stages.transport import TransportOutput, transport_stage
from store import open_store as store_open
from store.documents import BatchEntry, RoundDoc
from store.repository import CandidateStore


def open_store(config: LoopConfig) -> CandidateStore:
    """The store named by the config (see :func:`store.open_store`)."""
    return store_open(config.store_uri, config.database)


def _round(config: LoopConfig, round_index: int) -> tuple[LoopPlan, RoundContext]:
    """The campaign's roles (built once per process) and the round's context on the process's store client."""
    plan = cached_plan(config)
    return plan, plan.context(open_store(config), round_index)


_OPTS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}
#: Idempotent tasks (a re-run writes nothing twice and skips finished work): retried once after a short wait.
_RETRY: dict[str, Any] = {**_OPTS, "retries": 1, "retry_delay_seconds": 2}


@task(name="check-store", **_OPTS)
def check_store_task(config: LoopConfig) -> dict[str, int]:
    """Connect (starting the embedded server if needed) and count documents."""
    return open_store(config).counts()


@task(name="prepare-properties", **_RETRY)
def prepare_properties_task(config: LoopConfig) -> list[dict[str, Any]]:
    """Before the first round: each property provider's set-up (reference phases read, a missing default
    property model trained and registered); returns what each property reads from."""
    plan, ctx = _round(config, 0)
    logger = get_run_logger()
    for prop in plan.properties:
        prop.prepare(ctx, on_stage=lambda msg, name=prop.name: logger.info("property %s: %s", name, msg))
    return [{"name": p.name, "unit": p.unit, **p.describe()} for p in plan.properties]


@task(name="begin-round", **_RETRY)
def begin_round_task(config: LoopConfig, round_index: int) -> RoundDoc:
    """Create or resume the round document."""
    _, ctx = _round(config, round_index)
    return begin_round(ctx, config.model_dump(mode="json"))


@task(name="seed", **_RETRY)
def seed_task(config: LoopConfig) -> list[BatchEntry]:
    """Round 0: write the source's initial candidates and record them as the round's batch."""
    plan, ctx = _round(config, 0)
    entries = record_batch(ctx, plan.source.seed(ctx), config.model_dump(mode="json"))
    get_run_logger().info("round 0: %d initial candidates", len(entries))
    return entries


@task(name="generate", **_RETRY)
def generate_task(config: LoopConfig, round_index: int) -> GenerateOutput:
    """New candidates from the campaign's source (none when resuming a round whose batch is recorded)."""
    plan, ctx = _round(config, round_index)
    resumed = resumed_generation(ctx)
    if resumed is not None:
        get_run_logger().info(
            "round %d · generate: batch already chosen (resumed round): %d candidates kept, none generated",
            round_index,
            len(resumed.new_ids),
        )
        return resumed
    out = plan.source.generate(ctx, plan.labeler)
    get_run_logger().info(
        "round %d · generate: %d candidates from %d parents, %d new",
        round_index,
        out.n_candidates,
        out.n_parents,
        len(out.new_ids),
    )
    return out


@task(name="predict", **_OPTS)
def predict_task(config: LoopConfig, round_index: int) -> PredictOutput:
    """Ensemble predictions for the pool (none when resuming a round whose batch is recorded: its model is named)."""
    plan, ctx = _round(config, round_index)
    resumed = resumed_prediction(ctx)
    if resumed is not None:
        get_run_logger().info(
            "round %d · predict: batch already chosen (resumed round) with model %s: not predicted again",
            round_index,
            resumed.model_version,
        )
        return resumed
    out = predict_stage(ctx, fixed_pool=plan.source.fixed_pool, properties=plan.properties)
    if out.model_problem:
        get_run_logger().warning(
            "round %d · predict: %s; the batch is picked at random", round_index, out.model_problem
        )
    get_run_logger().info(
        "round %d · predict: %d candidates with model %s", round_index, len(out.pool_ids), out.model_version
    )
    return out


@task(name="acquire", **_RETRY)
def acquire_task(config: LoopConfig, round_index: int, prediction: PredictOutput) -> AcquireOutput:
    """Choose the batch."""
    plan, ctx = _round(config, round_index)
    out = acquire_stage(plan.acquisition, ctx, prediction, batch_size=config.batch_size)
    get_run_logger().info(
        "round %d · acquire (%s): %s", round_index, out.strategy, ", ".join(e.formula for e in out.entries)
    )
    return out


def _evaluate(
    config: LoopConfig,
    round_index: int,
    candidate_ids: list[str],
    model_version: str | None,
    seeds: bool,
    progress: Progress | None = None,
) -> EvaluateOutput:
    plan, ctx = _round(config, round_index)
    return evaluate_stage(
        plan.labeler,
        ctx,
        candidate_ids,
        model_version=model_version,
        acquisition=None if seeds else plan.acquisition.model_dump(),
        seeds=seeds,
        progress=progress,
    )


@task(name="evaluate", **_RETRY)
def evaluate_task(
    config: LoopConfig, round_index: int, candidate_ids: list[str], model_version: str | None, seeds: bool
) -> EvaluateOutput:
    """Label the batch; each result is stored as it finishes (a retry skips the stored ones)."""
    logger = get_run_logger()

    def progress(done: int, total: int, formula: str) -> None:
        logger.info("round %d · evaluate %d/%d: %s", round_index, done + 1, total, formula)

    out = _evaluate(config, round_index, candidate_ids, model_version, seeds, progress)
    failed = [cid for cid, s in out.status.items() if s == "failed"]
    logger.info("round %d · evaluate: %d computed, %d failed", round_index, out.n_computed, len(failed))
    return out


@task(name="prepare-labeler", **_RETRY)
def prepare_task(config: LoopConfig, round_index: int, candidate_ids: list[str]) -> None:
    """The labeler's shared set-up (e.g. elemental references), once before the shares run."""
    plan, ctx = _round(config, round_index)
    prepare_stage(plan.labeler, ctx, candidate_ids)


@task(name="evaluate-share", task_run_name="evaluate-{chunk}", **_RETRY)
def evaluate_share_task(
    config: LoopConfig, round_index: int, chunk: str, candidate_ids: list[str], model_version: str | None, seeds: bool
) -> EvaluateOutput:
    """Label a share of the batch and store each result (the unit of work a Dask worker takes).

    ``chunk`` only names the task run (``evaluate-<k>of<n>``).
    """
    return _evaluate(config, round_index, candidate_ids, model_version, seeds)


@task(name="md", **_RETRY)
def transport_task(config: LoopConfig, round_index: int) -> TransportOutput:
    """Molecular dynamics (Li/Na diffusivity) for the top candidates, when ``oracle.md.enabled``."""
    plan, ctx = _round(config, round_index)
    if plan.md is None:
        return TransportOutput(results={}, elapsed_s=0.0)
    out = transport_stage(plan.md, ctx, potential=config.oracle.relax.potential)
    logger = get_run_logger()
    for key, value in out.results.items():
        shown = f"log10 sigma = {value:.2f} S/cm" if value is not None else "failed"
        logger.info("round %d · md %s: %s", round_index, key.split(":")[0], shown)
    return out


@task(name="electrode", **_RETRY)
def electrode_task(config: LoopConfig, round_index: int) -> ElectrodeOutput:
    """Voltage, capacity and energy density of labelled Li/Na candidates (their charged state relaxed)."""
    plan, ctx = _round(config, round_index)
    if plan.electrode is None:
        return ElectrodeOutput(results={}, elapsed_s=0.0)
    out = electrode_stage(plan.electrode, ctx, learn=plan.learn_electrode, last_round=round_index == config.rounds)
    logger = get_run_logger()
    for key, value in out.results.items():
        shown = f"average voltage {value:.2f} V" if value is not None else "not computed (see the evaluation)"
        logger.info("round %d · electrode %s: %s", round_index, key.split(":")[0], shown)
    return out


@task(name="retrain", **_OPTS)
def retrain_task(config: LoopConfig, round_index: int) -> RetrainOutput:
    """Retrain the ensembles on all labels (none for the random strategy, which never reads them, nor after
    the last round without ``final_model``)."""
    _, ctx = _round(config, round_index)
    train = wants_model(
        config.acquisition.strategy, final_model=config.final_model, round_index=round_index, rounds=config.rounds
    )
    out = retrain_stage(config.surrogate, ctx, train=train)
    if out.retrained_because:
        get_run_logger().warning("round %d · retrain: %s; trained again", round_index, out.retrained_because)
    get_run_logger().info(
        "round %d · retrain: %s on %d labels %s", round_index, out.model_version, out.n_train, out.metrics
    )
    return out


@task(name="complete-round", **_RETRY)
def complete_round_task(
    config: LoopConfig,
    round_index: int,
    n_generated: int,
    evaluation: EvaluateOutput,
    retrain: RetrainOutput,
    timings: dict[str, float],
) -> RoundDoc:
    """The labeler's end-of-round analysis; write the round's results and mark it completed."""
    plan, ctx = _round(config, round_index)
    return complete_round(
        plan.labeler,
        ctx,
        n_generated=n_generated,
        evaluation=evaluation,
        retrain=retrain,
        timings=timings,
        config=config.model_dump(mode="json"),
        properties=plan.properties,
    )


@task(name="record-timings", **_RETRY)
def record_timings_task(config: LoopConfig, round_index: int, timings: dict[str, float]) -> RoundDoc:
    """Store the round's wall times per stage (s) and the round's flow run (for the dashboard's link)."""
    from prefect.runtime import flow_run

    _, ctx = _round(config, round_index)
    try:
        run_id, url = flow_run.get_id(), flow_run.get_flow_run_ui_url()
    except Exception:  # no run context (a direct call) or no UI address: nothing to link
        run_id, url = None, None
    return record_timings(ctx, timings, flow_run_id=run_id, flow_run_url=url)
