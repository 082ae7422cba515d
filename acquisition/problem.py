"""What a strategy sees (:class:`AcquisitionProblem`) and what it returns (a :data:`Scorer`).

A strategy is a factory ``(problem) -> scorer`` registered in :data:`acquisition.registry.STRATEGIES`.
The scorer maps the pool indices chosen so far to :data:`Scores` for every pool candidate: a rank
(higher is better) and the value to report. :func:`acquisition.select` fills the batch one slot at a
time with the allowed maximum of the rank.

Shapes: ``K`` ensemble members, ``n`` pool candidates, ``n_obs`` labelled structures, ``m`` outcomes,
``k`` objectives. Model inputs are row indices as floats, ``batch x q x 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
from botorch.acquisition.objective import GenericMCObjective
from botorch.models.model import Model
from botorch.posteriors import Posterior
from botorch.sampling import IIDNormalSampler
from botorch.sampling.index_sampler import IndexSampler
from torch import Tensor

from acquisition.config import AcquisitionConfig
from acquisition.model import CandidateSetEnsemble, MemberSampler
from acquisition.objectives import OutcomeTransform

__all__ = ["AcquisitionProblem", "Scorer", "Scores", "StrategyFn", "static_scorer"]


@dataclass(frozen=True, kw_only=True)
class AcquisitionProblem:
    """What a strategy sees.

    Attributes:
        model: BoTorch model over row indices (``batch x q x 1`` inputs, ``m`` outputs); rows ``0..n-1`` are
            the pool, rows ``n..n+n_obs-1`` the labelled structures.
        n_pool: ``n``.
        q: slots to fill (``<= n``).
        config: the acquisition config.
        transform: objectives and constraints bound to the outcome columns.
        observed: ``n_obs x m`` labels (target units), or None.
        members: ``K x n x m`` pool members for the ensemble posterior (None for the GP).
    """

    model: Model
    n_pool: int
    q: int
    config: AcquisitionConfig
    transform: OutcomeTransform
    observed: Tensor | None
    members: Tensor | None

    @property
    def pool(self) -> Tensor:
        """``n x 1`` float indices of the pool rows."""
        return torch.arange(self.n_pool, dtype=torch.double).unsqueeze(-1)

    @property
    def baseline(self) -> Tensor:
        """``n_obs x 1`` float indices of the labelled rows (``0 x 1`` without labels)."""
        n_obs = 0 if self.observed is None else self.observed.shape[0]
        return torch.arange(self.n_pool, self.n_pool + n_obs, dtype=torch.double).unsqueeze(-1)

    @cached_property
    def pool_posterior(self) -> Posterior:
        """Joint posterior over the ``n`` pool rows (outputs ``n x m``)."""
        with torch.no_grad():
            return self.model.posterior(self.pool)

    @cached_property
    def mean(self) -> Tensor:
        """``n x m`` posterior mean on the pool."""
        return self.pool_posterior.mean.detach().reshape(self.n_pool, -1)

    @cached_property
    def std(self) -> Tensor:
        """``n x m`` posterior standard deviation on the pool (for the ensemble: the members' population
        std, ``ddof=0``, as in ``surrogates.Prediction``)."""
        if self.members is not None:
            return self.members.std(dim=0, correction=0)
        return self.pool_posterior.variance.detach().clamp_min(0.0).sqrt().reshape(self.n_pool, -1)

    @property
    def probability_members(self) -> Tensor | None:
        """Members to count for probabilities (``probability: ensemble``), else None (Gaussian)."""
        return self.members if self.config.probability == "ensemble" else None

    def sampler(self, n_samples: int) -> IndexSampler | IIDNormalSampler:
        """Sampler of the MC acquisition functions: every member once when ``K <= n_samples`` (the exact
        ensemble expectation), else ``n_samples`` seeded member indices; i.i.d. normal for the GP."""
        if isinstance(self.model, CandidateSetEnsemble):
            n_members = int(self.model.members.shape[0])
            if n_members <= n_samples:
                return MemberSampler(n_members)
            return IndexSampler(sample_shape=torch.Size([n_samples]), seed=self.config.seed)
        return IIDNormalSampler(sample_shape=torch.Size([n_samples]), seed=self.config.seed)

    def draws(self, n_draws: int) -> Tensor:
        """``n_draws x n x m`` seeded joint posterior draws on the pool (a random member each for the
        ensemble)."""
        shape = torch.Size([n_draws])
        if isinstance(self.model, CandidateSetEnsemble):
            sampler: IndexSampler | IIDNormalSampler = IndexSampler(sample_shape=shape, seed=self.config.seed)
        else:
            sampler = IIDNormalSampler(sample_shape=shape, seed=self.config.seed)
        with torch.no_grad():
            return sampler(self.pool_posterior).reshape(n_draws, self.n_pool, -1)

    def observed_objectives(self) -> tuple[Tensor, Tensor] | None:
        """``n_obs x k`` objectives of the labels and ``n_obs`` feasibility, or None without labels."""
        if self.observed is None or self.observed.shape[0] == 0:
            return None
        return self.transform.objective_values(self.observed), self.transform.feasible(self.observed)

    def best_f(self) -> float | None:
        """Best feasible scalarized objective among the labels (the worst one if none is feasible)."""
        obs = self.observed_objectives()
        if obs is None:
            return None
        values = (obs[0] * self.transform.weights).sum(-1)
        feasible = obs[1]
        return float(values[feasible].max()) if feasible.any() else float(values.min())

    def infeasible_cost(self) -> float:
        """``M >= 0`` with scalarized objective ``+ M >= 0`` on the pool's ``mean +- 6 std`` box."""
        lb = self.transform.objective_lower_bound(self.mean - 6 * self.std, self.mean + 6 * self.std)
        return max(0.0, -float((lb * self.transform.weights).sum(-1).min())) + 1.0

    def scalar_objective(self) -> GenericMCObjective:
        """BoTorch objective: samples ``... x q x m`` -> ``... x q`` weighted sum of the objectives."""
        return GenericMCObjective(lambda Y, X=None: self.transform.scalarized(Y))


Scores = tuple[Tensor, Tensor]
"""``(rank, value)``: ``rank`` is ``(n,)``, or ``n x 2`` for a tie-break key in its second column; the pick
is the allowed maximum of ``rank`` (lexicographic; remaining ties: lowest index); ``value`` ``(n,)`` is
reported."""
Scorer = Callable[[list[int]], Scores]
"""Maps the pool indices chosen so far (in order) to the scores of every pool candidate for the next slot."""
StrategyFn = Callable[[AcquisitionProblem], Scorer]
"""A strategy: builds the scorer for one problem (the type of the entries of ``STRATEGIES``)."""


def static_scorer(scores: Tensor, values: Tensor | None = None) -> Scorer:
    """A scorer that ignores the slot (independent candidates).

    Args:
        scores: ``(n,)`` rank (or ``n x 2`` with a tie-break column).
        values: ``(n,)`` values to report; None: ``scores``.
    """
    values = scores if values is None else values
    return lambda chosen: (scores, values)
