"""Posteriors over the candidate pool: ensemble with m outcomes, GP on descriptors, recalibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from acquisition import (
    AcquisitionConfig,
    CandidateSetEnsemble,
    CandidateSetGP,
    fit_gp,
    fit_spread_scale,
    fit_spread_scale_moments,
    scale_spread,
    select,
)
from acquisition.model import MemberSampler


def test_ensemble_posterior_with_m_outcomes() -> None:
    members = torch.arange(24, dtype=torch.double).reshape(2, 4, 3)  # K=2, n=4, m=3
    model = CandidateSetEnsemble(members)
    assert model.num_outputs == 3 and model.n_candidates == 4
    X = torch.tensor([[[0.0], [3.0]], [[1.0], [2.0]]])  # batch 2, q 2
    post = model.posterior(X)
    assert post.values.shape == (2, 2, 2, 3)  # batch x K x q x m
    assert post.mean[0].tolist() == [[6.0, 7.0, 8.0], [15.0, 16.0, 17.0]]
    samples = MemberSampler(2)(post)
    assert samples.shape == (2, 2, 2, 3)  # every member once
    assert samples[:, 1, 0].tolist() == [[3.0, 4.0, 5.0], [15.0, 16.0, 17.0]]
    with pytest.raises(ValueError, match="K x n x m"):
        CandidateSetEnsemble(torch.zeros(3))


def _gp_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 2))
    Y = np.stack([2.0 * X[:, 0], -X[:, 1]], axis=-1)  # a: grows with x0; b: falls with x1
    return X, Y


def test_gp_posterior_shapes_and_fit() -> None:
    X, Y = _gp_data(16)
    gp = fit_gp(X, Y)
    assert gp.num_outputs == 2
    X_pool = torch.as_tensor(np.array([[0.1, 0.5], [0.9, 0.5], [0.5, 0.5]]))
    model = CandidateSetGP(gp, X_pool)
    assert model.num_outputs == 2 and model.n_candidates == 3 and model.choices().shape == (3, 1)
    post = model.posterior(torch.tensor([[[0.0], [1.0]]]))  # batch 1, q 2
    assert post.mean.shape == (1, 2, 2) and post.variance.shape == (1, 2, 2)
    assert post.rsample(torch.Size([5])).shape == (5, 1, 2, 2)
    assert post.mean[0, :, 0].tolist() == pytest.approx([0.2, 1.8], abs=0.1)
    with pytest.raises(ValueError, match="at least 2"):
        fit_gp(X[:1], Y[:1])


@pytest.mark.parametrize("strategy", ["greedy", "ucb", "thompson"])
def test_gp_selection_follows_the_fitted_trend(strategy: str) -> None:
    X, Y = _gp_data(16)
    pool = np.array([[0.1, 0.5], [0.95, 0.5], [0.5, 0.5], [0.3, 0.2]])
    cfg = AcquisitionConfig(strategy=strategy, beta=0.1, posterior={"kind": "gp"}, objectives=[{"name": "a"}])
    sel = select(None, 1, cfg, outcome_names=["a", "b"], observed=Y, features=pool, observed_features=X)
    assert sel.indices == [1]


def test_recalibration_scale_is_the_nll_minimiser() -> None:
    rng = np.random.default_rng(1)
    mean, std = rng.normal(size=200), rng.uniform(0.5, 1.5, size=200)
    members = mean[None] + std[None] * np.array([-1.0, 1.0])[:, None]  # K=2: population std is exactly std
    y = mean + 3.0 * std * rng.standard_normal(200)
    (s,) = fit_spread_scale(members, y)
    z = (y - mean) / std
    assert s == pytest.approx(np.sqrt(np.mean(z**2)), rel=1e-12) and 2.5 < s < 3.5

    def nll(scale: float) -> float:
        return float(np.sum(np.log(scale * std) + 0.5 * (z / scale) ** 2))

    assert nll(s) < min(nll(0.99 * s), nll(1.01 * s))
    scaled = scale_spread(members[..., None], s)
    assert np.allclose(scaled.mean(0)[:, 0], mean) and np.allclose(scaled.std(0)[:, 0], s * std)


def test_recalibration_changes_the_ucb_choice() -> None:
    # 0: mean 1.0, no spread; 1: mean 0.9, spread 0.01. The validation errors are 20 std: s = 20.
    members = np.array([[1.0, 0.89], [1.0, 0.91]])[..., None]
    cfg = AcquisitionConfig(strategy="ucb", beta=1.0, maximize=True)
    assert select(members, 1, cfg, outcome_names=["x"]).indices == [0]
    val_members = np.array([[0.0, 1.0], [0.2, 1.2]])  # std 0.1
    val_y = np.array([2.1, -0.9])  # errors of 20 std
    recal = cfg.model_copy(update={"posterior": cfg.posterior.model_copy(update={"recalibrate": True})})
    sel = select(members, 1, recal, outcome_names=["x"], calibration=(val_members, val_y))
    assert sel.indices == [1] and sel.notes == ("spread scale [20.0]",)
    fixed = cfg.model_copy(update={"posterior": cfg.posterior.model_copy(update={"spread_scale": 20.0})})
    assert select(members, 1, fixed, outcome_names=["x"]).indices == [1]


def test_spread_scale_from_recorded_moments_skips_unusable_pairs() -> None:
    rng = np.random.default_rng(2)
    mean, std = rng.normal(size=(50, 2)), rng.uniform(0.5, 1.5, size=(50, 2))
    y = mean + np.array([0.5, 4.0]) * std * rng.standard_normal((50, 2))
    members = mean[None] + std[None] * np.array([-1.0, 1.0])[:, None, None]
    scale, counts = fit_spread_scale_moments(mean, std, y)
    assert np.allclose(scale, fit_spread_scale(members, y), rtol=1e-12) and counts.tolist() == [50, 50]
    y[:10, 0], std[10:15, 0], mean[15, 0] = np.nan, 0.0, np.inf  # no label, no spread, no prediction
    cut, counts = fit_spread_scale_moments(mean, std, y)
    assert counts.tolist() == [34, 50] and cut[1] == scale[1]
    z = (y[16:, 0] - mean[16:, 0]) / std[16:, 0]
    assert cut[0] == pytest.approx(np.sqrt(np.mean(z**2)), rel=1e-12)
    empty, none = fit_spread_scale_moments(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)))
    assert empty.tolist() == [1.0, 1.0, 1.0] and none.tolist() == [0, 0, 0]


def test_select_applies_given_per_outcome_spread_scale() -> None:
    members = np.array([[1.0, 0.89], [1.0, 0.91]])[..., None].repeat(2, -1)  # K=2, n=2, m=2
    cfg = AcquisitionConfig(strategy="ucb", beta=1.0, objectives=[{"name": "x", "direction": "max"}])
    assert select(members, 1, cfg, outcome_names=["x", "y"]).indices == [0]
    sel = select(members, 1, cfg, outcome_names=["x", "y"], spread_scale=[20.0, 1.0])
    assert sel.indices == [1] and sel.spread_scale == (20.0, 1.0) and sel.notes == ()
    with pytest.raises(ValueError, match="spread_scale must be 2 positive finite factors"):
        select(members, 1, cfg, outcome_names=["x", "y"], spread_scale=[20.0])


def test_gp_fills_missing_descriptors_and_drops_constant_columns() -> None:
    X, Y = _gp_data(16)
    rng = np.random.default_rng(3)
    X = np.concatenate([X, np.full((16, 1), 7.0), rng.normal(size=(16, 1))], axis=1)  # constant, noise
    X[3, 1] = np.nan  # e.g. no oxidation states found
    pool = np.array([[0.1, 0.5, 9.0, 0.0], [0.95, np.nan, 7.0, 0.0], [0.5, 0.5, 7.0, np.inf]])
    cfg = AcquisitionConfig(strategy="greedy", posterior={"kind": "gp"}, objectives=[{"name": "a"}])
    sel = select(None, 2, cfg, outcome_names=["a", "b"], observed=Y, features=pool, observed_features=X)
    assert sel.indices[0] == 1 and np.all(np.isfinite(sel.values)) and sel.spread_scale == ()
