"""The ``discovery-loop`` flow: round 0 labels the seeds, then generate → predict → acquire →
oracle → store → retrain, once per round. Each round is a subflow run named ``round-<n>`` with a
table and a markdown artifact. State lives in the store: completed rounds are skipped on re-run.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from acquisition.config import AcquisitionConfig
from battery_discovery.config import LoopConfig, OracleConfig, RunnerConfig, build_config
from battery_discovery.pipeline import chunk_ids as pipeline_chunks
from battery_discovery.pipeline import merge_evaluations
from battery_discovery.replay import ReplayConfig
from generation.config import GenerateConfig
from store.documents import RoundDoc
from surrogates.config import EnsembleConfig
from tasks import (
    acquire_task,
    begin_round_task,
    check_store_task,
    complete_round_task,
    evaluate_task,
    generate_task,
    predict_task,
    prepare_references_task,
    record_timings_task,
    relax_chunk_task,
    retrain_task,
    seed_task,
    transport_task,
)


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "" if value is None else format(value, spec)


def batch_table(doc: RoundDoc, config: LoopConfig) -> list[dict[str, Any]]:
    """Rows of the round's batch artifact (energies in eV/atom; replay: predicted mean and std per target)."""
    if config.mode == "replay":
        return [
            {
                "formula": e.formula,
                "candidate_id": e.candidate_id,
                **{f"{t}_mean": _fmt(e.means.get(t)) for t in config.targets},
                **{f"{t}_std": _fmt(e.stds.get(t)) for t in config.targets},
                "acquisition_value": _fmt(e.acquisition_value, ".4g"),
                "oracle_status": e.status,
            }
            for e in doc.acquired
        ]
    return [
        {
            "formula": e.formula,
            "candidate_id": e.candidate_id,
            "n_sites": e.n_sites,
            "predicted_mean_eV_per_atom": _fmt(e.mean),
            "predicted_std_eV_per_atom": _fmt(e.std),
            "acquisition_value": _fmt(e.acquisition_value, ".4g"),
            "oracle_status": e.status,
            "formation_energy_eV_per_atom": _fmt(e.formation_energy_per_atom),
        }
        for e in doc.acquired
    ]


def _best_section(doc: RoundDoc, config: LoopConfig) -> str:
    if config.mode == "replay":
        m = doc.metrics
        rows = "\n".join(
            f"| {b['formula']} | {b['candidate_id']} | "
            + ", ".join(f"{t} = {b.get(t, float('nan')):.3g}" for t in config.targets)
            + " |"
            for b in doc.best
        )
        return f"""## Targets found: {m.get("n_targets_found", 0)} of {m.get("n_targets_pool", 0)} in a pool of \
{m.get("n_pool", 0)} ({m.get("n_labelled", 0)} labelled; `{config.replay.target}`)
| formula | id | labels |
| --- | --- | --- |
{rows}
"""
    rows = "\n".join(
        f"| {b['formula']} | {b['candidate_id']} | {b['formation_energy_per_atom']:.3f} |" for b in doc.best
    )
    return f"""## Lowest formation energies so far (eV/atom)
| formula | id | formation energy |
| --- | --- | --- |
{rows}
"""


def round_markdown(doc: RoundDoc, config: LoopConfig) -> str:
    """The round's summary artifact."""
    t = doc.timings
    stages = " | ".join(f"{k} {v:.1f} s" for k, v in t.items() if k not in ("total", "overhead"))
    metrics = ", ".join(
        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
        for k, v in doc.model_metrics.items()
        if not isinstance(v, list)
    )
    notes = "".join(f"\n- {n}" for n in doc.acquisition_notes)
    return f"""# {doc.campaign} · round {doc.round}

| metric | value |
| --- | --- |
| new candidates generated | {doc.n_generated} |
| pool the batch was chosen from | {doc.n_pool} |
| evaluated / failed | {doc.n_evaluated} / {doc.n_failed} |
| model used for predictions | {doc.prediction_model or "none (random batch)"} |
| model trained after the round | {doc.trained_model or "none (too few labels)"} |
| round wall time | {t.get("total", 0.0):.1f} s (orchestration overhead {t.get("overhead", 0.0):.1f} s) |

**Stages:** {stages}

**Model validation:** {metrics or "n/a"}

**Acquisition:** `{config.acquisition.model_dump_json()}`{notes}

**Oracle:** `{config.oracle_key()}`

{_best_section(doc, config)}"""


