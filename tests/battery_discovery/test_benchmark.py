"""The replay benchmark: its settings, its results document, campaigns as flow runs, the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from battery_discovery.benchmark import (
    BenchmarkConfig,
    objectives_from_target,
    random_expectation,
    results_document,
)
from loop.testing import store_documents
from store import open_store

TARGET = "ind_gap >= 1.5 and heat_all <= 0.5"


def test_benchmark_document_and_random_expectation() -> None:
    objectives, constraints = objectives_from_target(TARGET)
    assert objectives == [{"name": "ind_gap", "direction": "max", "low": 1.5}]
    assert constraints == [{"name": "heat_all", "op": "<=", "value": 0.5}]
    assert random_expectation(1000, 50, 100, 50, 2) == pytest.approx([5.0, 7.5, 10.0])
    bench = BenchmarkConfig(pool="p.csv", target=TARGET, initial=100, batch=50, rounds=2, seeds=2)
    assert bench.pool_spec() == "perov5:p.csv" and bench.database().startswith("replay_")
    doc = results_document(bench, {"random": [[5, 7, 10], [5, 8, 10]], "ucb": [[5, 15, 30], [5, 20, 40]]}, 1000, 50, {})
    assert doc["n_pool"] == 1000 and doc["n_targets"] == 50 and doc["oracle_calls"] == [100, 150, 200]
    assert doc["strategies"]["ucb"]["found_per_round"] == [5.0, 17.5, 35.0]
    assert doc["strategies"]["ucb"]["enrichment_vs_random"] == pytest.approx(3.5)
    assert doc["strategies"]["random"]["per_seed"] == [[5, 7, 10], [5, 8, 10]]


def test_benchmark_settings_name_the_database_and_reach_every_campaign(monkeypatch: pytest.MonkeyPatch) -> None:
    from battery_discovery import benchmark

    bench = BenchmarkConfig(pool="p.csv", target=TARGET, rounds=2, seeds=2, strategies=("random", "greedy"))
    params = benchmark.loop_parameters(bench, "greedy", 1)
    assert params["surrogate"] == {**benchmark.REPLAY_SURROGATE_DEFAULTS, "seed": 1}
    assert params["acquisition"]["strategy"] == "greedy" and params["replay"]["seed"] == 1
    tuned = bench.model_copy(update={"surrogate": {"epochs": 5}})
    assert benchmark.loop_parameters(tuned, "greedy", 0)["surrogate"]["epochs"] == 5
    assert tuned.database() != bench.database()  # other settings, other campaigns: no stale resume
    assert bench.model_copy(update={"seeds": 5, "store_uri": "mongodb://x"}).database() == bench.database()

    calls: list[tuple[str, int]] = []

    def fake_campaign(bench, strategy, seed, on_round=None):  # type: ignore[no-untyped-def]
        calls.append((strategy, seed))
        return [seed, seed + 1, seed + (3 if strategy == "greedy" else 1)], 1.5, 100, 10

    monkeypatch.setattr(benchmark, "run_campaign", fake_campaign)
    doc = benchmark.run_benchmark(bench, workers=1)
    assert sorted(calls) == [("greedy", 0), ("greedy", 1), ("random", 0), ("random", 1)]
    assert doc["strategies"]["greedy"]["per_seed"] == [[0, 1, 3], [1, 2, 4]]
    assert doc["strategies"]["greedy"]["wall_s"] == 3.0 and doc["workers"] == 1
    assert doc["strategies"]["greedy"]["enrichment_vs_random"] == pytest.approx(3.5 / 1.5)


@pytest.mark.slow
def test_benchmark_command_writes_results_and_plot(pool: str, tmp_path: Path, prefect_harness: None) -> None:
    from typer.testing import CliRunner

    from battery_discovery.cli import app

    out, png = tmp_path / "results.json", tmp_path / "curves.png"
    args = ["benchmark", "--pool", pool.split(":", 1)[1], "--target", "ind_gap >= 0.5", "--initial", "20"]
    args += ["--batch", "8", "--rounds", "1", "--seeds", "1", "--strategies", "random,greedy"]
    args += ["--members", "2", "--out", str(out), "--plot", str(png), "--store-uri", "embedded"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["n_pool"] == 60 and doc["n_targets"] >= 1 and doc["oracle_calls"] == [20, 28]
    for name in ("random", "greedy"):
        curve = doc["strategies"][name]["found_per_round"]
        assert len(curve) == 2 and curve[0] <= curve[1] <= doc["n_targets"]
    assert png.stat().st_size > 10_000
    store = open_store("embedded", doc["database"])  # the replay campaigns' store holds every round
    for campaign in ("replay-random-s0", "replay-greedy-s0"):
        rounds = store.list_rounds(campaign)
        assert [(r.round, r.status) for r in rounds] == [(0, "completed"), (1, "completed")]
        assert rounds[-1].metrics["n_labelled"] == 28 and len(rounds[-1].acquired) == 8
    assert store.get_model("replay-random-s0-r0") is None  # random reads no model: none trained
    # greedy trains after round 0 for round 1; after the last round nothing (no round would read it)
    assert store.get_model("replay-greedy-s0-r0") is not None and store.get_model("replay-greedy-s0-r1") is None
    assert store.get_round("replay-greedy-s0", 1).trained_model is None


@pytest.mark.slow
def test_a_failing_campaign_in_a_worker_process_stops_the_benchmark_with_its_error(
    tmp_path: Path, prefect_harness: None
) -> None:
    from battery_discovery.benchmark import run_benchmark

    bench = BenchmarkConfig(
        pool=str(tmp_path / "missing.csv"), target="ind_gap >= 0.5", initial=5, batch=2, rounds=1, seeds=1,
        strategies=("random", "greedy"), store_uri="embedded",
    )  # fmt: skip
    with pytest.raises(Exception, match=r"missing\.csv"):
        run_benchmark(bench, workers=2)


@pytest.mark.slow
def test_a_campaign_is_one_flow_run_and_reports_every_round_once_in_order(
    pool: str, tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from battery_discovery import benchmark

    loop_module = importlib.import_module("flows.discovery_loop")  # the module (the package exports the flow)

    calls: list[int] = []
    real = loop_module.discovery_loop

    def counted(**params):  # type: ignore[no-untyped-def]
        calls.append(params["rounds"])
        return real(**params)

    monkeypatch.setattr(loop_module, "discovery_loop", counted)
    bench = BenchmarkConfig(
        pool=pool, target="ind_gap >= 0.5", initial=10, batch=5, rounds=3, seeds=1, strategies=("random",),
        store_uri=f"mongomock://{tmp_path.name}",
    )  # fmt: skip
    events: list[tuple[str, int, int, int]] = []
    curve, wall, n_pool, n_targets = benchmark.run_campaign(
        bench, "random", 0, lambda s, seed, r, m: events.append((s, seed, r, m["n_labelled"])), poll_s=0.05
    )
    assert calls == [3]  # one flow run covers rounds 0..3
    assert events == [("random", 0, r, 10 + 5 * r) for r in range(4)]
    assert len(curve) == 4 and curve == sorted(curve) and n_pool == 60 and n_targets >= 1 and wall > 0
    events.clear()
    store = open_store(bench.store_uri, bench.database())
    before = store_documents(store)
    assert len(before["rounds"]) == 4 and before["evaluations"]
    again = benchmark.run_campaign(bench, "random", 0, lambda s, seed, r, m: events.append((s, seed, r, 0)))
    assert again[0] == curve and [e[2] for e in events] == [0, 1, 2, 3]  # resumed: nothing re-run, all reported
    assert store_documents(store) == before  # not a label, a round record or a timestamp rewritten
