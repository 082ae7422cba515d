"""Property models on public data: metrics, vectorised MEGNet, graph cache, baseline, registry, CLI.

The slow tests train tiny ensembles on a few hundred perov_5 structures read from ``../shared/data``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Structure

from surrogates.metrics import (
    ensemble_metrics,
    fit_std_scale,
    gaussian_nll,
    miscalibration_area,
    regression_metrics,
    save_plots,
    spearman_error_std,
)

PEROV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "perov_5" / "val.csv"


@pytest.fixture(scope="module")
def perov_rows() -> pd.DataFrame:
    if not PEROV.is_file():
        pytest.fail(f"{PEROV} is missing: CI clones the project with ../shared beside it")
    return pd.read_csv(PEROV, nrows=400)


@pytest.fixture(scope="module")
def perov(perov_rows: pd.DataFrame) -> tuple[list[Structure], np.ndarray]:
    structures = [Structure.from_str(c, fmt="cif") for c in perov_rows["cif"]]
    return structures, perov_rows["heat_all"].to_numpy(dtype=np.float64)


# ------------------------------------------------------------------------------------ metrics


def test_regression_metrics_exact() -> None:
    m = regression_metrics([0, 1, 2, 3], [0, 1, 2, 5])
    assert m["mae"] == 0.5
    assert m["rmse"] == 1.0
    assert m["r2"] == pytest.approx(0.2, abs=1e-15)  # 1 - 4 / 5
    assert math.isnan(regression_metrics([1, 1], [1, 2])["r2"])


def test_uncertainty_metrics_exact() -> None:
    assert gaussian_nll([0.0], [0.0], [1.0]) == pytest.approx(0.5 * math.log(2 * math.pi), abs=1e-15)
    assert gaussian_nll([1.0, -1.0], [0.0, 0.0], [1.0, 1.0]) == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5)
    assert fit_std_scale([2.0, -2.0], [0.0, 0.0], [1.0, 1.0]) == 2.0
    # every interval holds every target (huge std) or none (tiny std): mean |observed - expected| = 0.5
    assert miscalibration_area([1.0, 2.0], [0.0, 0.0], [1e9, 1e9]) == pytest.approx(0.5, abs=1e-12)
    assert miscalibration_area([1.0, 2.0], [0.0, 0.0], [1e-9, 1e-9]) == pytest.approx(0.5, abs=1e-12)
    rng = np.random.default_rng(0)
    y = rng.standard_normal(200_000)
    assert miscalibration_area(y, np.zeros_like(y), np.ones_like(y)) < 0.005  # a calibrated Gaussian
    assert spearman_error_std([1, 2, 3], [0, 0, 0], [0.1, 0.2, 0.3]) == pytest.approx(1.0)
    assert math.isnan(spearman_error_std([1, 2, 3], [0, 0, 0], [0.1, 0.1, 0.1]))


def test_affine_and_conformal_calibration_recover_the_noise() -> None:
    from surrogates.metrics import conformal_scale, fit_std_affine

    rng = np.random.default_rng(1)
    spread = rng.uniform(0.01, 0.2, 20_000)  # what the members say
    y = rng.standard_normal(20_000) * np.sqrt((2.0 * spread) ** 2 + 0.1**2)  # true noise: scale 2, floor 0.1
    mean = np.zeros_like(y)
    a, b = fit_std_affine(y, mean, spread)
    assert a == pytest.approx(2.0, rel=0.05) and b == pytest.approx(0.1, rel=0.1)
    calibrated = np.sqrt((a * spread) ** 2 + b**2)
    assert gaussian_nll(y, mean, calibrated) < gaussian_nll(y, mean, spread * fit_std_scale(y, mean, spread))
    assert miscalibration_area(y, mean, calibrated) < 0.01
    q = conformal_scale(y, mean, calibrated, coverage=0.9)
    assert q == pytest.approx(1.645, rel=0.05)  # already calibrated: the Gaussian 90 % quantile
    assert np.mean(np.abs(y) <= q * calibrated) == pytest.approx(0.9, abs=0.01)
    with pytest.raises(ValueError, match="at least one"):
        conformal_scale([], [], [])


def test_ensemble_metrics_and_plots(tmp_path: Path) -> None:
    members = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 4.0]])  # mean [1, 1, 3], std [1, 0, 1]
    m = ensemble_metrics([1.0, 1.0, 3.0], members, std_scale=2.0)
    assert (m["mae"], m["rmse"], m["r2"]) == (0.0, 0.0, 1.0)
    assert m["member_mae_mean"] == pytest.approx(2 / 3)
    assert m["mean_std"] == pytest.approx(4 / 3)
    assert m["std_scale"] == 2.0
    paths = save_plots(tmp_path, [1.0, 2.0, 3.0], [1.1, 2.2, 2.9], [0.1, 0.2, 0.1], label="x", unit="eV")
    assert [p.name for p in paths] == ["parity.png", "errors.png", "calibration.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


# ------------------------------------------------------------------------------------ baseline


def test_baseline_composition_only_and_structures(perov: tuple[list[Structure], np.ndarray]) -> None:
    from surrogates.baseline import FEATURE_NAMES, CompositionBaseline, DummyMean, featurize

    x = featurize(["Li7La3Zr2O12", "LiCoO2"])
    assert x.shape == (2, len(FEATURE_NAMES))
    assert np.isnan(x[:, -1]).all()  # no structure: geometry NaN
    assert x[1, FEATURE_NAMES.index("li_fraction")] == pytest.approx(0.25)
    structures, y = perov
    xs = featurize(structures[:2])
    assert np.isfinite(xs).all()
    train, test = slice(0, 300), slice(300, 400)
    formulas = [s.composition.reduced_formula for s in structures]
    dummy = DummyMean().fit(formulas[train], y[train])
    dummy_mae = np.abs(dummy.predict(formulas[test]) - y[test]).mean()
    # composition only (perov_5 has little compositional signal), then with structure descriptors
    for items, ratio in ((formulas, 0.97), (structures, 0.9)):
        model = CompositionBaseline(n_estimators=50).fit(items[train], y[train])
        pred = model.predict(items[test])
        assert np.abs(pred - y[test]).mean() < ratio * dummy_mae
        trees = model.predict_members(items[test])
        assert trees.shape == (50, 100)
        np.testing.assert_allclose(trees.mean(0), pred, rtol=1e-10)


# --------------------------------------------------------------------- graphs and vectorised MEGNet


@pytest.mark.slow
def test_graph_cache_hit_and_invalidation(perov: tuple[list[Structure], np.ndarray], tmp_path: Path) -> None:
    from matgl.config import DEFAULT_ELEMENTS

    from surrogates.graphs import GraphCache, build_graphs

    structures = perov[0][:20]
    cache = GraphCache(directory=tmp_path)
    g1, hit = cache.load_or_build(structures, cutoff=4.0, element_types=DEFAULT_ELEMENTS)
    assert not hit and len(g1) == 20
    g2, hit = cache.load_or_build(structures, cutoff=4.0, element_types=DEFAULT_ELEMENTS)
    assert hit
    assert all(np.array_equal(getattr(g1, k), getattr(g2, k)) for k in ("edge_index", "node_ptr", "edge_ptr"))
    assert not cache.load_or_build(structures, cutoff=3.5, element_types=DEFAULT_ELEMENTS)[1]  # setting changed
    moved = [s.copy() for s in structures]
    moved[3].perturb(0.05)
    assert not cache.load_or_build(moved, cutoff=4.0, element_types=DEFAULT_ELEMENTS)[1]  # input changed
    assert not cache.load_or_build(structures, cutoff=4.0, element_types=DEFAULT_ELEMENTS[:-1])[1]
    assert len(list(tmp_path.glob("*.pt"))) == 4
    cache.path(cache_key := "k", 4.0, DEFAULT_ELEMENTS).write_bytes(b"corrupt")
    g3, hit = cache.load_or_build(lambda: structures, cutoff=4.0, element_types=DEFAULT_ELEMENTS, data_key=cache_key)
    assert not hit and len(g3) == 20  # rebuilt
    # batches: packed gather equals building the selected structures directly
    picked = build_graphs([structures[i] for i in (5, 2)], 4.0, DEFAULT_ELEMENTS)
    b1, b2 = g1.batch([5, 2]), picked.batch([0, 1])
    for k in ("node_type", "edge_index", "batch", "edge_batch"):
        assert np.array_equal(getattr(b1, k), getattr(b2, k))
    np.testing.assert_allclose(b1.pos, b2.pos, atol=1e-6)


@pytest.mark.slow
def test_stacked_megnet_matches_matgl(perov: tuple[list[Structure], np.ndarray]) -> None:
    import torch
    from matgl.config import DEFAULT_ELEMENTS

    from surrogates.config import EnsembleConfig
    from surrogates.graphs import build_graphs
    from surrogates.members import build_model
    from surrogates.stacked import StackedMEGNet

    graphs = build_graphs(perov[0][:40], 4.0, DEFAULT_ELEMENTS)
    for size in ("small", "medium"):
        members = []
        for k in range(3):
            torch.manual_seed(k)
            members.append(build_model(EnsembleConfig(hidden_size=size)).eval())
        stacked = StackedMEGNet.from_members(members)
        for idx in (np.arange(40), np.array([7])):
            g = graphs.batch(idx)
            with torch.no_grad():
                ours = stacked(g)
                ref = torch.stack([m(g, state_attr=g.state).reshape(-1) for m in members])
            assert ours.shape == (3, len(idx))
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
        back = stacked.to_members()
        for a, b in zip(back, members, strict=True):
            for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
                assert na == nb and torch.equal(pa, pb)


@pytest.mark.slow
def test_tiny_ensemble_beats_dummy_on_perov(perov: tuple[list[Structure], np.ndarray]) -> None:
    from surrogates import EnsembleConfig, GNNEnsemble

    structures, y = perov
    train, test = list(range(320)), list(range(320, 400))
    s_train, s_test = [structures[i] for i in train], [structures[i] for i in test]
    cfg = EnsembleConfig(
        n_members=3,
        hidden_size="small",
        epochs=30,
        batch_size=16,
        learning_rate=5e-3,
        lr_schedule="cosine",
        val_fraction=0.1,
    )
    ens = GNNEnsemble.fit(s_train, y[train], config=cfg, property_name="heat_all", version="t")
    mae = np.abs(ens.predict(s_test).mean - y[test]).mean()
    dummy = np.abs(y[train].mean() - y[test]).mean()
    assert mae < 0.95 * dummy, (mae, dummy)  # 320 structures are few for a GNN: about 0.86 here
    assert ens.metrics["epochs_run"] == [30, 30, 30] and not ens.metrics["warm_start"]

    # warm start: one epoch from the previous ensemble beats one epoch from scratch
    one = cfg.model_copy(update={"epochs": 1})
    warm = GNNEnsemble.fit(s_train, y[train], config=one, property_name="heat_all", version="w", init_from=ens)
    cold = GNNEnsemble.fit(s_train, y[train], config=one, property_name="heat_all", version="c")
    assert warm.metrics["warm_start"] and not cold.metrics["warm_start"]
    assert warm.metrics["val_mae"] < cold.metrics["val_mae"]
    # warm_start_epochs caps a warm-started fit only
    capped = cfg.model_copy(update={"epochs": 3, "warm_start_epochs": 1})
    warm = GNNEnsemble.fit(s_train, y[train], config=capped, property_name="heat_all", version="w", init_from=ens)
    assert warm.metrics["epochs_run"] == [1, 1, 1] and warm.config.epochs == 3


# ------------------------------------------------------------------------------------ registry


def test_registry_round_trip() -> None:
    from core.errors import ModelNotFoundError
    from store import open_store
    from store.documents import ModelDoc
    from surrogates.registry import campaign_of, model_id, next_version, resolve_model

    store = open_store("mongomock://registry-test", "reg")
    assert next_version(store, "gap") == 1
    for version in (1, 2):
        store.register_model(
            ModelDoc(
                _id=model_id("gap", version),
                campaign=campaign_of("gap"),
                round=version,
                name="gap",
                version=version,
                property_name="ind_gap",
                unit="indirect band gap (eV)",
                architecture="megnet",
                n_members=5,
                path=f"/models/gap/v{version}",
                n_train=100,
                metrics={"mae": 0.1 / version},
                hyperparameters={"epochs": 40},
                dataset="perov5:/x.csv",
                data_hash="abc",
                split={"source": "random", "seed": 0},
            )
        )
    assert next_version(store, "gap") == 3
    newest = resolve_model(store, "gap")
    assert (newest.id, newest.version, newest.metrics["mae"]) == ("gap-v2", 2, 0.05)
    first = resolve_model(store, "gap-v1")
    assert first.hyperparameters == {"epochs": 40} and first.split["seed"] == 0 and first.data_hash == "abc"
    assert store.latest_model("default") is None  # loop campaigns do not see property models
    with pytest.raises(ModelNotFoundError, match="no model 'nope'"):
        resolve_model(store, "nope")
    # a loop-style document (no new fields) still validates
    legacy = ModelDoc.model_validate(
        {"_id": "c-r1", "campaign": "c", "round": 1, "property_name": "e", "architecture": "megnet",
         "n_members": 2, "path": "/p", "n_train": 3}
    )  # fmt: skip
    assert legacy.name is None and legacy.version == 1


# ------------------------------------------------------------------------------------ CLI


@pytest.mark.slow
def test_cli_train_evaluate_predict(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    perov_rows: pd.DataFrame,
    cli: Callable[..., int],
) -> None:
    csv_path = tmp_path / "tiny.csv"
    perov_rows.iloc[:120].to_csv(csv_path, index=False)
    uri = "mongomock://cli-models"
    args = ["--dataset", f"perov5:{csv_path}", "--property", "heat_all", "--name", "tiny", "--store-uri", uri]
    gnn = ["--architecture", "megnet", "--epochs", "3", "--hidden-size", "small"]
    fast = ["--ensemble", "2", *gnn, "--out", str(tmp_path / "model")]
    assert cli("train", *args, *fast) == 0
    out = capsys.readouterr().out
    assert "dummy mean" in out and "ensemble of 2" in out and "registered tiny-v1" in out
    assert sorted(p.name for p in (tmp_path / "model" / "plots").iterdir()) == [
        "calibration.png",
        "errors.png",
        "parity.png",
    ]

    assert cli("evaluate", "--model", "tiny", "--store-uri", uri) == 0
    assert "ensemble of 2" in capsys.readouterr().out

    inputs = tmp_path / "inputs.csv"
    perov_rows.iloc[200:205].to_csv(inputs, index=False)
    pred_path = tmp_path / "pred.csv"
    assert (
        cli(
            "predict",
            "--model",
            "tiny",
            "--input",
            str(inputs),
            "--out",
            str(pred_path),
            "--store-uri",
            uri,
        )
        == 0
    )
    pred = pd.read_csv(pred_path)
    assert list(pred.columns) == ["id", "formula", "heat_all_mean", "heat_all_std"]

    # determinism: the same data, settings and seed give the same model, whatever the machine's load
    again = ["--ensemble", "2", *gnn, "--out", str(tmp_path / "model2")]
    assert cli("train", *args, *again) == 0
    assert "registered tiny-v2" in capsys.readouterr().out
    pred2_path = tmp_path / "pred2.csv"
    assert cli("predict", "-m", "tiny-v2", "-i", str(inputs), "-o", str(pred2_path), "--store-uri", uri) == 0
    assert pred2_path.read_text() == pred_path.read_text()
    assert len(pred) == 5 and np.isfinite(pred["heat_all_mean"]).all() and (pred["heat_all_std"] >= 0).all()
    expected = [Structure.from_str(c, fmt="cif").composition.reduced_formula for c in perov_rows["cif"].iloc[200:205]]
    assert list(pred["formula"]) == expected  # input order

    # a single CIF file and a folder
    folder = tmp_path / "cifs"
    folder.mkdir()
    for i in (0, 1):
        Structure.from_str(perov_rows["cif"].iloc[i], fmt="cif").to(filename=str(folder / f"s{i}.cif"))
    assert cli("predict", "-m", "tiny", "-i", str(folder), "-o", str(pred_path), "--store-uri", uri) == 0
    assert list(pd.read_csv(pred_path)["id"]) == ["s0", "s1"]

    capsys.readouterr()
    assert cli("predict", "-m", "nope", "-i", str(folder), "--store-uri", uri) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "no model 'nope'" in err and len(err.strip().splitlines()) == 1
    assert cli("train", *args[:-4], "--name", "bad name!", "--store-uri", uri) == 2
    assert cli("train", "--dataset", "perov5:/no/such.csv", "--property", "heat_all", "--name", "x",
                "--store-uri", uri) == 2  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["m3gnet", "tensornet"])
def test_other_architectures_train_save_load(
    architecture: str, perov: tuple[list[Structure], np.ndarray], tmp_path: Path
) -> None:
    from surrogates import EnsembleConfig, GNNEnsemble

    structures, y = perov
    cfg = EnsembleConfig(architecture=architecture, n_members=2, epochs=1, batch_size=16, cutoff=5.0)
    ens = GNNEnsemble.fit(structures[:24], y[:24], config=cfg, property_name="heat_all", version="a")
    pred = ens.predict_members(structures[24:30])
    assert pred.shape == (2, 6) and np.isfinite(pred).all()
    loaded = GNNEnsemble.load(ens.save(tmp_path / architecture))
    np.testing.assert_allclose(loaded.predict_members(structures[24:30]), pred, rtol=1e-6)


def test_auto_architecture_picks_the_hurdle_for_zero_inflated_targets() -> None:
    from surrogates.property_models import resolve_architecture

    gaps = np.array([0.0] * 7 + [1.2, 3.4, 0.5])
    assert resolve_architecture("auto", gaps) == "hurdle-gb"
    assert resolve_architecture("auto", gaps, has_structures=False) == "hurdle-gb"
    assert resolve_architecture("auto", np.array([0.0] * 2 + [1.0] * 8)) == "chgnet-gb"  # 20 % zeros
    assert resolve_architecture("auto", np.array([0.0] * 7 + [-1.0, 2.0, 3.0])) == "chgnet-gb"  # a negative value
    assert resolve_architecture("auto", np.array([-0.5, -1.2, 0.3])) == "chgnet-gb"
    assert resolve_architecture("auto", np.array([-0.5, -1.2, 0.3]), has_structures=False) is None  # baseline
    assert resolve_architecture("gb-ensemble", gaps) == "gb-ensemble"
    assert resolve_architecture(None, gaps) is None


@pytest.mark.slow
def test_cli_train_auto_trains_chgnet_gb_deterministically(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, perov_rows: pd.DataFrame, cli: Callable[..., int]
) -> None:
    csv_path = tmp_path / "heat.csv"
    perov_rows.iloc[:200].to_csv(csv_path, index=False)
    inputs = tmp_path / "inputs.csv"
    perov_rows.iloc[300:310].to_csv(inputs, index=False)
    uri = "mongomock://cli-auto-heat"
    args = ["--dataset", f"perov5:{csv_path}", "--property", "heat_all", "--name", "heat", "--ensemble", "3"]
    outputs = []
    for k in (1, 2):
        assert cli("train", *args, "--store-uri", uri, "--out", str(tmp_path / f"m{k}")) == 0
        out = capsys.readouterr().out
        assert "architecture auto: chgnet-gb" in out and "chgnet-gb (3 members)" in out
        pred = tmp_path / f"pred{k}.csv"
        assert cli("predict", "-m", f"heat-v{k}", "-i", str(inputs), "-o", str(pred), "--store-uri", uri) == 0
        outputs.append(pred.read_text())
    assert outputs[0] == outputs[1]  # same data, settings and seed: the same model, byte for byte
    pred = pd.read_csv(tmp_path / "pred1.csv")
    truth = perov_rows["heat_all"].iloc[300:310].to_numpy()
    dummy = np.abs(truth - perov_rows["heat_all"].iloc[:200].mean()).mean()
    assert np.abs(pred["heat_all_mean"] - truth).mean() < 0.5 * dummy
    assert (pred["heat_all_std"] > 0).all()


@pytest.mark.slow
def test_cli_train_auto_trains_a_hurdle_for_band_gaps(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, perov_rows: pd.DataFrame, cli: Callable[..., int]
) -> None:
    csv_path = tmp_path / "gaps.csv"
    rows = perov_rows[perov_rows["ind_gap"] > 0].iloc[:12]  # 12 of the first 400 rows have a gap
    pd.concat([rows, perov_rows[perov_rows["ind_gap"] == 0].iloc[:48]]).to_csv(csv_path, index=False)
    uri = "mongomock://cli-auto"
    args = ["--dataset", f"perov5:{csv_path}", "--property", "ind_gap", "--name", "gap", "--ensemble", "2"]
    assert cli("train", *args, "--store-uri", uri, "--out", str(tmp_path / "gap")) == 0
    out = capsys.readouterr().out
    assert "architecture auto: hurdle-gb (80% of the values are 0)" in out
    assert "hurdle-gb (2 members)" in out
    assert (tmp_path / "gap" / "descriptor.pkl").is_file()
