"""The ``discovery-loop`` flow: round 0 labels the source's initial candidates, then generate → predict →
acquire → label → (MD, electrode) → retrain → store, once per round. Each round is a subflow run named
``round-<n>`` with a table and a markdown artifact. State lives in the store: completed rounds are skipped on re-run.

The flow only orders tasks. Its parameters are the fields of :class:`loop.config.LoopConfig`, declared
there once: the flow's signature is built from that model.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from loop.config import LoopConfig
from loop.plan import build_config, cached_plan
from loop.reports import batch_table, campaign_markdown, round_markdown
from loop.stages.bookkeeping import redid_nothing
from loop.stages.evaluate import chunk_ids, merge_evaluations
from store.leases import CampaignLease
from tasks import (
    acquire_task,
    begin_round_task,
    check_store_task,
    complete_round_task,
    electrode_task,
    evaluate_share_task,
    evaluate_task,
    generate_task,
    predict_task,
    prepare_properties_task,
    prepare_task,
    record_timings_task,
    retrain_task,
    seed_task,
    transport_task,
)


@flow(name="discovery-round", flow_run_name="round-{round_index}", log_prints=True)
def discovery_round(config: LoopConfig, round_index: int) -> dict[str, Any]:
    """One round; returns its summary. Re-running a round resumes it without duplicates."""
    start = time.perf_counter()
    plan = cached_plan(config)
    begun = begin_round_task(config, round_index)
    timings: dict[str, float] = {}
    if round_index == 0:
        entries = seed_task(config)
        ids, model_version, n_generated, seeds = [e.candidate_id for e in entries], None, len(entries), True
    else:
        gen = generate_task(config, round_index)
        timings["generate"] = gen.elapsed_s
        pred = predict_task(config, round_index)
        timings["predict"] = pred.elapsed_s
        acq = acquire_task(config, round_index, pred)
        timings["acquire"] = acq.elapsed_s
        ids, model_version, n_generated, seeds = (
            [e.candidate_id for e in acq.entries],
            pred.model_version,
            len(gen.new_ids),
            False,
        )
    if config.runner.kind == "dask":
        t_oracle = time.perf_counter()
        prepare_task(config, round_index, ids)  # once, before the workers need it
        chunks = chunk_ids(ids, workers=config.runner.dask_workers, batch_size=config.oracle.batch_size)
        names = [f"{k + 1}of{len(chunks)}" for k in range(len(chunks))]
        futures = evaluate_share_task.map(
            unmapped(config), round_index, names, chunks, unmapped(model_version), unmapped(seeds)
        )
        evaluation = merge_evaluations([f.result() for f in futures])
        timings["oracle"] = time.perf_counter() - t_oracle
    else:
        evaluation = evaluate_task(config, round_index, ids, model_version, seeds)
        timings["oracle"] = evaluation.elapsed_s
    if plan.md is not None:
        timings["md"] = transport_task(config, round_index).elapsed_s
    if plan.electrode is not None:
        timings["electrode"] = electrode_task(config, round_index).elapsed_s
    retrain = retrain_task(config, round_index)
    timings["retrain"] = retrain.elapsed_s
    doc = complete_round_task(config, round_index, n_generated, evaluation, retrain, timings)
    timings["store"] = doc.timings.get("store", 0.0)
    timings["total"] = time.perf_counter() - start
    timings["overhead"] = timings["total"] - sum(v for k, v in timings.items() if k not in ("total", "overhead"))
    if not redid_nothing(begun, evaluation, retrain):  # a completed round re-run for nothing keeps its record
        doc = record_timings_task(config, round_index, timings)
    create_table_artifact(
        key=f"{config.campaign}-round-{round_index}-batch",
        table=batch_table(doc, plan),
        description=f"Round {round_index} batch: predictions, acquisition values and labels",
    )
    create_markdown_artifact(
        key=f"{config.campaign}-round-{round_index}-summary",
        markdown=round_markdown(doc, plan),
        description=f"Round {round_index} summary",
    )
    return {
        "round": round_index,
        "acquired": [e.model_dump() for e in doc.acquired],
        "n_evaluated": doc.n_evaluated,
        "n_failed": doc.n_failed,
        "trained_model": doc.trained_model,
        "timings": timings,
        "best": doc.best,
    }


def _discovery_loop(**parameters: Any) -> dict[str, Any]:
    """Run rounds 0..``rounds`` of a campaign; completed rounds in the store are skipped.

    The parameters are the fields of :class:`loop.config.LoopConfig` (``battery-discovery config`` lists
    them with their defaults).
    """
    return run_rounds(build_config(parameters))


def _signature_from_config() -> inspect.Signature:
    """The flow's signature: one keyword parameter per LoopConfig field, with its type and default."""
    params = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=field.get_default(call_default_factory=True),
            annotation=field.annotation,
        )
        for name, field in LoopConfig.model_fields.items()
    ]
    return inspect.Signature(params, return_annotation=dict[str, Any])


_discovery_loop.__signature__ = _signature_from_config()  # type: ignore[attr-defined]
_discovery_loop.__annotations__ = {
    **{p.name: p.annotation for p in _discovery_loop.__signature__.parameters.values()},  # type: ignore[attr-defined]
    "return": dict[str, Any],
}
discovery_loop = flow(name="discovery-loop", flow_run_name="{campaign}", log_prints=True)(_discovery_loop)


def task_runner(config: LoopConfig) -> Any:
    """The round's task runner: Prefect's default threads, or Dask (local cluster or an address)."""
    if config.runner.kind != "dask":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if config.runner.dask_address:
        return DaskTaskRunner(address=config.runner.dask_address)
    # the cluster's diagnostics dashboard listens on this machine only (Dask's default is every interface)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": config.runner.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": "127.0.0.1:8787",
        }
    )


def _rounds(config: LoopConfig, plan: Any, store: Any, logger: Any) -> list[dict[str, Any]]:
    """Prepare the properties, then run every round not completed yet; returns their summaries."""
    if plan.properties:
        prepare_properties_task(config)
    summaries = []
    for n in range(config.rounds + 1):
        existing = store.get_round(config.campaign, n)
        if existing is not None and existing.status == "completed":
            logger.info("round %d of campaign %r already completed: skipped", n, config.campaign)
            continue
        logger.info("round %d/%d of campaign %r", n, config.rounds, config.campaign)
        round_flow = discovery_round.with_options(flow_run_name=f"round-{n}", task_runner=task_runner(config))
        summaries.append(round_flow(config=config, round_index=n))
    return summaries


def run_rounds(config: LoopConfig) -> dict[str, Any]:
    """The loop body (inside a flow run): resume from the store, run the missing rounds."""
    from tasks.stages import open_store

    logger = get_run_logger()
    plan = cached_plan(config)
    check_store_task(config)
    store = open_store(config)
    with CampaignLease(store, config.campaign):  # a second run of the campaign stops here, naming this one
        summaries = _rounds(config, plan, store, logger)
    rounds = store.list_rounds(config.campaign)
    best = rounds[-1].best if rounds else []
    if rounds:
        create_markdown_artifact(
            key=f"{config.campaign}-campaign-summary",
            markdown=campaign_markdown(rounds, plan),
            description="Best candidates after the last round",
        )
    return {
        "campaign": config.campaign,
        "rounds_run": [s["round"] for s in summaries],
        "summaries": summaries,
        "best": best,
    }
