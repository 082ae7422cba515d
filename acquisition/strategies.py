"""Batch selection strategies over a discrete candidate pool: a registry keyed by name.

A strategy is a function ``(problem) -> scorer``; the scorer maps the indices chosen so far to a score
for every pool candidate (higher is better) and the value to report. :func:`select` picks the batch one
slot at a time (the best allowed candidate, then the next given the ones already chosen, which
is BoTorch's sequential greedy optimisation of a joint ``q``-batch acquisition), skipping candidates
the diversity rules exclude. Adding a strategy is one function plus one line in :data:`STRATEGIES`.

Shapes: ``K`` ensemble members, ``n`` pool candidates, ``n_obs`` labelled structures, ``m`` outcomes,
``k`` objectives, ``d`` descriptor dimensions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from botorch.acquisition import qLogExpectedImprovement, qUpperConfidenceBound
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.acquisition.multi_objective.objective import GenericMCMultiOutputObjective
from botorch.acquisition.objective import ConstrainedMCObjective, GenericMCObjective
from botorch.models.model import Model
from botorch.posteriors import Posterior
from botorch.sampling import IIDNormalSampler
from botorch.sampling.index_sampler import IndexSampler
from botorch.utils.multi_objective.hypervolume import infer_reference_point
from botorch.utils.multi_objective.pareto import is_non_dominated
from torch import Tensor

from acquisition.config import AcquisitionConfig, DiversityConfig
from acquisition.model import (
    CandidateSetEnsemble,
    CandidateSetGP,
    MemberSampler,
    fit_gp,
    fit_spread_scale,
    scale_spread,
)
from acquisition.objectives import OutcomeTransform
from core.threads import torch_threads

__all__ = ["STRATEGIES", "AcquisitionProblem", "Selection", "select", "select_batch"]

_CHUNK = 1024  # candidates per acquisition-function evaluation


@dataclass(frozen=True, kw_only=True)
class Selection:
    """Chosen pool indices in selection order and the acquisition value of each at its pick.

    ``notes`` says when the request could not be met as asked (a fallback strategy, a batch shortened by
    the diversity rules, recalibration without data).
    """

    indices: list[int]
    values: list[float]
    strategy: str
    notes: tuple[str, ...] = ()


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


# ------------------------------------------------------------------------------------------ helpers
def _acqf_scorer(problem: AcquisitionProblem, acqf: AcquisitionFunction) -> Scorer:
    """Sequential greedy: the acquisition value of adding each candidate to the pending ones. Ties (e.g.
    qUCB once the pending points already hold every sample's maximum) go to the best value on its own."""

    def evaluate(chosen: list[int]) -> Tensor:
        acqf.set_X_pending(problem.pool[chosen] if chosen else None)
        with torch.no_grad():
            return torch.cat(
                [acqf(problem.pool[i : i + _CHUNK].unsqueeze(-2)) for i in range(0, problem.n_pool, _CHUNK)]
            )

    alone = evaluate([])

    def score(chosen: list[int]) -> Scores:
        values = evaluate(chosen) if chosen else alone
        return torch.stack([values, alone], dim=-1), values

    return score


def _static(scores: Tensor, values: Tensor | None = None) -> Scorer:
    """A scorer that ignores the slot (independent candidates)."""
    values = scores if values is None else values
    return lambda chosen: (scores, values)


# ---------------------------------------------------------------------------------------- strategies
def strategy_random(problem: AcquisitionProblem) -> Scorer:
    """Uniformly random order (seeded); ignores objectives and constraints (a baseline)."""
    order = np.random.default_rng(problem.config.seed).permutation(problem.n_pool)
    rank = torch.empty(problem.n_pool, dtype=torch.double)
    rank[torch.as_tensor(order)] = -torch.arange(problem.n_pool, dtype=torch.double)
    return _static(rank, torch.zeros(problem.n_pool, dtype=torch.double))


def strategy_greedy(problem: AcquisitionProblem) -> Scorer:
    """Best posterior mean of the (weighted) objective; candidates less likely than ``min_feasibility`` to
    meet the constraints come after all others."""
    value = problem.transform.scalarized(problem.mean)
    rank = value.clone()
    if problem.transform.constraints:
        p = problem.transform.log_prob_feasible(problem.mean, problem.std, problem.probability_members).exp()
        low = p < problem.config.min_feasibility
        rank[low] = rank[low] - (value.max() - value.min() + 1.0) - (problem.config.min_feasibility - p[low])
    return _static(rank, value)


def strategy_ucb(problem: AcquisitionProblem) -> Scorer:
    """qUpperConfidenceBound(``beta``); constraints via a feasibility-weighted ``ConstrainedMCObjective``."""
    objective = problem.scalar_objective()
    if problem.transform.constraints:
        objective = ConstrainedMCObjective(
            objective=lambda Y, X=None: problem.transform.scalarized(Y),
            constraints=problem.transform.botorch_constraints(),
            infeasible_cost=problem.infeasible_cost(),
        )
    sampler = problem.sampler(problem.config.num_samples)
    acqf = qUpperConfidenceBound(problem.model, beta=problem.config.beta, sampler=sampler, objective=objective)
    return _acqf_scorer(problem, acqf)


def strategy_logei(problem: AcquisitionProblem) -> Scorer:
    """qLogExpectedImprovement over the best feasible label; constraints feasibility-weighted (BoTorch)."""
    best_f = problem.best_f()
    if best_f is None:
        raise ValueError("logei needs the best observed value (best_f); no labels yet")
    acqf = qLogExpectedImprovement(
        problem.model,
        best_f=best_f,
        sampler=problem.sampler(problem.config.num_samples),
        objective=problem.scalar_objective(),
        constraints=problem.transform.botorch_constraints() or None,
    )
    return _acqf_scorer(problem, acqf)


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


def strategy_target_probability(problem: AcquisitionProblem) -> Scorer:
    """Probability that every objective meets its threshold or window and every constraint holds
    (independent outcomes; Gaussian or ensemble fraction). Ranks by log probability."""
    members = problem.probability_members
    logp = problem.transform.log_prob_targets(problem.mean, problem.std, members)
    logp = logp + problem.transform.log_prob_feasible(problem.mean, problem.std, members)
    return _static(logp, logp.exp())


def strategy_qlognehvi(problem: AcquisitionProblem) -> Scorer:
    """qLogNoisyExpectedHypervolumeImprovement over the objectives, baseline = labelled structures
    (the pool if there are none), reference point from the config or inferred; constraints
    feasibility-weighted (BoTorch)."""
    from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement

    _skip_fused_kernel_compilation()
    tf = problem.transform
    baseline = problem.baseline if problem.baseline.shape[0] else problem.pool
    acqf = qLogNoisyExpectedHypervolumeImprovement(
        problem.model,
        ref_point=_reference_point(problem).tolist(),
        X_baseline=baseline,
        sampler=problem.sampler(problem.config.num_samples),
        objective=GenericMCMultiOutputObjective(lambda Y, X=None: tf.objective_values(Y)),
        constraints=tf.botorch_constraints() or None,
        prune_baseline=problem.baseline.shape[0] == 0,
        cache_root=False,
    )
    return _acqf_scorer(problem, acqf)


STRATEGIES: dict[str, StrategyFn] = {
    "random": strategy_random,
    "greedy": strategy_greedy,
    "ucb": strategy_ucb,
    "logei": strategy_logei,
    "thompson": strategy_thompson,
    "target_probability": strategy_target_probability,
    "qlognehvi": strategy_qlognehvi,
}
"""Strategy name -> function building the scorer. ``AcquisitionConfig.strategy`` must be a key."""


def _reference_point(problem: AcquisitionProblem) -> Tensor:
    """``(k,)`` reference point in maximisation space: from the config, else nadir of the feasible labels'
    Pareto front (or of the pool means without labels) minus 10% of its range."""
    tf = problem.transform
    if problem.config.ref_point is not None:
        return tf.to_objective_space(problem.config.ref_point)
    obs = problem.observed_objectives()
    feasible_labels = obs is not None and bool(obs[1].any())
    Y = obs[0][obs[1]] if obs is not None and feasible_labels else tf.objective_values(problem.mean)
    return infer_reference_point(Y[is_non_dominated(Y)])


def _skip_fused_kernel_compilation() -> None:
    """BoTorch 0.18 JIT-compiles an optional C++ kernel (gcc, ~7 s or more, cached under ~/.cache) the first
    time a qLogEHVI-family function is built. The pure-PyTorch path it replaces gives the same values and
    is fast enough for pools of thousands, so selection never starts a compiler."""
    import botorch.acquisition.multi_objective.logei as logei_module

    if getattr(logei_module, "_C", None) is None and hasattr(logei_module, "_load_attempted"):
        logei_module._load_attempted = True


# ---------------------------------------------------------------------------------------- diversity
@dataclass(kw_only=True)
class _DiversityState:
    """Tracks what the diversity rules still allow while a batch is picked."""

    config: DiversityConfig
    groups: list[str] | None = None
    fractions: np.ndarray | None = None  # n x E atomic fractions
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, config: DiversityConfig, keys: Sequence[str] | None, n: int) -> _DiversityState:
        state = cls(config=config)
        if not config.active:
            return state
        if keys is None or len(keys) != n:
            raise ValueError(f"diversity rules need one key (reduced formula) per candidate: {n} expected")
        if config.max_per_key is not None:
            state.groups = [_chemsys(k) for k in keys] if config.group_by == "chemsys" else list(keys)
        if config.min_composition_distance > 0:
            state.fractions = _fractions(keys)
        return state

    def update(self, allowed: np.ndarray, i: int) -> None:
        """Mark ``i`` chosen and disallow what it excludes (in place on ``allowed``, ``(n,)`` bool)."""
        allowed[i] = False
        if self.groups is not None and self.config.max_per_key is not None:
            g = self.groups[i]
            self.counts[g] = self.counts.get(g, 0) + 1
            if self.counts[g] >= self.config.max_per_key:
                allowed &= np.array([h != g for h in self.groups])
        if self.fractions is not None:
            dist = 0.5 * np.abs(self.fractions - self.fractions[i]).sum(axis=1)
            allowed &= dist >= self.config.min_composition_distance


