"""Descriptors, descriptor ensembles (hurdle and bootstrap regressor), their registration and the predictor API,
on real MP-20 band gaps (a slice of ``../shared/data/mp_20_biternary/val.csv.gz``) and OBELiX."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure
from sklearn.metrics import roc_auc_score

from core.errors import ConfigError, ModelNotFoundError
from surrogates.descriptor_models import DescriptorEnsemble
from surrogates.descriptors import DESCRIPTOR_NAMES, describe

MP20 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mp_20_biternary" / "val.csv.gz"
N_ROWS = 1500


@pytest.fixture(scope="module")
def mp20_rows() -> pd.DataFrame:
    if not MP20.is_file():
        pytest.fail(f"{MP20} is missing: CI clones the project with ../shared beside it")
    return pd.read_csv(MP20, nrows=N_ROWS)


@pytest.fixture(scope="module")
def mp20(mp20_rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors ``(n, D)`` and band gaps ``(n,)`` (eV) of the first rows."""
    structures = [Structure.from_str(c, fmt="cif") for c in mp20_rows["cif"]]
    return describe(structures), mp20_rows["band_gap"].to_numpy(dtype=np.float64)


def rocksalt(a: float, cation: str = "Na", anion: str = "Cl") -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def column(x: np.ndarray, name: str) -> np.ndarray:
    return x[:, DESCRIPTOR_NAMES.index(name)]


def test_describe_values() -> None:
    x = describe([rocksalt(5.64), Composition("LiF"), "Li3Fe", rocksalt(5.64).composition])
    assert x.shape == (4, len(DESCRIPTOR_NAMES))
    assert column(x, "site_cn_mean")[0] == 6 and column(x, "site_same_element_mean")[0] == 0
    assert column(x, "na_fraction")[0] == 0.5 and column(x, "li_fraction")[1] == 0.5
    assert column(x, "charge_balanced")[:2].tolist() == [1, 1] and column(x, "charge_balanced")[2] == 0
    assert column(x, "volume_per_atom")[0] == pytest.approx(5.64**3 / 8)
    assert np.isnan(column(x, "volume_per_atom")[1])  # composition only: no structure columns
    assert np.array_equal(x[0, :100], x[3, :100], equal_nan=True)  # the composition part is the composition's
    assert column(x, "ionic_character")[1] > column(x, "ionic_character")[2]  # LiF more ionic than Li3Fe
    assert np.array_equal(describe([rocksalt(5.64)]), describe([rocksalt(5.64)]), equal_nan=True)