@flow(name="discovery-round", flow_run_name="round-{round_index}", log_prints=True)
def discovery_round(config: LoopConfig, round_index: int) -> dict[str, Any]:
    """One round; returns its summary. Re-running a round resumes it without duplicates."""
    start = time.perf_counter()
    begin_round_task(config, round_index)
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
        prepare_references_task(config, ids)  # once, before the workers need them
        chunks = pipeline_chunks(ids, workers=config.runner.dask_workers, batch_size=config.oracle.batch_size)
        names = [f"{k + 1}of{len(chunks)}" for k in range(len(chunks))]
        futures = relax_chunk_task.map(
            unmapped(config), round_index, names, chunks, unmapped(model_version), unmapped(seeds)
        )
        evaluation = merge_evaluations([f.result() for f in futures])
        timings["oracle"] = time.perf_counter() - t_oracle
    else:
        evaluation = evaluate_task(config, round_index, ids, model_version, seeds)
        timings["oracle"] = evaluation.elapsed_s
    if config.oracle.md.enabled:
        timings["md"] = transport_task(config, round_index).elapsed_s
    retrain = retrain_task(config, round_index)
    timings["retrain"] = retrain.elapsed_s
    doc = complete_round_task(config, round_index, n_generated, evaluation, retrain, timings)
    timings["store"] = doc.timings.get("store", 0.0)
    timings["total"] = time.perf_counter() - start
    timings["overhead"] = timings["total"] - sum(v for k, v in timings.items() if k not in ("total", "overhead"))
    doc = record_timings_task(config, round_index, timings)
    create_table_artifact(
        key=f"{config.campaign}-round-{round_index}-batch",
        table=batch_table(doc, config),
        description=f"Round {round_index} batch: predictions, acquisition values and oracle results",
    )
    create_markdown_artifact(
        key=f"{config.campaign}-round-{round_index}-summary",
        markdown=round_markdown(doc, config),
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


@flow(name="discovery-loop", flow_run_name="{campaign}", log_prints=True)
def discovery_loop(
    campaign: str = "default",
    rounds: int = 3,
    batch_size: int = 4,
    candidates_per_round: int = 100,
    seeds: tuple[str, ...] = ("pymatgen:default",),
    mode: str = "discovery",
    targets: tuple[str, ...] = ("formation_energy_per_atom",),
    replay: ReplayConfig = ReplayConfig(),  # noqa: B008
    generate: GenerateConfig = GenerateConfig(),  # noqa: B008  (frozen models: safe defaults)
    surrogate: EnsembleConfig = EnsembleConfig(),  # noqa: B008
    acquisition: AcquisitionConfig = AcquisitionConfig(),  # noqa: B008
    oracle: OracleConfig = OracleConfig(),  # noqa: B008
    runner: RunnerConfig = RunnerConfig(),  # noqa: B008
    store_uri: str = "embedded",
    database: str = "battery_discovery",
) -> dict[str, Any]:
    """Run rounds 0..``rounds`` of a campaign; completed rounds in the store are skipped.

    Parameters mirror :class:`battery_discovery.config.LoopConfig` field by field.
    """
    config = build_config(
        {
            "campaign": campaign,
            "rounds": rounds,
            "batch_size": batch_size,
            "candidates_per_round": candidates_per_round,
            "seeds": seeds,
            "mode": mode,
            "targets": targets,
            "replay": replay,
            "generate": generate,
            "surrogate": surrogate,
            "acquisition": acquisition,
            "oracle": oracle,
            "runner": runner,
            "store_uri": store_uri,
            "database": database,
        }
    )
    return run_rounds(config)


def task_runner(config: LoopConfig) -> Any:
    """The round's task runner: Prefect's default threads, or Dask (local cluster or an address)."""
    if config.runner.kind != "dask":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if config.runner.dask_address:
        return DaskTaskRunner(address=config.runner.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": config.runner.dask_workers, "threads_per_worker": 1, "processes": True}
    )


def run_rounds(config: LoopConfig) -> dict[str, Any]:
    """The loop body (inside a flow run): resume from the store, run the missing rounds."""
    from tasks.stages import open_store

    logger = get_run_logger()
    check_store_task(config)
    store = open_store(config)
    summaries = []
    for n in range(config.rounds + 1):
        existing = store.get_round(config.campaign, n)
        if existing is not None and existing.status == "completed":
            logger.info("round %d of campaign %r already completed: skipped", n, config.campaign)
            continue
        logger.info("round %d/%d of campaign %r", n, config.rounds, config.campaign)
        round_flow = discovery_round.with_options(flow_run_name=f"round-{n}", task_runner=task_runner(config))
        summaries.append(round_flow(config=config, round_index=n))
    rounds = store.list_rounds(config.campaign)
    best = rounds[-1].best if rounds else []
    if rounds:
        create_markdown_artifact(
            key=f"{config.campaign}-campaign-summary",
            markdown=f"# Campaign {config.campaign}: {len(rounds)} rounds\n\n{_best_section(rounds[-1], config)}",
            description="Best candidates after the last round",
        )
    return {
        "campaign": config.campaign,
        "rounds_run": [s["round"] for s in summaries],
        "summaries": summaries,
        "best": best,
    }