def _composition(formula: str) -> dict[str, float]:
    from pymatgen.core import Composition

    try:
        return {str(el): float(x) for el, x in Composition(formula).fractional_composition.items()}
    except Exception:  # not a formula: its own composition, far from every other
        return {f"?{formula}": 1.0}


def _chemsys(formula: str) -> str:
    return "-".join(sorted(_composition(formula)))


def _fractions(keys: Sequence[str]) -> np.ndarray:
    comps = [_composition(k) for k in keys]
    elements = sorted({el for c in comps for el in c})
    col = {el: j for j, el in enumerate(elements)}
    out = np.zeros((len(comps), len(elements)))
    for i, c in enumerate(comps):
        for el, x in c.items():
            out[i, col[el]] = x
    return out


def _pick(scorer: Scorer, q: int, n: int, diversity: _DiversityState) -> tuple[list[int], list[float]]:
    """Fill up to ``q`` slots with the allowed argmax of the scorer's rank (ties: lowest index)."""
    allowed = np.ones(n, dtype=bool)
    chosen: list[int] = []
    values: list[float] = []
    while len(chosen) < q and allowed.any():
        rank, value = scorer(chosen)
        idx = np.flatnonzero(allowed)
        r = np.nan_to_num(rank.detach().numpy().reshape(rank.shape[0], -1)[idx], nan=-np.inf)
        best = r[:, 0] >= r[:, 0].max() - 1e-12 * max(1.0, abs(float(r[:, 0].max())))
        if r.shape[1] > 1 and np.isfinite(r[:, 0].max()):
            best &= r[:, 1] == r[best, 1].max()
        i = int(idx[int(np.argmax(best))])
        chosen.append(i)
        values.append(float(value[i]))
        diversity.update(allowed, i)
    return chosen, values


