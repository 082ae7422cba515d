"""Fast tests of the protocol, Prediction, the mocks and the config (no matgl import)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from surrogates import (
    EnsembleConfig,
    FunctionSurrogate,
    MockSurrogate,
    Prediction,
    Surrogate,
    spread_members,
)


def test_mock_returns_exact_mean_and_std(make_dataset) -> None:
    structures, _ = make_dataset(4, 0)
    mean = np.array([1.0, -2.5, 3.25, 0.0])
    std = np.array([0.5, 0.0, 2.0, 1e-3])
    mock = MockSurrogate(mean, std, n_members=5, seed=7, property_name="voltage", version="r1")

    assert isinstance(mock, Surrogate)
    pred = mock.predict(structures)
    np.testing.assert_array_equal(pred.mean, mean)
    np.testing.assert_array_equal(pred.std, std)
    assert pred.members.shape == (5, 4)
    assert pred.n_members == 5 and len(pred) == 4
    np.testing.assert_allclose(pred.members.mean(axis=0), mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pred.members.std(axis=0), std, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(mock.predict_members(structures), pred.members)
    assert pred.members.dtype == np.float64
    assert mock.calls == 2
    assert (mock.property_name, mock.version, mock.n_members) == ("voltage", "r1", 5)


def test_mock_is_deterministic_per_seed() -> None:
    a = MockSurrogate([0.0, 1.0], [1.0, 2.0], n_members=3, seed=1).predict_members([None, None])
    b = MockSurrogate([0.0, 1.0], [1.0, 2.0], n_members=3, seed=1).predict_members([None, None])
    c = MockSurrogate([0.0, 1.0], [1.0, 2.0], n_members=3, seed=2).predict_members([None, None])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mock_rejects_wrong_length_and_impossible_spread() -> None:
    mock = MockSurrogate([1.0, 2.0], [0.1, 0.1], n_members=2)
    with pytest.raises(ConfigError, match="2 structures, got 3"):
        mock.predict([None, None, None])
    with pytest.raises(ConfigError, match="single member"):
        MockSurrogate([1.0], [0.5], n_members=1)
    with pytest.raises(ConfigError, match="non-negative"):
        MockSurrogate([1.0], [-0.5], n_members=2)
    single = MockSurrogate([4.0], [0.0], n_members=1).predict([None])
    assert single.members.tolist() == [[4.0]] and single.std.tolist() == [0.0]


def test_spread_members_two_members_is_plus_minus_std() -> None:
    members = spread_members(np.array([10.0]), np.array([3.0]), 2)
    assert sorted(members[:, 0].tolist()) == [7.0, 13.0]


def test_function_surrogate_maps_each_structure(make_dataset) -> None:
    structures, volumes = make_dataset(6, 3)
    fs = FunctionSurrogate(lambda s: [s.volume / len(s), 2 * s.volume / len(s)], n_members=2)
    assert isinstance(fs, Surrogate)
    pred = fs.predict(structures)
    np.testing.assert_allclose(pred.members[0], volumes)
    np.testing.assert_allclose(pred.mean, 1.5 * volumes)
    np.testing.assert_allclose(pred.std, 0.5 * volumes)
    # order follows the input
    np.testing.assert_allclose(fs.predict(structures[::-1]).mean, 1.5 * volumes[::-1])

    bad = FunctionSurrogate(lambda s: [1.0, 2.0, 3.0], n_members=2)
    with pytest.raises(ConfigError, match="expected n_members=2"):
        bad.predict_members(structures)


def test_function_surrogate_from_mean_std(make_dataset) -> None:
    structures, _ = make_dataset(5, 4)
    fs = FunctionSurrogate.from_mean_std(lambda s: s.volume, lambda s: 0.1 * s.volume, n_members=4)
    pred = fs.predict(structures)
    v = np.array([s.volume for s in structures])
    np.testing.assert_allclose(pred.mean, v, rtol=1e-12)
    np.testing.assert_allclose(pred.std, 0.1 * v, rtol=1e-12)
    assert pred.members.shape == (4, 5)


def test_prediction_validates_shapes() -> None:
    p = Prediction.from_members(np.array([[1.0, 2.0], [3.0, 6.0]]))
    assert p.mean.tolist() == [2.0, 4.0] and p.std.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="n_members, n"):
        Prediction.from_members(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="mean and std"):
        Prediction(mean=np.zeros(3), std=np.zeros(2), members=np.zeros((2, 2)))


def test_config_defaults_and_strictness() -> None:
    cfg = EnsembleConfig()
    assert (cfg.architecture, cfg.n_members, cfg.epochs, cfg.batch_size) == ("megnet", 5, 60, 16)
    assert (cfg.cutoff, cfg.hidden_size, cfg.bootstrap, cfg.val_fraction, cfg.patience) == (
        4.0,
        "small",
        True,
        0.2,
        None,
    )
    with pytest.raises(ValidationError):
        EnsembleConfig(n_memebers=3)  # typo: extra="forbid"
    with pytest.raises(ValidationError):
        EnsembleConfig(n_members=0)
    with pytest.raises(ValidationError):
        EnsembleConfig(architecture="schnet")
    with pytest.raises(ValidationError):
        cfg.epochs = 3  # frozen
    for name, field in EnsembleConfig.model_fields.items():
        assert field.description, f"{name} lacks a description"
    assert EnsembleConfig.model_validate(cfg.model_dump(mode="json")) == cfg


def test_importing_surrogates_does_not_import_matgl() -> None:
    code = "import sys, surrogates; print('matgl' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
