"""Replay: target expressions, the pool source and the replay labeler inside the ordinary stages."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from loop.config import LoopConfig
from loop.plan import build_config, build_plan
from loop.stages.bookkeeping import begin_round
from loop.targets import parse_target
from loop.testing import StageRunner
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
    replay = {"source": "pool", "labeler": "replay"}
    cfg = build_config({**replay, "replay": {"pool": "perov5:x.csv", "target": TARGET}})
    plan = build_plan(cfg)
    assert plan.targets == ("ind_gap", "heat_all") and plan.labeler.key == "replay|perov5:x.csv"
    with pytest.raises(ConfigError, match=r"the pool source needs replay.pool"):
        build_config(replay)
    with pytest.raises(ConfigError, match=r"replay labeler needs replay.pool .* and replay.target"):
        build_config({"labeler": "replay", "source": "pool", "replay": {"pool": "p"}})
    with pytest.raises(ConfigError, match=r"replay.target"):
        build_config({**replay, "replay": {"pool": "p", "target": "gap = 1"}})
    with pytest.raises(ConfigError, match="labeler 'relax' provides targets"):
        build_config({"targets": ["ind_gap"]})


@pytest.fixture
def store() -> Iterator[CandidateStore]:
    yield open_store("mongomock://replay", "battery_discovery")
    close_all()


@pytest.mark.slow
def test_replay_round_uses_the_ordinary_stages(pool: str, store: CandidateStore) -> None:
    cfg = LoopConfig.model_validate(
        {
            "campaign": "rp",
            "source": "pool",
            "labeler": "replay",
            "batch_size": 8,
            "store_uri": "mongomock://replay",
            "replay": {"pool": pool, "target": "ind_gap >= 0.5", "initial": 20, "seed": 3},
            "surrogate": {"n_members": 2, "epochs": 3},
            "acquisition": {"strategy": "ucb", "objectives": [{"name": "ind_gap", "direction": "max"}]},
        }
    )
    run = StageRunner(store, cfg)
    assert run.plan.targets == ("ind_gap",)
    ids = run.seed()
    assert len(ids) == 20 and run.seed() == ids  # same draw, nothing written twice
    assert len(store.candidate_ids("rp", "dataset")) == 60
    run.record_batch(0, ids)
    ev = run.evaluate(0, ids, seeds=True)
    assert ev.n_computed == 20 and set(ev.status.values()) == {"converged"}
    docs = list(store.evaluations.find({"campaign": "rp"}))
    assert all(d["potential"] == "replay" and "ind_gap" in d["labels"] for d in docs)
    retrain = run.retrain(0)
    assert retrain.model_version == "rp-r0" and retrain.n_train == 20
    done = run.complete(0, n_generated=0, evaluation=ev, retrain=retrain, timings={})
    truth = pd.read_csv(pool.split(":", 1)[1])
    assert done.metrics["n_targets_pool"] == int((truth.ind_gap >= 0.5).sum())
    found0 = done.metrics["n_targets_found"]

    begin_round(run.ctx(1), cfg.model_dump(mode="json"))
    assert run.generate(1).new_ids == []  # the pool is the candidate set
    pred = run.predict(1)
    assert np.asarray(pred.members).shape == (2, 40, 1)
    acq = run.acquire(1, pred)
    assert len(acq.entries) == 8 and all("ind_gap" in e.means for e in acq.entries)
    ev1 = run.evaluate(1, [e.candidate_id for e in acq.entries])
    assert ev1.n_computed == 8 and run.evaluate(1, list(ev1.status)).n_computed == 0
    retrain1 = run.retrain(1)
    done1 = run.complete(1, n_generated=0, evaluation=ev1, retrain=retrain1, timings={})
    assert done1.metrics["n_labelled"] == 28 and done1.metrics["n_targets_found"] >= found0
    # the pool's counts come from round 0 (read once), the same as a full count
    assert {k: done1.metrics[k] for k in ("n_pool", "n_targets_pool")} == {
        k: run.plan.labeler.finish_round(run.ctx(0))[k] for k in ("n_pool", "n_targets_pool")
    }