# ---------------------------------------------------------------------------------------- entry points
def _as_3d(members: np.ndarray, m: int) -> np.ndarray:
    members = np.asarray(members, dtype=np.float64)
    if members.ndim == 2 and m == 1:
        members = members[..., None]
    if members.ndim != 3 or members.shape[-1] != m:
        raise ValueError(f"posterior members must be K x n x m with m={m} outcomes, got shape {members.shape}")
    if not np.all(np.isfinite(members)):
        raise ValueError("member predictions contain NaN or inf")
    return members


def select(
    posterior_members: np.ndarray | None,
    q: int,
    config: AcquisitionConfig,
    *,
    outcome_names: Sequence[str],
    observed: np.ndarray | None = None,
    keys: Sequence[str] | None = None,
    features: np.ndarray | None = None,
    observed_features: np.ndarray | None = None,
    calibration: tuple[np.ndarray, np.ndarray] | None = None,
) -> Selection:
    """Choose up to ``min(q, n)`` distinct pool candidates.

    Args:
        posterior_members: ``K x n x m`` member predictions on the pool (target units, outcome order =
            ``outcome_names``; ``K x n`` accepted when ``m == 1``). May be None with the GP posterior.
        q: batch size.
        config: strategy, objectives, constraints, diversity, posterior.
        outcome_names: the ``m`` outcome names.
        observed: ``n_obs x m`` labels so far (best_f, qLogNEHVI baseline and reference point, GP training
            targets); rows with NaN are ignored.
        keys: ``n`` reduced formulas of the pool candidates (diversity rules).
        features: ``n x d`` descriptors/embeddings of the pool (GP posterior).
        observed_features: ``n_obs x d`` descriptors of the labelled structures (GP posterior).
        calibration: ``(members K x n_val x m, y n_val x m)`` validation data for ``posterior.recalibrate``.

    Returns:
        The chosen indices in selection order with their acquisition values. The batch is shorter than
        ``q`` only when the pool is, or when the diversity rules exclude every remaining candidate.

    Raises:
        ConfigError: an objective or constraint names an unknown outcome.
        ValueError: inputs of the wrong shape, non-finite predictions, missing inputs for the chosen
            posterior or diversity rules.
    """
    config.check_outcomes(tuple(outcome_names))
    with torch_threads(config.num_threads):
        return _select(
            posterior_members,
            q,
            config,
            outcome_names=tuple(outcome_names),
            observed=observed,
            keys=keys,
            features=features,
            observed_features=observed_features,
            calibration=calibration,
        )


