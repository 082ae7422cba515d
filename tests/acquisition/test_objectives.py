"""Objective transforms, constraint callables and probabilities on known numbers."""

from __future__ import annotations

import math

import pytest
import torch

from acquisition.config import ConstraintSpec, ObjectiveSpec
from acquisition.objectives import OutcomeTransform, log_prob_between


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))  # accurate far in the lower tail


def test_log_prob_between_matches_the_normal_cdf_and_survives_the_tails() -> None:
    mean = torch.tensor([0.0, 10.0, -10.0], dtype=torch.double)
    std = torch.ones(3, dtype=torch.double)
    p = log_prob_between(mean, std, -1.0, 2.0).exp()
    assert p[0].item() == pytest.approx(_phi(2.0) - _phi(-1.0), rel=1e-12)
    # 10, 20 and 30 std below the window: tiny but finite and ordered, not 0 or NaN
    far = log_prob_between(mean, std, 20.0, 21.0)
    assert torch.isfinite(far).all() and far[1] > far[0] > far[2]
    assert far[1].item() == pytest.approx(math.log(_phi(-10.0) - _phi(-11.0)), rel=1e-6)
    assert log_prob_between(torch.tensor([1.0]), torch.tensor([0.0]), 0.0, None).item() == 0.0  # a step
    # outside a step: probability 0, its log still ranks by the distance
    outside = log_prob_between(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]), 2.0, None)
    assert outside.exp().tolist() == [0.0, 0.0] and outside[0] > outside[1]


def test_transform_objectives_and_constraints() -> None:
    tf = OutcomeTransform(
        objectives=(
            ObjectiveSpec(name="gap", direction="window", low=2.0, high=4.0, weight=2.0),
            ObjectiveSpec(name="e", direction="min"),
        ),
        constraints=(ConstraintSpec(name="hull", op="<=", value=0.05), ConstraintSpec(name="gap", op=">", value=1.0)),
        outcome_names=("e", "gap", "hull"),
    )
    Y = torch.tensor([[-1.0, 3.0, 0.0], [-2.0, 5.0, 0.2], [0.5, 0.5, 0.05]], dtype=torch.double)
    assert tf.objective_values(Y).tolist() == [[0.0, 1.0], [-1.0, 2.0], [-1.5, -0.5]]
    assert tf.scalarized(Y).tolist() == [1.0, 0.0, -3.5]
    assert tf.feasible(Y).tolist() == [True, False, False]
    hull, gap = (c(Y).tolist() for c in tf.botorch_constraints())  # negative: feasible
    assert hull == pytest.approx([-0.05, 0.15, 0.0]) and gap == pytest.approx([-2.0, -4.0, 0.5])
    assert tf.violation(Y).tolist() == pytest.approx([0.0, 0.15, 0.5])
    assert tf.to_objective_space([1.0, 0.0]).tolist() == [-1.0, -0.0]
