"""One Prefect task per stage of a round."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from battery_discovery import pipeline
from battery_discovery.config import LoopConfig
from store import open_store as store_open
from store.documents import BatchEntry, RoundDoc
from store.repository import CandidateStore


def open_store(config: LoopConfig) -> CandidateStore:
    """The store named by the config (see :func:`store.open_store`)."""
    return store_open(config.store_uri, config.database)


_OPTS = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="check-store", **_OPTS)
def check_store_task(config: LoopConfig) -> dict[str, int]:
    """Connect (starting the embedded server if needed) and count documents."""
    return open_store(config).counts()


@task(name="begin-round", **_OPTS)
def begin_round_task(config: LoopConfig, round_index: int) -> RoundDoc:
    """Create or resume the round document."""
    return pipeline.begin_round(open_store(config), config, round_index)


@task(name="seed", **_OPTS)
def seed_task(config: LoopConfig) -> list[BatchEntry]:
    """Round 0: store the seeds and record them as the round's batch."""
    store = open_store(config)
    ids = pipeline.seed_stage(store, config)
    entries = pipeline.record_batch(store, config, 0, ids)
    get_run_logger().info("round 0: %d seed structures", len(entries))
    return entries


@task(name="generate", **_OPTS)
def generate_task(config: LoopConfig, round_index: int) -> pipeline.GenerateOutput:
    """Generate candidates by substitution and ion exchange."""
    out = pipeline.generate_stage(open_store(config), config, round_index)
    get_run_logger().info(
        "round %d · generate: %d candidates from %d parents, %d new",
        round_index,
        out.n_candidates,
        out.n_parents,
        len(out.new_ids),
    )
    return out


@task(name="predict", **_OPTS)
def predict_task(config: LoopConfig, round_index: int) -> pipeline.PredictOutput:
    """Ensemble predictions for the pool."""
    out = pipeline.predict_stage(open_store(config), config, round_index)
    get_run_logger().info(
        "round %d · predict: %d candidates with model %s", round_index, len(out.pool_ids), out.model_version
    )
    return out


@task(name="acquire", **_OPTS)
def acquire_task(config: LoopConfig, round_index: int, prediction: pipeline.PredictOutput) -> pipeline.AcquireOutput:
    """Choose the batch."""
    out = pipeline.acquire_stage(open_store(config), config, round_index, prediction)
    get_run_logger().info(
        "round %d · acquire (%s): %s", round_index, out.strategy, ", ".join(e.formula for e in out.entries)
    )
    return out


@task(name="oracle", **_OPTS)
def evaluate_task(
    config: LoopConfig,
    round_index: int,
    candidate_ids: list[str],
    model_version: str | None,
    seeds: bool,
) -> pipeline.EvaluateOutput:
    """Relax the batch with the pretrained potential; each result is stored as it finishes."""
    logger = get_run_logger()

    def progress(done: int, total: int, formula: str) -> None:
        logger.info("round %d · oracle %d/%d: %s", round_index, done + 1, total, formula)

    out = pipeline.evaluate_stage(
        open_store(config),
        config,
        round_index,
        candidate_ids,
        model_version=model_version,
        seeds=seeds,
        progress=progress,
    )
    failed = [cid for cid, s in out.status.items() if s == "failed"]
    logger.info("round %d · oracle: %d computed, %d failed", round_index, out.n_computed, len(failed))
    return out


@task(name="md", **_OPTS)
def transport_task(config: LoopConfig, round_index: int) -> pipeline.TransportOutput:
    """Molecular dynamics (Li/Na diffusivity) for the top candidates, when ``oracle.md.enabled``."""
    out = pipeline.transport_stage(open_store(config), config, round_index)
    logger = get_run_logger()
    for key, value in out.results.items():
        shown = f"log10 sigma = {value:.2f} S/cm" if value is not None else "failed"
        logger.info("round %d · md %s: %s", round_index, key.split(":")[0], shown)
    return out


@task(name="retrain", **_OPTS)
def retrain_task(config: LoopConfig, round_index: int) -> pipeline.RetrainOutput:
    """Retrain the ensemble on all labels."""
    out = pipeline.retrain_stage(open_store(config), config, round_index)
    get_run_logger().info(
        "round %d · retrain: %s on %d labels %s", round_index, out.model_version, out.n_train, out.metrics
    )
    return out


@task(name="complete-round", **_OPTS)
def complete_round_task(
    config: LoopConfig,
    round_index: int,
    n_generated: int,
    evaluation: pipeline.EvaluateOutput,
    retrain: pipeline.RetrainOutput,
    timings: dict[str, float],
) -> RoundDoc:
    """Write the round's results and mark it completed."""
    return pipeline.complete_round(
        open_store(config),
        config,
        round_index,
        n_generated=n_generated,
        evaluation=evaluation,
        retrain=retrain,
        timings=timings,
    )


@task(name="record-timings", **_OPTS)
def record_timings_task(config: LoopConfig, round_index: int, timings: dict[str, float]) -> RoundDoc:
    """Store the round's wall times per stage (s)."""
    return pipeline.record_timings(open_store(config), config, round_index, timings)


@task(name="prepare-references", **_OPTS)
def prepare_references_task(config: LoopConfig, candidate_ids: list[str]) -> list[str]:
    """Compute (or read from the cache) the elemental references the batch needs."""
    return pipeline.prepare_references(open_store(config), config, candidate_ids)


@task(name="relax", task_run_name="relax-{chunk}", **_OPTS)
def relax_chunk_task(
    config: LoopConfig, round_index: int, chunk: str, candidate_ids: list[str], model_version: str | None, seeds: bool
) -> pipeline.EvaluateOutput:
    """Relax a share of the batch (in lockstep batches) and store each result (the unit of work a Dask worker takes).

    ``chunk`` only names the task run (``relax-<k>of<n>``).
    """
    return pipeline.evaluate_stage(
        open_store(config), config, round_index, candidate_ids, model_version=model_version, seeds=seeds
    )
