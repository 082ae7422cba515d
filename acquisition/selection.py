"""Batch selection over a discrete candidate pool: :func:`select` and :func:`select_batch`.

:func:`select` builds the posterior model (ensemble members or a GP on descriptors), the objectives and
constraints, and the :class:`~acquisition.problem.AcquisitionProblem`; it then looks the configured
strategy up in :data:`~acquisition.registry.STRATEGIES` and picks the batch one slot at a time (the
best allowed candidate, then the next given the ones already chosen, which is BoTorch's sequential
greedy optimisation of a joint ``q``-batch acquisition), skipping candidates the diversity rules exclude.

Shapes: ``K`` ensemble members, ``n`` pool candidates, ``n_obs`` labelled structures, ``m`` outcomes,
``d`` descriptor dimensions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from botorch.models.model import Model
from torch import Tensor

from acquisition.config import AcquisitionConfig, DiversityConfig
from acquisition.diversity import DiversityState
from acquisition.model import CandidateSetEnsemble, CandidateSetGP, fit_gp, fit_spread_scale, scale_spread
from acquisition.objectives import OutcomeTransform
from acquisition.problem import AcquisitionProblem, Scorer
from acquisition.registry import STRATEGIES
from core.threads import torch_threads

__all__ = ["Selection", "select", "select_batch"]


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
    spread_scale: tuple[float, ...] = ()
    """The factor applied to each outcome's member spread (ensemble posterior; empty for the GP)."""


def _pick(scorer: Scorer, q: int, n: int, diversity: DiversityState) -> tuple[list[int], list[float]]:
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


def _as_3d(members: np.ndarray, m: int) -> np.ndarray:
    """``K x n x m`` float64 members (``K x n`` accepted when ``m == 1``); ValueError if not finite."""
    members = np.asarray(members, dtype=np.float64)
    if members.ndim == 2 and m == 1:
        members = members[..., None]
    if members.ndim != 3 or members.shape[-1] != m:
        raise ValueError(f"posterior members must be K x n x m with m={m} outcomes, got shape {members.shape}")
    if not np.all(np.isfinite(members)):
        raise ValueError("member predictions contain NaN or inf")
    return members


def _gp_inputs(X_obs: np.ndarray, X_pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GP inputs from descriptors: a missing value (NaN/inf, e.g. no oxidation states found) becomes its column's
    mean over the labelled rows, and columns constant over the labelled rows are dropped (the fit cannot set their
    length scales, and the input normalisation, learnt on the labelled rows, would leave them in raw units)."""
    finite = np.isfinite(X_obs)
    counts = finite.sum(axis=0)
    fill = np.where(finite, X_obs, 0.0).sum(axis=0) / np.maximum(counts, 1)
    X_obs = np.where(finite, X_obs, fill)
    varies = (counts > 0) & (np.ptp(X_obs, axis=0) > 1e-8) if len(X_obs) else np.zeros(X_obs.shape[1], dtype=bool)
    if not varies.any():
        raise ValueError("the labelled structures' features are all equal: nothing for a GP to fit")
    X_pool = np.where(np.isfinite(X_pool), X_pool, fill)
    return X_obs[:, varies], X_pool[:, varies]


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
    spread_scale: Sequence[float] | np.ndarray | None = None,
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
        spread_scale: ``m`` factors the caller fitted already (the loop fits them on held-out predictions, see
            :mod:`loop.stages.acquire`): applied instead of ``posterior.spread_scale`` and ``calibration``.

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
            spread_scale=spread_scale,
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
    spread_scale: Sequence[float] | np.ndarray | None,
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
    applied: tuple[float, ...] = ()
    if config.posterior.kind == "ensemble":
        if posterior_members is None:
            raise ValueError("the ensemble posterior needs posterior_members")
        members = _as_3d(posterior_members, m)
        scale: float | np.ndarray = config.posterior.spread_scale
        if spread_scale is not None:
            scale = np.asarray(spread_scale, dtype=np.float64)
            if scale.shape != (m,) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
                raise ValueError(f"spread_scale must be {m} positive finite factors, got {scale.tolist()}")
        elif config.posterior.recalibrate:
            if calibration is None:
                notes.append("recalibrate without calibration data: spread_scale used")
            else:
                scale = fit_spread_scale(*calibration)
                notes.append(f"spread scale {np.round(np.atleast_1d(scale), 3).tolist()}")
        members = scale_spread(members, scale)
        applied = tuple(float(x) for x in np.broadcast_to(np.asarray(scale, dtype=np.float64), (m,)))
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
        X_obs, X_pool = _gp_inputs(X_obs[keep], X_pool)
        gp = fit_gp(X_obs, obs.numpy(), seed=config.seed, num_threads=config.num_threads)
        n = X_pool.shape[0]
        model = CandidateSetGP(gp, torch.as_tensor(np.concatenate([X_pool, X_obs])))
    if n == 0 or q <= 0:
        return Selection(indices=[], values=[], strategy=strategy, notes=tuple(notes), spread_scale=applied)
    problem = AcquisitionProblem(
        model=model, n_pool=n, q=min(q, n), config=config, transform=transform, observed=obs, members=members_t
    )
    diversity = DiversityState.build(config.diversity, keys, n)
    torch.manual_seed(config.seed)
    indices, values = _pick(STRATEGIES.get(strategy)(problem), problem.q, n, diversity)
    if len(indices) < min(q, n):
        notes.append(f"diversity rules left {len(indices)} of {min(q, n)} slots fillable")
    return Selection(indices=indices, values=values, strategy=strategy, notes=tuple(notes), spread_scale=applied)


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
