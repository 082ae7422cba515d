"""Built-in strategies that maximise a BoTorch Monte Carlo acquisition function over the pool.

Each builds the acquisition function on the problem's model (inputs: ``batch x q x 1`` row indices,
outputs ``m``) and wraps it with :func:`acqf_scorer`: BoTorch's sequential greedy optimisation of a joint
``q``-batch value, evaluated on the ``n`` pool candidates with the ones already chosen as pending points.

- ``ucb``: qUpperConfidenceBound(``beta``); constraints via a ``ConstrainedMCObjective``.
- ``logei``: qLogExpectedImprovement over the best feasible label; BoTorch ``constraints``.
- ``qlognehvi``: qLogNoisyExpectedHypervolumeImprovement over the ``k >= 2`` objectives.

Shapes: ``n`` pool candidates, ``n_obs`` labelled structures, ``m`` outcomes, ``k`` objectives.
"""

from __future__ import annotations

import torch
from botorch.acquisition import qLogExpectedImprovement, qUpperConfidenceBound
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.acquisition.multi_objective.objective import GenericMCMultiOutputObjective
from botorch.acquisition.objective import ConstrainedMCObjective
from botorch.utils.multi_objective.hypervolume import infer_reference_point
from botorch.utils.multi_objective.pareto import is_non_dominated
from torch import Tensor

from acquisition.problem import AcquisitionProblem, Scorer, Scores
from acquisition.registry import STRATEGIES

__all__ = ["acqf_scorer", "strategy_logei", "strategy_qlognehvi", "strategy_ucb"]

_CHUNK = 1024  # candidates per acquisition-function evaluation


def acqf_scorer(problem: AcquisitionProblem, acqf: AcquisitionFunction) -> Scorer:
    """Sequential greedy: the acquisition value of adding each candidate to the pending ones.

    The rank is ``n x 2``: the value with the pending points, then (tie-break) the value on its own, e.g.
    for qUCB once the pending points already hold every sample's maximum. The value reported is ``(n,)``.
    """

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


@STRATEGIES.register("ucb")
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
    return acqf_scorer(problem, acqf)


@STRATEGIES.register("logei")
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
    return acqf_scorer(problem, acqf)


@STRATEGIES.register("qlognehvi")
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
    return acqf_scorer(problem, acqf)


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
