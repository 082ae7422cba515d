"""Strategies pick what they should on problems with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from acquisition import AcquisitionConfig, CandidateSetEnsemble, select_batch

# Three candidates, four members, target minimised (formation energy, eV/atom):
# 0: mean -1.0, no spread; 1: mean -0.8, large spread; 2: mean 0.0, no spread.
MEMBERS = np.array(
    [[-1.0, 0.2, 0.0], [-1.0, -1.8, 0.0], [-1.0, -0.3, 0.0], [-1.0, -1.3, 0.0]],
)


def test_greedy_takes_the_best_mean() -> None:
    sel = select_batch(MEMBERS, 1, AcquisitionConfig(strategy="greedy"))
    assert sel.indices == [0]
    assert select_batch(MEMBERS, 3, AcquisitionConfig(strategy="greedy")).indices == [0, 1, 2]


def test_greedy_maximise() -> None:
    assert select_batch(MEMBERS, 1, AcquisitionConfig(strategy="greedy", maximize=True)).indices == [2]


def test_ucb_exploits_at_small_beta_and_explores_at_large_beta() -> None:
    assert select_batch(MEMBERS, 1, AcquisitionConfig(strategy="ucb", beta=0.0)).indices == [0]
    assert select_batch(MEMBERS, 1, AcquisitionConfig(strategy="ucb", beta=10.0)).indices == [1]


def test_logei_prefers_the_uncertain_candidate_near_the_incumbent() -> None:
    # best label so far -1.0: candidate 0 cannot improve on it, candidate 1 can
    sel = select_batch(MEMBERS, 1, AcquisitionConfig(strategy="logei"), best_f=-1.0)
    assert sel.indices == [1]
    with pytest.raises(ValueError, match="best_f"):
        select_batch(MEMBERS, 1, AcquisitionConfig(strategy="logei"))


def test_batches_are_unique_and_capped_at_the_pool() -> None:
    for strategy in ("ucb", "logei", "greedy", "random"):
        sel = select_batch(MEMBERS, 5, AcquisitionConfig(strategy=strategy), best_f=-1.0)
        assert sorted(sel.indices) == [0, 1, 2], strategy
        assert len(sel.values) == 3


def test_random_is_seeded() -> None:
    members = np.zeros((1, 50))
    a = select_batch(members, 5, AcquisitionConfig(strategy="random", seed=1)).indices
    b = select_batch(members, 5, AcquisitionConfig(strategy="random", seed=1)).indices
    c = select_batch(members, 5, AcquisitionConfig(strategy="random", seed=2)).indices
    assert a == b and a != c


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="NaN"):
        select_batch(np.array([[np.nan, 1.0]]), 1, AcquisitionConfig())
    with pytest.raises(ValueError, match="s x n"):
        select_batch(np.zeros(3), 1, AcquisitionConfig())
    assert select_batch(np.zeros((2, 0)), 3, AcquisitionConfig()).indices == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"strategy": "magic"}, "strategy"),
        ({"beta": -1}, "beta"),
        ({"num_samples": 0}, "num_samples"),
        ({"betta": 1.0}, "betta"),
    ],
)
def test_invalid_configs_are_rejected(data: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        AcquisitionConfig(**data)


def test_candidate_set_model_shapes() -> None:
    members = torch.arange(12, dtype=torch.double).reshape(3, 4)  # s=3, n=4
    model = CandidateSetEnsemble(members)
    X = torch.tensor([[[1.0], [3.0]]])  # batch 1, q 2
    out = model(X)
    assert out.shape == (1, 3, 2, 1)
    assert out[0, :, :, 0].tolist() == [[1.0, 3.0], [5.0, 7.0], [9.0, 11.0]]
    post = model.posterior(X)
    assert torch.allclose(post.mean[0, :, 0], torch.tensor([5.0, 7.0], dtype=torch.double))
