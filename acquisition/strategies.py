"""Batch selection strategies, a registry keyed by name.

Every strategy takes the ensemble's member predictions on the pool and returns a :class:`Selection`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from botorch.acquisition import qLogExpectedImprovement, qUpperConfidenceBound
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf_discrete
from botorch.sampling.index_sampler import IndexSampler

from acquisition.config import AcquisitionConfig
from acquisition.model import CandidateSetEnsemble


@dataclass(frozen=True, kw_only=True)
class Selection:
    """Chosen pool indices in selection order and the acquisition value of each at its pick."""

    indices: list[int]
    values: list[float]
    strategy: str


def _objective_members(members: np.ndarray, config: AcquisitionConfig) -> torch.Tensor:
    """``s x n`` member predictions turned into a quantity to maximise."""
    sign = 1.0 if config.maximize else -1.0
    return torch.as_tensor(sign * np.asarray(members, dtype=np.float64))


def _botorch_select(
    members: np.ndarray,
    q: int,
    config: AcquisitionConfig,
    make: Callable[[CandidateSetEnsemble], AcquisitionFunction],
) -> Selection:
    model = CandidateSetEnsemble(_objective_members(members, config))
    torch.manual_seed(config.seed)
    acqf = make(model)
    X, values = optimize_acqf_discrete(acqf, q=q, choices=model.choices(), unique=True)
    indices = [int(i) for i in X[:, 0].round().long().tolist()]
    return Selection(indices=indices, values=[float(v) for v in values.reshape(-1).tolist()], strategy=config.strategy)


def _sampler(config: AcquisitionConfig) -> IndexSampler:
    return IndexSampler(sample_shape=torch.Size([config.num_samples]), seed=config.seed)


def select_ucb(members: np.ndarray, q: int, config: AcquisitionConfig, best_f: float | None) -> Selection:
    """qUpperConfidenceBound with ``beta`` on the ensemble posterior."""
    return _botorch_select(
        members, q, config, lambda m: qUpperConfidenceBound(m, beta=config.beta, sampler=_sampler(config))
    )


def select_logei(members: np.ndarray, q: int, config: AcquisitionConfig, best_f: float | None) -> Selection:
    """qLogExpectedImprovement over the best label so far (in the target's units)."""
    if best_f is None:
        raise ValueError("logei needs the best observed value (best_f); no labels yet")
    sign = 1.0 if config.maximize else -1.0
    return _botorch_select(
        members,
        q,
        config,
        lambda m: qLogExpectedImprovement(m, best_f=sign * best_f, sampler=_sampler(config)),
    )


def select_greedy(members: np.ndarray, q: int, config: AcquisitionConfig, best_f: float | None) -> Selection:
    """The ``q`` best ensemble means (ties broken by index)."""
    score = _objective_members(members, config).mean(0).numpy()
    order = np.lexsort((np.arange(score.size), -score))[:q]
    return Selection(indices=[int(i) for i in order], values=[float(score[i]) for i in order], strategy="greedy")


def select_random(members: np.ndarray, q: int, config: AcquisitionConfig, best_f: float | None) -> Selection:
    """``q`` candidates uniformly at random (seeded)."""
    n = np.asarray(members).shape[-1]
    order = np.random.default_rng(config.seed).permutation(n)[:q]
    return Selection(indices=[int(i) for i in order], values=[0.0] * len(order), strategy="random")


StrategyFn = Callable[[np.ndarray, int, AcquisitionConfig, float | None], Selection]
STRATEGIES: dict[str, StrategyFn] = {
    "ucb": select_ucb,
    "logei": select_logei,
    "greedy": select_greedy,
    "random": select_random,
}


def select_batch(members: np.ndarray, q: int, config: AcquisitionConfig, best_f: float | None = None) -> Selection:
    """Choose ``min(q, n)`` distinct candidates.

    Args:
        members: ``s x n`` member predictions of the target on the pool (target units).
        q: batch size.
        config: strategy and its knobs.
        best_f: best label observed so far (target units; needed by logei).
    """
    members = np.asarray(members, dtype=np.float64)
    if members.ndim != 2:
        raise ValueError(f"members must be s x n, got shape {members.shape}")
    if not np.all(np.isfinite(members)):
        raise ValueError("member predictions contain NaN or inf")
    n = members.shape[1]
    if n == 0 or q <= 0:
        return Selection(indices=[], values=[], strategy=config.strategy)
    return STRATEGIES[config.strategy](members, min(q, n), config, best_f)
