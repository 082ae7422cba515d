"""Built-in strategies scored directly from the pool posterior (mean, std, draws), without a BoTorch
acquisition function.

- ``random``: a seeded random order (a baseline; ignores objectives and constraints).
- ``greedy``: best posterior mean of the weighted objective.
- ``thompson``: one seeded joint posterior draw per batch slot.
- ``target_probability``: probability that every objective meets its target and every constraint holds.

Shapes: ``n`` pool candidates, ``m`` outcomes, ``q`` slots; every rank and value is ``(n,)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from acquisition.problem import AcquisitionProblem, Scorer, Scores, static_scorer
from acquisition.registry import STRATEGIES

__all__ = ["strategy_greedy", "strategy_random", "strategy_target_probability", "strategy_thompson"]


@STRATEGIES.register("random")
def strategy_random(problem: AcquisitionProblem) -> Scorer:
    """Uniformly random order (seeded); ignores objectives and constraints (a baseline)."""
    order = np.random.default_rng(problem.config.seed).permutation(problem.n_pool)
    rank = torch.empty(problem.n_pool, dtype=torch.double)
    rank[torch.as_tensor(order)] = -torch.arange(problem.n_pool, dtype=torch.double)
    return static_scorer(rank, torch.zeros(problem.n_pool, dtype=torch.double))


@STRATEGIES.register("greedy")
def strategy_greedy(problem: AcquisitionProblem) -> Scorer:
    """Best posterior mean of the (weighted) objective; candidates less likely than ``min_feasibility`` to
    meet the constraints come after all others."""
    value = problem.transform.scalarized(problem.mean)
    rank = value.clone()
    if problem.transform.constraints:
        p = problem.transform.log_prob_feasible(problem.mean, problem.std, problem.probability_members).exp()
        low = p < problem.config.min_feasibility
        rank[low] = rank[low] - (value.max() - value.min() + 1.0) - (problem.config.min_feasibility - p[low])
    return static_scorer(rank, value)


@STRATEGIES.register("thompson")
def strategy_thompson(problem: AcquisitionProblem) -> Scorer:
    """Thompson sampling: slot ``t`` takes the best candidate under posterior draw ``t`` (seeded). Under a
    draw, feasible candidates rank before infeasible ones (those by least violation)."""
    cache: dict[int, Tensor] = {}

    def score(chosen: list[int]) -> Scores:
        if not cache:
            cache[0] = problem.draws(problem.q)  # q x n x m, one draw per slot
        Y = cache[0][len(chosen)]  # n x m
        value = problem.transform.scalarized(Y)
        rank = value.clone()
        if problem.transform.constraints:
            bad = ~problem.transform.feasible(Y)
            rank[bad] = value.min() - 1.0 - problem.transform.violation(Y)[bad]
        return rank, value

    return score


@STRATEGIES.register("target_probability")
def strategy_target_probability(problem: AcquisitionProblem) -> Scorer:
    """Probability that every objective meets its threshold or window and every constraint holds
    (independent outcomes; Gaussian or ensemble fraction). Ranks by log probability."""
    members = problem.probability_members
    logp = problem.transform.log_prob_targets(problem.mean, problem.std, members)
    logp = logp + problem.transform.log_prob_feasible(problem.mean, problem.std, members)
    return static_scorer(logp, logp.exp())
