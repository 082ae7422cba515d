"""The replay benchmark: how many targets each acquisition strategy finds per oracle call.

Every (strategy, seed) pair is a replay-mode campaign of the ordinary discovery loop - the same
Prefect flow, store, retraining and acquisition - on a labelled pool whose oracle reveals known
labels. Each seed draws the same initial set for every strategy. Campaigns live in the store under a
database named after a hash of the settings, so an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from loop.targets import parse_target

#: Surrogate settings of replay campaigns unless ``BenchmarkConfig.surrogate`` overrides them: every label
#: trains (no validation hold-out: with 100-400 labels a 20 % hold-out costs data and its best-epoch choice is
#: noise), 20 epochs per round (warm-started from the previous round's ensemble). Measured on one seed:
#: cutting warm-started retrains to 10 epochs found 7 targets instead of 13, so the speed comes from
#: running campaigns side by side instead. Huber loss: on 3 random sets of 260 labels it lowered the
#: ind_gap MAE (96 % zeros) from 0.14 to 0.10 eV against MSE, with as many targets among the top 100.
#: Since #13 the default surrogates are descriptor ensembles (``descriptor: auto``: hurdle-gb for ``ind_gap``,
#: chgnet-gb for ``heat_all``); ``--surrogate gnn`` restores the MEGNet ensembles.
REPLAY_SURROGATE_DEFAULTS: dict[str, Any] = {"descriptor": "auto"}
#: ... and the GNN ensemble's, applied when ``descriptor`` is None (a descriptor surrogate does not read them, and
#: the loop refuses a setting no part of the campaign reads).
REPLAY_GNN_DEFAULTS: dict[str, Any] = {"epochs": 20, "val_fraction": 0.0, "loss": "huber"}


class BenchmarkConfig(BaseModel):
    """What to replay and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pool: str = Field(
        description="Labelled pool: a perovskite-format CSV path, or any ingest spec (perov5:..., csv:...)."
    )
    target: str = Field(description="Target expression over label columns, e.g. 'ind_gap >= 1.5 and heat_all <= 0.5'.")
    initial: int = Field(100, ge=1, description="Random initial labels per seed.")
    batch: int = Field(32, ge=1, description="Oracle calls per round.")
    rounds: int = Field(10, ge=1, description="Rounds after the initial set.")
    seeds: int = Field(3, ge=1, description="Repetitions with different initial sets (seeds 0..seeds-1).")
    strategies: tuple[str, ...] = Field(("random", "greedy", "ucb", "logei", "target_probability"))
    surrogate: dict[str, Any] = Field(
        default_factory=dict,
        description="EnsembleConfig overrides for every run, on top of REPLAY_SURROGATE_DEFAULTS.",
    )
    acquisition: dict[str, Any] = Field(default_factory=dict, description="AcquisitionConfig overrides (beta, ...).")
    store_uri: str = Field("embedded", description="Store for the replay campaigns.")

    def pool_spec(self) -> str:
        """The ingest spec of the pool (a bare path is read as the perovskite CSV format)."""
        return self.pool if ":" in self.pool.split("/")[0] else f"perov5:{self.pool}"

    def effective_surrogate(self) -> dict[str, Any]:
        """The EnsembleConfig overrides of every campaign: the replay defaults, then ``surrogate``."""
        merged = {**REPLAY_SURROGATE_DEFAULTS, **self.surrogate}
        return {**REPLAY_GNN_DEFAULTS, **merged} if merged.get("descriptor") is None else merged

    def database(self) -> str:
        """A database per benchmark setting (same settings resume, new settings start fresh)."""
        doc = self.model_dump(exclude={"strategies", "seeds", "store_uri"})
        doc["surrogate"] = self.effective_surrogate()
        return "replay_" + hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:10]


