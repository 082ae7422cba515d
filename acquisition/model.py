"""BoTorch models over a fixed, discrete candidate set, and ensemble recalibration.

The surrogate is evaluated once per round on every candidate; BoTorch then works with the candidates'
*indices* as one-dimensional inputs (``batch x q x 1`` floats) and looks up the posterior there. Two
models share that contract:

- :class:`CandidateSetEnsemble`: the GNN deep ensemble's member predictions (``K x n x m``) as a BoTorch
  ``EnsembleModel``, whose posterior is an ``EnsemblePosterior`` (samples are members).
- :class:`CandidateSetGP`: a ``SingleTaskGP`` fitted on descriptors/embeddings ``X`` (``n_train x d``)
  and labels, exposed over the rows of a fixed input matrix; its posterior is a GPyTorch posterior.

Rows ``n`` of either model may include the observed (labelled) structures after the pool, so that
acquisition functions with a baseline (qLogNEHVI) can refer to them by index too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from botorch.acquisition.objective import PosteriorTransform
from botorch.models.ensemble import EnsembleModel
from botorch.models.model import Model
from botorch.posteriors import Posterior
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.sampling.index_sampler import IndexSampler
from torch import Tensor

from core.threads import torch_threads

__all__ = [
    "CandidateSetEnsemble",
    "CandidateSetGP",
    "MemberSampler",
    "fit_gp",
    "fit_spread_scale",
    "fit_spread_scale_moments",
    "scale_spread",
]


def _indices(X: Tensor) -> Tensor:
    """``batch x q x 1`` float indices -> ``batch x q`` long indices."""
    return X[..., 0].round().long()


class CandidateSetEnsemble(EnsembleModel):
    """Ensemble predictions on ``n`` candidates exposed as a BoTorch model.

    Args:
        members: ``K x n`` (one outcome) or ``K x n x m`` tensor of member predictions (target units).
    """

    def __init__(self, members: Tensor) -> None:
        super().__init__()
        members = torch.as_tensor(members)
        if members.dim() == 2:
            members = members.unsqueeze(-1)
        if members.dim() != 3:
            raise ValueError(f"members must be K x n or K x n x m, got shape {tuple(members.shape)}")
        self.members = members.to(torch.double)
        self._num_outputs = int(members.shape[-1])

    @property
    def n_candidates(self) -> int:
        """Number of candidates ``n``."""
        return int(self.members.shape[1])

    def choices(self) -> Tensor:
        """The ``n x 1`` input tensor of candidate indices."""
        return torch.arange(self.n_candidates, dtype=torch.double).unsqueeze(-1)

    def forward(self, X: Tensor) -> Tensor:
        """Look up predictions.

        Args:
            X: ``batch_shape x q x 1`` candidate indices (as floats).

        Returns:
            ``batch_shape x K x q x m`` member predictions.
        """
        values = self.members[:, _indices(X)]  # K x batch... x q x m
        return values.movedim(0, -3)


class CandidateSetGP(Model):
    """A fitted GP (any BoTorch model on ``d``-dimensional inputs) looked up by row of ``X_rows``.

    Args:
        model: a fitted model taking ``batch x q x d`` inputs, with ``m`` outputs.
        X_rows: ``n x d`` inputs; index ``i`` stands for ``X_rows[i]``.
    """

    def __init__(self, model: Model, X_rows: Tensor) -> None:
        super().__init__()
        if X_rows.dim() != 2:
            raise ValueError(f"X_rows must be n x d, got shape {tuple(X_rows.shape)}")
        self.model = model
        self.X_rows = X_rows.to(torch.double)

    @property
    def num_outputs(self) -> int:
        """``m``, the GP's outputs."""
        return int(self.model.num_outputs)

    @property
    def batch_shape(self) -> torch.Size:
        """Empty: one model."""
        return torch.Size([])

    @property
    def n_candidates(self) -> int:
        """Number of rows ``n``."""
        return int(self.X_rows.shape[0])

    def choices(self) -> Tensor:
        """The ``n x 1`` input tensor of row indices."""
        return torch.arange(self.n_candidates, dtype=torch.double).unsqueeze(-1)

    def posterior(
        self,
        X: Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform: PosteriorTransform | None = None,
        **kwargs: Any,
    ) -> Posterior:
        """GP posterior at the rows ``X`` (``batch x q x 1`` indices): over ``batch x q x m`` outputs."""
        return self.model.posterior(
            self.X_rows[_indices(X)],
            output_indices=output_indices,
            observation_noise=observation_noise,
            posterior_transform=posterior_transform,
            **kwargs,
        )