def _select(
    posterior_members: np.ndarray | None,
    q: int,
    config: AcquisitionConfig,
    *,
    outcome_names: tuple[str, ...],
    observed: np.ndarray | None,
    keys: Sequence[str] | None,
    features: np.ndarray | None,
    observed_features: np.ndarray | None,
    calibration: tuple[np.ndarray, np.ndarray] | None,
) -> Selection:
    """:func:`select` with validated outcome names, inside the thread setting."""
    names = outcome_names
    m = len(names)
    notes: list[str] = []
    obs = None
    if observed is not None:
        obs_np = np.asarray(observed, dtype=np.float64)
        if obs_np.ndim == 1 and m == 1:
            obs_np = obs_np[:, None]
        if obs_np.ndim != 2 or obs_np.shape[1] != m:
            raise ValueError(f"observed must be n_obs x m with m={m} outcomes, got shape {obs_np.shape}")
        keep = np.all(np.isfinite(obs_np), axis=1)
        obs = torch.as_tensor(obs_np[keep])
    transform = OutcomeTransform(
        objectives=config.effective_objectives(names), constraints=config.constraints, outcome_names=names
    )
    strategy = config.strategy
    if strategy == "logei" and (obs is None or obs.shape[0] == 0):
        notes.append("logei without labels: ucb used")
        strategy = "ucb"

    members_t: Tensor | None = None
    if config.posterior.kind == "ensemble":
        if posterior_members is None:
            raise ValueError("the ensemble posterior needs posterior_members")
        members = _as_3d(posterior_members, m)
        scale: float | np.ndarray = config.posterior.spread_scale
        if config.posterior.recalibrate:
            if calibration is None:
                notes.append("recalibrate without calibration data: spread_scale used")
            else:
                scale = fit_spread_scale(*calibration)
                notes.append(f"spread scale {np.round(np.atleast_1d(scale), 3).tolist()}")
        members = scale_spread(members, scale)
        n = members.shape[1]
        members_t = torch.as_tensor(members)
        rows = members_t
        if obs is not None and obs.shape[0]:
            rows = torch.cat([members_t, obs.unsqueeze(0).expand(members_t.shape[0], -1, -1)], dim=1)
        model: Model = CandidateSetEnsemble(rows)
    else:
        if features is None or observed_features is None or obs is None:
            raise ValueError("the GP posterior needs features (n x d), observed_features (n_obs x d) and observed")
        X_pool = np.asarray(features, dtype=np.float64)
        X_pool = X_pool.reshape(X_pool.shape[0], -1)
        X_obs = np.asarray(observed_features, dtype=np.float64)
        if X_obs.ndim != 2 or X_obs.shape[0] != keep.size or X_obs.shape[1] != X_pool.shape[1]:
            shapes = f"{X_obs.shape} for {keep.size} labels and features {X_pool.shape}"
            raise ValueError(f"observed_features must be n_obs x d like features, got {shapes}")
        X_obs = X_obs[keep]
        gp = fit_gp(X_obs, obs.numpy(), seed=config.seed, num_threads=config.num_threads)
        n = X_pool.shape[0]
        model = CandidateSetGP(gp, torch.as_tensor(np.concatenate([X_pool, X_obs])))
    if n == 0 or q <= 0:
        return Selection(indices=[], values=[], strategy=strategy, notes=tuple(notes))
    problem = AcquisitionProblem(
        model=model, n_pool=n, q=min(q, n), config=config, transform=transform, observed=obs, members=members_t
    )
    diversity = _DiversityState.build(config.diversity, keys, n)
    torch.manual_seed(config.seed)
    indices, values = _pick(STRATEGIES[strategy](problem), problem.q, n, diversity)
    if len(indices) < min(q, n):
        notes.append(f"diversity rules left {len(indices)} of {min(q, n)} slots fillable")
    return Selection(indices=indices, values=values, strategy=strategy, notes=tuple(notes))