def objectives_from_target(target: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The acquisition objective (the first condition, with its threshold) and constraints (the rest)."""
    conditions = parse_target(target).conditions
    objectives, constraints = [], []
    for k, c in enumerate(conditions):
        if k == 0:
            if c.op in (">=", ">"):
                objectives.append({"name": c.name, "direction": "max", "low": c.value})
            else:
                objectives.append({"name": c.name, "direction": "min", "high": c.value})
        else:
            constraints.append({"name": c.name, "op": c.op, "value": c.value})
    return objectives, constraints


def campaign_name(strategy: str, seed: int) -> str:
    """A valid campaign name for one run."""
    return f"replay-{strategy.replace('_', '-')}-s{seed}"


def loop_parameters(bench: BenchmarkConfig, strategy: str, seed: int) -> dict[str, Any]:
    """The discovery-loop flow parameters of one (strategy, seed) campaign (rounds 0..``bench.rounds``)."""
    objectives, constraints = objectives_from_target(bench.target)
    return {
        "campaign": campaign_name(strategy, seed),
        "source": "pool",
        "labeler": "replay",
        "targets": parse_target(bench.target).names,
        "final_model": False,  # the results read the labels found, never the model after the last round
        "rounds": bench.rounds,
        "batch_size": bench.batch,
        "replay": {
            "pool": bench.pool_spec(),
            "target": bench.target,
            "initial": bench.initial,
            "seed": seed,
        },
        "surrogate": {**bench.effective_surrogate(), "seed": seed},
        "acquisition": {
            "strategy": strategy,
            "seed": seed,
            "objectives": objectives,
            "constraints": constraints,
            **bench.acquisition,
        },
        "store_uri": bench.store_uri,
        "database": bench.database(),
    }


RoundCallback = Callable[[str, int, int, dict[str, Any]], None]


def run_campaign(
    bench: BenchmarkConfig,
    strategy: str,
    seed: int,
    on_round: RoundCallback | None = None,
    *,
    poll_s: float = 2.0,
) -> tuple[list[int], float, int, int]:
    """Run (or resume) one replay campaign: one ``discovery-loop`` flow run for all its rounds.

    ``on_round`` is called once per completed round, in round order, from a thread that polls the store
    every ``poll_s`` seconds while the flow runs (rounds completed before a resume are reported too).

    Returns:
        (cumulative targets found after each round, length ``rounds + 1``; flow wall time in s; pool size;
        targets in the pool).
    """
    import contextlib
    import threading

    from flows.discovery_loop import discovery_loop
    from loop.plan import build_config
    from store import open_store

    store = open_store(bench.store_uri, bench.database())
    params = loop_parameters(bench, strategy, seed)
    build_config(params)  # one clear error for a bad strategy/target before Prefect starts
    campaign = params["campaign"]
    reported: dict[int, dict[str, Any]] = {}

    def report() -> None:  # the poller's, then (after it stopped) once more here: never two at once
        done = store.completed_round_metrics(campaign)
        r = len(reported)
        while r in done:  # in order: a round is reported once, after the ones before it
            reported[r] = done[r]
            if on_round is not None:
                on_round(strategy, seed, r, done[r])
            r += 1

    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(poll_s):
            with contextlib.suppress(Exception):  # progress only: the flow reports store errors itself
                report()

    poller = threading.Thread(target=poll, name=f"progress-{campaign}", daemon=True)
    start = time.perf_counter()
    poller.start()
    try:
        discovery_loop(**params)
    finally:
        stop.set()
        poller.join()
    wall = time.perf_counter() - start
    report()
    curve = [int(reported.get(r, {}).get("n_targets_found", 0)) for r in range(bench.rounds + 1)]
    last = reported.get(bench.rounds, {})
    return curve, wall, int(last.get("n_pool", 0)), int(last.get("n_targets_pool", 0))


def _campaign_worker(
    bench_doc: dict[str, Any], strategy: str, seed: int, threads: int, events: Any
) -> tuple[list[int], float, int, int]:
    """One campaign in a worker process; rounds are reported through the ``events`` queue."""
    import torch

    torch.set_num_threads(threads)
    bench = BenchmarkConfig.model_validate(bench_doc)

    def on_round(strategy: str, seed: int, r: int, metrics: dict[str, Any]) -> None:
        events.put((strategy, seed, r, {k: v for k, v in metrics.items() if k in _PROGRESS_KEYS}))

    return run_campaign(bench, strategy, seed, on_round)


_PROGRESS_KEYS = ("n_targets_found", "n_targets_pool", "n_pool", "n_labelled")


def run_benchmark(
    bench: BenchmarkConfig,
    progress: RoundCallback | None = None,
    *,
    workers: int = 1,
) -> dict[str, Any]:
    """Run (or resume) every campaign; returns the results document.

    Args:
        progress: called as ``progress(strategy, seed, round, metrics)`` after every round.
        workers: campaigns run at the same time, each in its own process with one torch thread (1: all in
            this process, one after another). Campaigns are independent (own name in the store, own
            seeded models), so the results do not depend on ``workers``; wall times per strategy do.
    """
    started = time.perf_counter()
    campaigns = [(strategy, seed) for seed in range(bench.seeds) for strategy in bench.strategies]
    per_seed: dict[str, list[list[int]]] = {s: [[] for _ in range(bench.seeds)] for s in bench.strategies}
    wall: dict[str, float] = dict.fromkeys(bench.strategies, 0.0)
    pool_size = n_targets = 0
    if workers <= 1:
        for strategy, seed in campaigns:
            curve, seconds, pool_size, n_targets = run_campaign(bench, strategy, seed, progress)
            per_seed[strategy][seed] = curve
            wall[strategy] += seconds
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # torch and Prefect do not survive fork
        with _prefect_api_for_workers(), context.Manager() as manager:
            events = manager.Queue()
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = {
                    pool.submit(_campaign_worker, bench.model_dump(), strategy, seed, 1, events): (strategy, seed)
                    for strategy, seed in campaigns
                }
                try:
                    pool_size, n_targets = _drain(futures, events, progress, per_seed, wall)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)  # campaigns not started yet never start
                    raise
    results = results_document(bench, per_seed, pool_size, n_targets, wall)
    results["workers"] = max(1, workers)
    results["total_wall_s"] = round(time.perf_counter() - started, 1)
    return results


def _drain(
    futures: dict[Any, tuple[str, int]],
    events: Any,
    progress: RoundCallback | None,
    per_seed: dict[str, list[list[int]]],
    wall: dict[str, float],
) -> tuple[int, int]:
    """Wait for the campaign futures, passing their round events on; fills ``per_seed`` and ``wall``.

    Returns:
        (pool size, targets in the pool). A failed campaign raises its exception here.
    """
    import queue
    from concurrent.futures import FIRST_COMPLETED, wait

    pool_size = n_targets = 0
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                break
            if progress is not None:
                progress(*event)
        for future in done:
            strategy, seed = futures[future]
            curve, seconds, pool_size, n_targets = future.result()
            per_seed[strategy][seed] = curve
            wall[strategy] += seconds
    return pool_size, n_targets


@contextmanager
def _prefect_api_for_workers() -> Iterator[None]:
    """Worker processes share one Prefect API: the configured one (environment or settings context), or a
    temporary local server started for the run."""
    from prefect.settings import get_current_settings

    before = os.environ.get("PREFECT_API_URL")
    url = before or get_current_settings().api.url
    server = None
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start(timeout=120)  # a fresh PREFECT_HOME migrates its database first: 20 s was not always enough
        url = server.api_url
    os.environ["PREFECT_API_URL"] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        if server is not None:
            server.stop()


def random_expectation(n_pool: int, n_targets: int, initial: int, batch: int, rounds: int) -> list[float]:
    """Expected targets found by uniform random choice after the initial set and each round."""
    return [n_targets * min(1.0, (initial + r * batch) / n_pool) if n_pool else 0.0 for r in range(rounds + 1)]


def results_document(
    bench: BenchmarkConfig,
    per_seed: dict[str, list[list[int]]],
    n_pool: int,
    n_targets: int,
    wall: dict[str, float],
) -> dict[str, Any]:
    """``results.json``: mean and per-seed cumulative targets found, enrichment over random."""
    expectation = random_expectation(n_pool, n_targets, bench.initial, bench.batch, bench.rounds)
    strategies: dict[str, Any] = {}
    for name, curves in per_seed.items():
        mean = np.mean(np.asarray(curves, dtype=float), axis=0).tolist() if curves else []
        strategies[name] = {
            "found_per_round": mean,
            "per_seed": curves,
            "found_after_acquisition": (mean[-1] - mean[0]) if mean else 0.0,
            "wall_s": round(wall.get(name, 0.0), 1),
        }
    random_final = strategies.get("random", {}).get("found_per_round", [math.nan])[-1]
    for entry in strategies.values():
        final = entry["found_per_round"][-1] if entry["found_per_round"] else math.nan
        entry["enrichment_vs_random"] = final / random_final if random_final and random_final > 0 else None
        entry["enrichment_vs_expectation"] = final / expectation[-1] if expectation[-1] > 0 else None
    return {
        "pool": bench.pool,
        "target": bench.target,
        "n_pool": n_pool,
        "n_targets": n_targets,
        "initial": bench.initial,
        "batch": bench.batch,
        "rounds": bench.rounds,
        "seeds": bench.seeds,
        "oracle_calls": [bench.initial + r * bench.batch for r in range(bench.rounds + 1)],
        "random_expectation": expectation,
        "strategies": strategies,
        "settings": bench.model_dump(),
        "database": bench.database(),
    }


def plot_curves(results: dict[str, Any], path: Path | str) -> Path:
    """Targets found vs oracle calls, one line per strategy (mean, seeds shaded), random expectation dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = results["oracle_calls"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, entry in results["strategies"].items():
        curves = np.asarray(entry["per_seed"], dtype=float)
        if not curves.size:
            continue
        (line,) = ax.plot(calls, curves.mean(0), marker="o", ms=3, label=name)
        ax.fill_between(calls, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.15)
    ax.plot(calls, results["random_expectation"], "k--", lw=1, label="random (expected)")
    ax.set_xlabel("oracle calls (labels revealed)")
    ax.set_ylabel("targets found")
    ax.set_title(f"{results['target']}  ({results['n_targets']} targets in {results['n_pool']})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def summary_rows(results: dict[str, Any]) -> Sequence[tuple[str, str, str, str]]:
    """(strategy, targets found after all rounds, enrichment vs random, vs expectation) per strategy."""
    rows = []
    for name, entry in results["strategies"].items():
        final = entry["found_per_round"][-1] if entry["found_per_round"] else float("nan")
        er, ee = entry["enrichment_vs_random"], entry["enrichment_vs_expectation"]
        rows.append(
            (name, f"{final:.1f}", f"{er:.2f}x" if er is not None else "-", f"{ee:.2f}x" if ee is not None else "-")
        )
    return rows