def test_hurdle_beats_dummy_and_samples_the_mixture(mp20: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = mp20
    train, val, test = np.arange(0, 1000), np.arange(1000, 1150), np.arange(1150, N_ROWS)
    model = DescriptorEnsemble(kind="hurdle", n_members=3, max_iter=200, seed=0).fit(None, y[train], x=x[train])
    model.calibrate(None, y[val], x=x[val])
    assert 0.05 < model.sigma < 2.0
    mean, std = model.predict(None, x=x[test])
    dummy_mae = np.abs(y[test] - y[train].mean()).mean()
    assert np.abs(mean - y[test]).mean() < 0.5 * dummy_mae
    assert roc_auc_score(y[test] >= 3, mean) > 0.9
    assert np.all(mean >= 0) and np.all(std > 0)
    p, mu = model.components(None, x=x[test])
    assert p.shape == mu.shape == (3, len(test)) and np.allclose((p * mu).mean(0), mean)

    samples = model.sample(None, 600, seed=1, x=x[test])
    assert samples.shape == (600, len(test)) and np.all(samples >= 0)
    assert np.array_equal(samples, model.sample(None, 600, seed=1, x=x[test]))
    assert not np.array_equal(samples, model.sample(None, 600, seed=2, x=x[test]))
    # a draw is exactly 0 with the predicted probability of a zero (a mixture, not a Gaussian)
    zero = (samples == 0).mean(0)
    assert np.abs(zero - (1 - p.mean(0))).max() < 0.12
    assert np.abs(samples.mean(0) - mean).mean() < 0.1

    again = DescriptorEnsemble(kind="hurdle", n_members=3, max_iter=200, seed=0).fit(None, y[train], x=x[train])
    assert np.array_equal(again.predict_members(None, x=x[test]), model.predict_members(None, x=x[test]))


def test_regressor_bootstrap_members_differ_and_calibrate(mp20: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = mp20
    model = DescriptorEnsemble(kind="regressor", n_members=3, max_iter=100, bootstrap=True, seed=0)
    model.fit(None, y[:1000], x=x[:1000]).calibrate(None, y[1000:1200], x=x[1000:1200])
    members = model.predict_members(None, x=x[1200:])
    assert members.shape == (3, N_ROWS - 1200) and members.std(0).mean() > 0.01
    mean, std = model.predict(None, x=x[1200:])
    assert np.allclose(std, members.std(0) * model.std_scale) and model.std_scale > 0
    path = model.save(tmp_path / "m.pkl")
    assert np.array_equal(DescriptorEnsemble.load(path).predict(None, x=x[1200:])[0], mean)
    with pytest.raises(ValueError, match="hurdle"):
        DescriptorEnsemble(kind="hurdle").fit(None, -np.ones(5), x=x[:5])


def _small_mp20(mp20_rows: pd.DataFrame, path: Path) -> Path:
    with gzip.open(path, "wt") as fh:
        mp20_rows.iloc[:700].to_csv(fh, index=False)
    return path


@pytest.mark.slow
def test_register_load_predict_and_ensure(
    mp20_rows: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., int]
) -> None:

    from store import open_store
    from surrogates import predictors
    from surrogates.config import EnsembleConfig
    from surrogates.property_models import train_and_register

    spec = f"mp20:{_small_mp20(mp20_rows, tmp_path / 'small.csv.gz')}"
    store = open_store("mongomock://descriptor-models", "t")
    trained = train_and_register(
        store, dataset=spec, property_name="band_gap", name="gap", config=EnsembleConfig(n_members=2),
        database="t", use_gnn=False, architecture="hurdle-gb", directory=tmp_path / "gap",
    )  # fmt: skip
    rows = {r["model"]: r for r in trained.result.table}
    assert rows["hurdle-gb (2 members)"]["mae"] < 0.6 * rows["dummy mean"]["mae"]
    doc = store.get_model("gap-v1")
    assert doc is not None and doc.architecture == "hurdle-gb" and doc.n_members == 2 and doc.unit.endswith("(eV)")

    predictor = predictors.load_predictor(store, "gap")
    assert isinstance(predictor, predictors.PropertyPredictor)
    assert (predictor.model_id, predictor.property_name) == ("gap-v1", "band_gap")
    cells = [
        rocksalt(4.03, "Li", "F"),
        rocksalt(5.64),
        Structure(Lattice.cubic(3.51), ["Li", "Li"], [[0] * 3, [0.5] * 3]),
    ]
    mean, std = predictor.predict(cells)
    assert mean.shape == std.shape == (3,) and mean[0] > 2 and mean[2] < 1  # LiF insulating, bcc Li metallic
    samples = predictor.predict_samples(cells, n_samples=32, seed=3)
    assert samples.shape == (32, 3) and np.array_equal(samples, predictor.predict_samples(cells, 32, seed=3))
    assert predictor.predict_samples(cells).shape == (predictors.DEFAULT_SAMPLES, 3)
    assert predictors.load_predictor(store, "gap-v1").model_id == "gap-v1"
    with pytest.raises(ModelNotFoundError):
        predictors.load_predictor(store, "nope")

    # ensure_model trains the default once, then returns the registered id
    monkeypatch.setitem(predictors.DEFAULT_MODELS, "band_gap", ("default-gap", spec))
    monkeypatch.setattr(predictors, "DEFAULT_N_MEMBERS", 2)
    stages: list[str] = []
    first = predictors.ensure_model(store, "band_gap", database="t", on_stage=stages.append)
    assert first == "default-gap-v1" and any("training default band_gap model" in s for s in stages)
    assert predictors.ensure_model(store, "band_gap", database="t") == first
    assert len(store.list_models("models:default-gap")) == 1
    with pytest.raises(ConfigError, match="no default model"):
        predictors.ensure_model(store, "voltage", database="t")

    # the CLI path: train --architecture hurdle-gb, then predict
    uri = "mongomock://descriptor-cli"
    args = ["--dataset", spec, "--property", "band_gap", "--name", "cli-gap", "--architecture", "hurdle-gb"]
    assert cli("train", *args, "--ensemble", "2", "--out", str(tmp_path / "cli"), "--store-uri", uri) == 0
    assert cli("evaluate", "--model", "cli-gap", "--store-uri", uri) == 0
    folder = tmp_path / "cells"
    folder.mkdir()
    for i, cell in enumerate(cells):
        cell.to(filename=str(folder / f"c{i}.cif"))
    out = tmp_path / "pred.csv"
    assert cli("predict", "--model", "cli-gap", "--input", str(folder), "--out", str(out), "--store-uri", uri) == 0
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["id", "formula", "band_gap_mean", "band_gap_std"] and len(pred) == 3


@pytest.mark.slow
def test_conductivity_gb_ensemble_on_obelix(shared_data: Path, tmp_path: Path) -> None:

    from store import open_store
    from surrogates import predictors
    from surrogates.config import EnsembleConfig
    from surrogates.property_models import train_and_register

    store = open_store("mongomock://conductivity-models", "c")
    trained = train_and_register(
        store, dataset="obelix-liverpool", property_name="log10_conductivity", name="cond",
        config=EnsembleConfig(n_members=3), database="c", use_gnn=False, architecture="gb-ensemble",
        directory=tmp_path / "cond", cache_dir=shared_data,
    )  # fmt: skip
    rows = {r["model"]: r for r in trained.result.table}
    assert trained.result.meta["split"]["source"] == "official"
    assert rows["gb-ensemble (3 members)"]["mae"] < 0.8 * rows["dummy mean"]["mae"]
    predictor = predictors.load_predictor(store, "cond")
    mean, std = predictor.predict([rocksalt(4.03, "Li", "F")])
    assert np.isfinite(mean).all() and (std > 0).all()
    assert predictor.predict_samples([rocksalt(4.03, "Li", "F")], 5).shape == (5, 1)