def select_batch(
    members: np.ndarray,
    q: int,
    config: AcquisitionConfig,
    best_f: float | None = None,
    *,
    keys: Sequence[str] | None = None,
) -> Selection:
    """Single-objective selection (the loop's original call); a thin wrapper of :func:`select`.

    Args:
        members: ``K x n`` member predictions of the target on the pool (target units).
        q: batch size.
        config: strategy and its knobs; its objective (if any) names the one outcome.
        best_f: best label observed so far (target units; needed by logei).
        keys: ``n`` reduced formulas for the diversity rules; without them the rules are skipped (noted).
    """
    members = np.asarray(members, dtype=np.float64)
    if members.ndim != 2:
        raise ValueError(f"members must be s x n, got shape {members.shape}")
    if config.strategy == "logei" and best_f is None:
        raise ValueError("logei needs the best observed value (best_f); no labels yet")
    notes: tuple[str, ...] = ()
    if config.diversity.active and keys is None:
        config = config.model_copy(update={"diversity": DiversityConfig()})
        notes = ("diversity rules skipped: no candidate keys given",)
    name = config.objectives[0].name if config.objectives else "target"
    observed = None if best_f is None else np.array([[best_f]])
    selection = select(members, q, config, outcome_names=(name,), observed=observed, keys=keys)
    return dataclasses.replace(selection, notes=notes + selection.notes) if notes else selection
