"""The model registry the loop uses: save and register a round's ensembles, load them back, resume check;
and the one train-and-register path of property models."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import __version__
from core.errors import ConfigError, ModelNotFoundError
from store import open_store
from surrogates import EnsembleConfig
from surrogates.registry import (
    ensemble_dirs,
    load_ensembles,
    loop_model_complete,
    loop_model_id,
    model_dir,
    register_loop_model,
)

PEROV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "perov_5" / "val.csv"
QUICK = EnsembleConfig(n_members=2, epochs=2, seed=0, num_threads=1)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data home: model folders go under it."""
    monkeypatch.setenv("BATTERY_DISCOVERY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_layout_functions(home: Path) -> None:
    root = model_dir("db", "camp-r3")
    assert root == home.resolve() / "models" / "db" / "camp-r3" and not root.exists()
    assert loop_model_id("camp", 3) == "camp-r3"
    assert ensemble_dirs(root, ["a"]) == [root]
    assert ensemble_dirs(root, ["a", "b"]) == [root / "a", root / "b"]


@pytest.mark.slow
def test_loop_model_save_register_load_resume(home: Path, make_dataset) -> None:
    from surrogates import GNNEnsemble

    structures, labels = make_dataset(12, 4)
    queries, _ = make_dataset(5, 5)
    fit = lambda y, target: GNNEnsemble.fit(  # noqa: E731
        structures, y, config=QUICK, property_name=target, version="camp-r1"
    )
    ensembles = {"volume": fit(labels, "volume"), "double": fit(2 * labels, "double")}
    store = open_store("mongomock://loop-registry", "db")

    doc = register_loop_model(
        store, campaign="camp", round_index=1, database="db", ensembles=ensembles, config=QUICK, n_train=12
    )
    assert store.get_model("camp-r1").model_dump(exclude={"created_at"}) == doc.model_dump(exclude={"created_at"})  # type: ignore[union-attr]
    assert (doc.id, doc.campaign, doc.round, doc.property_name) == ("camp-r1", "camp", 1, "volume,double")
    assert (doc.architecture, doc.n_members, doc.n_train) == ("megnet", 2, 12)
    assert doc.config == QUICK.model_dump() and doc.code_version == __version__
    assert set(doc.metrics) == {"volume", "double"} and doc.metrics["volume"]["n_train"] == 10  # 2 held out
    assert Path(doc.path) == model_dir("db", "camp-r1")
    assert sorted(p.name for p in Path(doc.path).iterdir()) == ["double", "volume"]
    assert store.latest_model("camp", before_round=2).id == "camp-r1"  # type: ignore[union-attr]
    assert store.latest_model("camp", before_round=1) is None

    # loaded back in the order asked for, predicting what the trained ensembles predicted
    loaded = load_ensembles(doc, ("double", "volume"))
    assert [e.property_name for e in loaded] == ["double", "volume"]
    for e in loaded:
        np.testing.assert_array_equal(e.predict_members(queries), ensembles[e.property_name].predict_members(queries))
    assert [e.property_name for e in load_ensembles(doc, ("volume",))] == ["volume"]  # one target of several

    # resume check: complete only when every target's ensemble.json exists
    assert loop_model_complete(doc, ("volume", "double"))
    assert not loop_model_complete(None, ("volume", "double"))
    assert not loop_model_complete(doc, ("volume", "other"))
    (Path(doc.path) / "double" / "ensemble.json").unlink()
    assert not loop_model_complete(doc, ("volume", "double"))
    with pytest.raises(ModelNotFoundError, match=r"ensemble\.json is missing"):
        load_ensembles(doc, ("volume", "double"))

    # one target: the model folder is the ensemble (the layout older models have too)
    single = register_loop_model(
        store,
        campaign="camp",
        round_index=2,
        database="db",
        ensembles={"volume": ensembles["volume"]},
        config=QUICK,
        n_train=12,
    )
    assert single.property_name == "volume" and single.metrics["n_train"] == 10  # flat metrics
    assert (Path(single.path) / "ensemble.json").is_file() and loop_model_complete(single, ("volume",))
    (back,) = load_ensembles(single, ("volume",))
    np.testing.assert_array_equal(back.predict_members(queries), ensembles["volume"].predict_members(queries))
    assert store.latest_model("camp").id == "camp-r2"  # type: ignore[union-attr]

    # a diverged training saves and registers nothing
    bad = copy.copy(ensembles["volume"])
    bad.metrics = {**bad.metrics, "val_mae": math.nan}
    with pytest.raises(ModelNotFoundError, match=r"training camp-r3 \(volume\) diverged"):
        register_loop_model(
            store, campaign="camp", round_index=3, database="db", ensembles={"volume": bad}, config=QUICK, n_train=12
        )
    assert store.get_model("camp-r3") is None and not model_dir("db", "camp-r3").exists()
    with pytest.raises(ConfigError, match="at least one ensemble"):
        register_loop_model(store, campaign="camp", round_index=4, database="db", ensembles={}, config=QUICK, n_train=0)


def test_train_and_register_baseline_versions(home: Path, tmp_path: Path) -> None:
    """Without a GNN (fast): each call registers the next version under the one folder layout."""
    from surrogates.property_models import train_and_register
    from surrogates.registry import resolve_model

    if not PEROV.is_file():
        pytest.fail(f"{PEROV} is missing: CI clones the project with ../shared beside it")
    csv = tmp_path / "perov.csv"
    pd.read_csv(PEROV, nrows=60).to_csv(csv, index=False)
    store = open_store("mongomock://train-register", "db")
    seen = []
    kwargs = {"dataset": f"perov5:{csv}", "property_name": "heat_all", "name": "rf", "database": "db"}
    for version in (1, 2):
        out = train_and_register(store, config=EnsembleConfig(), use_gnn=False, on_data=seen.append, **kwargs)
        assert (out.model_id, out.version) == (f"rf-v{version}", version)
        assert out.directory == model_dir("db", f"rf-v{version}") and (out.directory / "model.json").is_file()
        assert [row["model"] for row in out.result.table] == ["dummy mean", "baseline (random_forest)"]
    assert len(seen) == 2 and len(seen[0]) == 60
    doc = resolve_model(store, "rf")
    assert (doc.id, doc.path, doc.architecture) == ("rf-v2", str(model_dir("db", "rf-v2")), "baseline:random_forest")
    with pytest.raises(ConfigError, match="baseline must be"):
        train_and_register(store, config=EnsembleConfig(), baseline_kind="svm", **kwargs)
    with pytest.raises(ConfigError, match="model name"):
        train_and_register(store, config=EnsembleConfig(), **{**kwargs, "name": "bad name!"})
