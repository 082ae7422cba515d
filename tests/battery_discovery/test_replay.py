"""Replay mode: target expressions, the replay oracle inside the ordinary stages, the benchmark document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from battery_discovery import pipeline
from battery_discovery.benchmark import (
    BenchmarkConfig,
    objectives_from_target,
    random_expectation,
    results_document,
)
from battery_discovery.config import LoopConfig, build_config
from battery_discovery.replay import parse_target
from core.errors import ConfigError
from store import open_store
from store.connection import close_all
from store.repository import CandidateStore

TARGET = "ind_gap >= 1.5 and heat_all <= 0.5"


def test_target_expressions() -> None:
    t = parse_target(TARGET)
    assert t.names == ("ind_gap", "heat_all")
    assert t.holds({"ind_gap": 2.0, "heat_all": 0.1}) and not t.holds({"ind_gap": 1.4, "heat_all": 0.1})
    assert not t.holds({"ind_gap": 2.0}) and not t.holds({"ind_gap": float("nan"), "heat_all": 0.0})
    chained = parse_target("1 < ind_gap <= 3 and heat_all < -0.5")
    assert [(c.name, c.op, c.value) for c in chained.conditions] == [
        ("ind_gap", ">", 1.0),
        ("ind_gap", "<=", 3.0),
        ("heat_all", "<", -0.5),
    ]
    for bad, why in [
        ("ind_gap >=", "not an expression"),
        ("ind_gap >= 1 or heat_all < 0", "joined by 'and'"),
        ("ind_gap == 1", "only <, <=, >, >="),
        ("ind_gap >= heat_all", "label name with a number"),
        ("__import__('os')", "joined by 'and'"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_target(bad)


def test_replay_config_validation() -> None:
    cfg = build_config({"mode": "replay", "replay": {"pool": "perov5:x.csv", "target": TARGET}})
    assert cfg.targets == ("ind_gap", "heat_all") and cfg.oracle_key() == "replay|perov5:x.csv"
    with pytest.raises(ConfigError, match=r"replay mode needs replay.pool"):
        build_config({"mode": "replay"})
    with pytest.raises(ConfigError, match=r"replay.target"):
        build_config({"mode": "replay", "replay": {"pool": "p", "target": "gap = 1"}})
    with pytest.raises(ConfigError, match="discovery mode learns targets"):
        build_config({"targets": ["ind_gap"]})


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


@pytest.fixture
def pool(tmp_path: Path, shared_data: Path) -> str:
    """60 perov_5 entries: all 12 gapped ones among the first 400 rows plus metals."""
    df = pd.read_csv(shared_data / "perov_5" / "val.csv", nrows=400)
    sub = pd.concat([df[df.ind_gap > 0].head(12), df[df.ind_gap == 0].head(48)])
    path = tmp_path / "pool.csv"
    sub.to_csv(path, index=False)
    return f"perov5:{path}"


@pytest.fixture
def store() -> Iterator[CandidateStore]:
    yield open_store("mongomock://replay", "battery_discovery")
    close_all()


@pytest.mark.slow
def test_replay_round_uses_the_ordinary_stages(pool: str, store: CandidateStore) -> None:
    cfg = LoopConfig.model_validate(
        {
            "campaign": "rp",
            "mode": "replay",
            "batch_size": 8,
            "store_uri": "mongomock://replay",
            "replay": {"pool": pool, "target": "ind_gap >= 0.5", "initial": 20, "seed": 3},
            "surrogate": {"n_members": 2, "epochs": 3},
            "acquisition": {"strategy": "ucb", "objectives": [{"name": "ind_gap", "direction": "max"}]},
        }
    )
    assert cfg.targets == ("ind_gap",)
    ids = pipeline.seed_stage(store, cfg)
    assert len(ids) == 20 and pipeline.seed_stage(store, cfg) == ids  # same draw, nothing written twice
    assert len(store.candidate_ids("rp", "dataset")) == 60
    pipeline.record_batch(store, cfg, 0, ids)
    ev = pipeline.evaluate_stage(store, cfg, 0, ids, seeds=True)
    assert ev.n_computed == 20 and set(ev.status.values()) == {"converged"}
    docs = list(store.evaluations.find({"campaign": "rp"}))
    assert all(d["potential"] == "replay" and "ind_gap" in d["labels"] for d in docs)
    retrain = pipeline.retrain_stage(store, cfg, 0)
    assert retrain.model_version == "rp-r0" and retrain.n_train == 20
    done = pipeline.complete_round(store, cfg, 0, n_generated=0, evaluation=ev, retrain=retrain, timings={})
    truth = pd.read_csv(pool.split(":", 1)[1])
    assert done.metrics["n_targets_pool"] == int((truth.ind_gap >= 0.5).sum())
    found0 = done.metrics["n_targets_found"]

    pipeline.begin_round(store, cfg, 1)
    assert pipeline.generate_stage(store, cfg, 1).new_ids == []  # the pool is the candidate set
    pred = pipeline.predict_stage(store, cfg, 1)
    assert np.asarray(pred.members).shape == (2, 40, 1)
    acq = pipeline.acquire_stage(store, cfg, 1, pred)
    assert len(acq.entries) == 8 and all("ind_gap" in e.means for e in acq.entries)
    ev1 = pipeline.evaluate_stage(store, cfg, 1, [e.candidate_id for e in acq.entries])
    assert ev1.n_computed == 8 and pipeline.evaluate_stage(store, cfg, 1, list(ev1.status)).n_computed == 0
    retrain1 = pipeline.retrain_stage(store, cfg, 1)
    done1 = pipeline.complete_round(store, cfg, 1, n_generated=0, evaluation=ev1, retrain=retrain1, timings={})
    assert done1.metrics["n_labelled"] == 28 and done1.metrics["n_targets_found"] >= found0
    # the pool's counts come from round 0 (read once), the same as a full count
    assert {k: done1.metrics[k] for k in ("n_pool", "n_targets_pool")} == {
        k: pipeline.replay_metrics(store, cfg)[k] for k in ("n_pool", "n_targets_pool")
    }


@pytest.mark.slow
def test_benchmark_command_writes_results_and_plot(pool: str, tmp_path: Path, prefect_harness: None) -> None:
    from typer.testing import CliRunner

    from battery_discovery.cli import app

    out, png = tmp_path / "results.json", tmp_path / "curves.png"
    args = ["benchmark", "--pool", pool.split(":", 1)[1], "--target", "ind_gap >= 0.5", "--initial", "20"]
    args += ["--batch", "8", "--rounds", "1", "--seeds", "1", "--strategies", "random,greedy"]
    args += ["--members", "2", "--epochs", "3", "--out", str(out), "--plot", str(png), "--store-uri", "embedded"]
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
    again = benchmark.run_campaign(bench, "random", 0, lambda s, seed, r, m: events.append((s, seed, r, 0)))
    assert again[0] == curve and [e[2] for e in events] == [0, 1, 2, 3]  # resumed: nothing re-run, all reported
