"""Real (tiny) MEGNet ensembles trained on synthetic crystals; a few seconds each on 2 CPU cores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

import surrogates
from core.errors import ConfigError, ModelNotFoundError
from surrogates import EnsembleConfig, Prediction, Surrogate

if TYPE_CHECKING:
    from surrogates import GNNEnsemble

pytestmark = pytest.mark.slow

# surrogates.GNNEnsemble is looked up lazily so that collecting this module does not import matgl (~6 s)
# when slow tests are deselected.

# num_threads=1: on a shared 2-core machine two torch threads per process can be >10x slower.
TINY = EnsembleConfig(n_members=3, epochs=30, learning_rate=3e-3, seed=0, num_threads=1)
QUICK = EnsembleConfig(n_members=1, epochs=2, seed=0, num_threads=1)


@pytest.fixture(scope="module")
def trained(make_dataset) -> GNNEnsemble:
    structures, labels = make_dataset(60, 0)
    return surrogates.GNNEnsemble.fit(
        structures, labels, config=TINY, property_name="volume_per_atom", version="test-1"
    )


def test_ensemble_beats_mean_predictor(trained: GNNEnsemble, make_dataset) -> None:
    m = trained.metrics
    assert (m["n_train"], m["n_val"], m["held_out"]) == (48, 12, True)
    assert m["val_mae"] < 0.6 * m["val_dummy_mae"], m
    assert m["val_rmse"] >= m["val_mae"]
    assert len(m["member_val_mae"]) == 3 and m["epochs_run"] == [30, 30, 30]
    assert m["n_parameters"] == 36_323
    assert m["train_time_s"] > 0 and m["train_structures_per_s"] > 0
    json.dumps(m)  # serialisable

    # an independent test set from another seed
    test_structures, test_labels = make_dataset(100, 1)
    pred = trained.predict(test_structures)
    mae = np.abs(pred.mean - test_labels).mean()
    dummy_mae = np.abs(trained.target_mean - test_labels).mean()
    assert mae < 0.5 * dummy_mae, (mae, dummy_mae)


def test_members_disagree_and_shapes(trained: GNNEnsemble, make_dataset) -> None:
    assert isinstance(trained, Surrogate)
    structures, _ = make_dataset(20, 2)
    members = trained.predict_members(structures)
    assert members.shape == (3, 20) and members.dtype == np.float64
    pred = trained.predict(structures)
    assert isinstance(pred, Prediction)
    np.testing.assert_allclose(pred.mean, members.mean(axis=0))
    np.testing.assert_allclose(pred.std, members.std(axis=0))
    assert np.all(pred.std > 0)
    # order and batching do not change a structure's prediction
    np.testing.assert_allclose(trained.predict_members(structures[::-1])[:, ::-1], members, rtol=1e-5)
    np.testing.assert_allclose(trained.predict_members(structures[:1])[:, 0], members[:, 0], rtol=1e-5)
    assert trained.predict_members([]).shape == (3, 0)


def test_save_load_round_trip(trained: GNNEnsemble, make_dataset, tmp_path: Path) -> None:
    structures, _ = make_dataset(10, 3)
    path = trained.save(tmp_path / "ens")
    assert sorted(p.name for p in path.iterdir()) == ["ensemble.json", "member_0", "member_1", "member_2"]
    meta = json.loads((path / "ensemble.json").read_text())
    assert meta["property_name"] == "volume_per_atom" and meta["version"] == "test-1"
    assert meta["config"]["n_members"] == 3 and "matgl_version" in meta

    loaded = surrogates.GNNEnsemble.load(path)
    assert (loaded.property_name, loaded.version, loaded.config) == ("volume_per_atom", "test-1", TINY)
    assert loaded.target_mean == trained.target_mean and loaded.target_std == trained.target_std
    assert loaded.metrics == trained.metrics
    np.testing.assert_array_equal(loaded.predict_members(structures), trained.predict_members(structures))


def test_load_missing_or_corrupt(trained: GNNEnsemble, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"ensemble\.json is missing"):
        surrogates.GNNEnsemble.load(tmp_path / "nothing-here")

    path = trained.save(tmp_path / "ens")
    (path / "member_1" / "state.pt").unlink()
    with pytest.raises(ModelNotFoundError, match=r"member_1 lacks state\.pt"):
        surrogates.GNNEnsemble.load(path)

    (path / "member_0" / "state.pt").write_bytes(b"not a torch file")
    (path / "member_1" / "state.pt").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="cannot load surrogate member"):
        surrogates.GNNEnsemble.load(path)

    (path / "ensemble.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError, match="unreadable or corrupt"):
        surrogates.GNNEnsemble.load(path)


def test_fit_is_deterministic_and_seeded(make_dataset) -> None:
    structures, labels = make_dataset(12, 5)

    def fit(cfg: EnsembleConfig) -> GNNEnsemble:
        return surrogates.GNNEnsemble.fit(structures, labels, config=cfg, property_name="v", version="1")

    a, b = fit(QUICK), fit(QUICK)
    c = fit(QUICK.model_copy(update={"seed": 1}))
    pa, pb, pc = (e.predict_members(structures) for e in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert not np.allclose(pa, pc)
    assert a.metrics["val_mae"] == b.metrics["val_mae"]


def test_few_structures_use_training_metrics(make_dataset) -> None:
    structures, labels = make_dataset(6, 6)
    ens = surrogates.GNNEnsemble.fit(structures, labels, config=QUICK, property_name="v", version="1")
    m = ens.metrics
    assert (m["n_train"], m["n_val"], m["held_out"]) == (6, 0, False)
    assert np.isfinite(m["val_mae"])


def test_early_stopping_stops_before_max_epochs(make_dataset) -> None:
    structures, labels = make_dataset(30, 7)
    cfg = EnsembleConfig(n_members=2, epochs=40, learning_rate=3e-3, patience=1, num_threads=1)
    ens = surrogates.GNNEnsemble.fit(structures, labels, config=cfg, property_name="v", version="1")
    assert all(1 <= e < 40 for e in ens.metrics["epochs_run"]), ens.metrics["epochs_run"]


def test_clear_errors(trained: GNNEnsemble, make_dataset) -> None:
    structures, labels = make_dataset(12, 8)
    fit = lambda s, y: surrogates.GNNEnsemble.fit(s, y, config=QUICK, property_name="v", version="1")  # noqa: E731
    with pytest.raises(ConfigError, match="at least 2"):
        fit(structures[:1], labels[:1])
    with pytest.raises(ConfigError, match="12 structures but 11 targets"):
        fit(structures, labels[:11])
    bad = labels.copy()
    bad[4] = np.nan
    with pytest.raises(ConfigError, match=r"NaN or infinite.*index 4"):
        fit(structures, bad)

    polonium = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])  # not in matgl DEFAULT_ELEMENTS
    with pytest.raises(ConfigError, match="'Po'"):
        fit([*structures, polonium], [*labels, 1.0])
    with pytest.raises(ConfigError, match=r"structure 1 .*'Po'"):
        trained.predict([structures[0], polonium])
    disordered = Structure(Lattice.cubic(3.0), [{"Li": 0.5, "Na": 0.5}], [[0, 0, 0]])
    with pytest.raises(ConfigError, match="disordered"):
        trained.predict_members([disordered])