def fit_gp(train_X: np.ndarray, train_Y: np.ndarray, *, seed: int = 0, num_threads: int = 1) -> Model:
    """Fit a BoTorch ``SingleTaskGP`` (Matern-5/2 ARD, inputs normalised, outcomes standardised).

    Args:
        train_X: ``n_train x d`` descriptors or embeddings of the labelled structures.
        train_Y: ``n_train x m`` labels (target units), or ``n_train`` for one outcome.
        seed: torch seed for the optimiser's random restarts.
        num_threads: torch threads during the fit (restored afterwards).

    Returns:
        The fitted model (``m`` outputs, one independent GP per outcome sharing the inputs).
    """
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Normalize, Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    X = torch.as_tensor(np.asarray(train_X, dtype=np.float64))
    Y = torch.as_tensor(np.asarray(train_Y, dtype=np.float64))
    if Y.dim() == 1:
        Y = Y.unsqueeze(-1)
    if X.dim() != 2 or Y.dim() != 2 or X.shape[0] != Y.shape[0]:
        shapes = f"{tuple(X.shape)} and {tuple(Y.shape)}"
        raise ValueError(f"train_X must be n x d and train_Y n x m with the same n, got {shapes}")
    if X.shape[0] < 2:
        raise ValueError(f"a GP needs at least 2 labelled structures, got {X.shape[0]}")
    if not (torch.isfinite(X).all() and torch.isfinite(Y).all()):
        raise ValueError("GP training data contain NaN or inf")
    torch.manual_seed(seed)
    gp = SingleTaskGP(X, Y, input_transform=Normalize(d=X.shape[-1]), outcome_transform=Standardize(m=Y.shape[-1]))
    with torch_threads(num_threads):
        fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    gp.eval()
    return gp


def fit_spread_scale(members: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Recalibration factor ``s`` per outcome from validation data.

    Minimises the Gaussian negative log likelihood of ``(y - mean) / (s * std)`` over ``s``; its exact
    minimiser is ``s = sqrt(mean(((y - mean) / std)^2))`` over the points with ``std > 0`` (and a finite ``y``).

    Args:
        members: ``K x n_val`` or ``K x n_val x m`` member predictions on the validation structures.
        y: ``n_val`` or ``n_val x m`` true values (NaN: no label for that outcome).

    Returns:
        ``(m,)`` scale factors (1 for an outcome without any usable pair).
    """
    members = np.asarray(members, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if members.ndim == 2:
        members = members[..., None]
    if y.ndim == 1:
        y = y[:, None]
    if members.ndim != 3 or y.shape != members.shape[1:]:
        raise ValueError(f"members must be K x n x m and y n x m, got {members.shape} and {y.shape}")
    scale, _ = fit_spread_scale_moments(members.mean(axis=0), members.std(axis=0), y)
    return scale


def fit_spread_scale_moments(mean: np.ndarray, std: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_spread_scale` from the predictive mean and std (e.g. recorded when a batch was acquired).

    Args:
        mean: ``n_val x m`` (or ``n_val``) predictive means.
        std: ``n_val x m`` population standard deviations of the members (``ddof=0``).
        y: ``n_val x m`` true values; a pair with a non-finite value or ``std <= 0`` is left out.

    Returns:
        ``(m,)`` factors ``sqrt(mean(z^2))`` with ``z = (y - mean) / std`` (1 where no pair is left; at least
        1e-6) and ``(m,)`` the number of pairs each was fitted on.
    """
    mean, std, y = (np.asarray(a, dtype=np.float64) for a in (mean, std, y))
    if y.ndim == 1:
        mean, std, y = mean.reshape(-1, 1), std.reshape(-1, 1), y.reshape(-1, 1)
    if y.ndim != 2 or mean.shape != y.shape or std.shape != y.shape:
        raise ValueError(f"mean, std and y must all be n x m, got {mean.shape}, {std.shape} and {y.shape}")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(mean) & np.isfinite(std) & np.isfinite(y) & (std > 0)
    scale = np.ones(y.shape[1])
    counts = ok.sum(axis=0).astype(int)
    for j in np.flatnonzero(counts):
        z = (y[ok[:, j], j] - mean[ok[:, j], j]) / std[ok[:, j], j]
        scale[j] = max(float(np.sqrt(np.mean(z**2))), 1e-6)
    return scale, counts


def scale_spread(members: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    """Members with their deviation from the ensemble mean multiplied by ``scale``.

    Args:
        members: ``K x n x m`` member predictions.
        scale: a float or ``(m,)`` factors.

    Returns:
        ``K x n x m``: ``mean + scale * (members - mean)``; the mean is unchanged and the std multiplied.
    """
    members = np.asarray(members, dtype=np.float64)
    mean = members.mean(axis=0, keepdims=True)
    return mean + np.asarray(scale, dtype=np.float64) * (members - mean)


class MemberSampler(IndexSampler):
    """Enumerates the ``K`` members of an ``EnsemblePosterior`` once each (``sample_shape = [K]``).

    Monte Carlo acquisition values then equal their exact expectation under the ensemble (a uniform
    mixture of its members), deterministically, at ``K`` evaluations instead of ``num_samples``.

    Args:
        n_members: ``K``.
    """

    def __init__(self, n_members: int) -> None:
        super().__init__(sample_shape=torch.Size([n_members]), seed=0)

    def _construct_base_samples(self, posterior: EnsemblePosterior) -> None:
        shape = self.sample_shape + posterior.batch_shape
        if posterior.ensemble_size != self.sample_shape[0]:
            raise ValueError(f"MemberSampler for {self.sample_shape[0]} members got {posterior.ensemble_size}")
        if self.base_samples is None or self.base_samples.shape != shape:
            index = torch.arange(self.sample_shape[0], device=posterior.device)
            base = index.reshape(-1, *([1] * len(posterior.batch_shape))).expand(shape).clone()
            self.register_buffer("base_samples", base)
