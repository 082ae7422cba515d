"""Accuracy and uncertainty-calibration metrics for scalar regressors and ensembles; diagnostic plots.

Shapes: ``n`` structures, ``K`` members. Every metric is in the target's units unless said otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import erfinv
from scipy.stats import spearmanr

__all__ = [
    "MIN_STD",
    "calibration_curve",
    "conformal_scale",
    "ensemble_metrics",
    "fit_std_affine",
    "fit_std_scale",
    "gaussian_nll",
    "miscalibration_area",
    "regression_metrics",
    "save_plots",
    "spearman_error_std",
]

#: Floor on predicted standard deviations (target units) so that zero spread gives a finite likelihood.
MIN_STD = 1e-6


def _arrays(*xs: Any) -> list[np.ndarray]:
    out = [np.asarray(x, dtype=np.float64).reshape(-1) for x in xs]
    if len({x.shape for x in out}) != 1:
        raise ValueError(f"arrays must have the same length, got {[x.shape for x in out]}")
    return out


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MAE, RMSE and coefficient of determination R² of ``(n,)`` predictions.

    R² is ``1 - SS_res / SS_tot`` (NaN when the targets are constant).
    """
    y, p = _arrays(y_true, y_pred)
    err = p - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": float(1.0 - (err**2).sum() / ss_tot) if ss_tot > 0 else math.nan,
    }


def gaussian_nll(y_true: Any, mean: Any, std: Any, min_std: float = MIN_STD) -> float:
    """Mean negative log likelihood of ``y`` under ``N(mean, std²)`` (nats per structure).

    ``0.5 * log(2π σ²) + (y - μ)² / (2 σ²)`` averaged over ``n``; σ is floored at ``min_std``.
    """
    y, m, s = _arrays(y_true, mean, std)
    s = np.maximum(s, min_std)
    return float(np.mean(0.5 * np.log(2 * np.pi * s**2) + (y - m) ** 2 / (2 * s**2)))


def calibration_curve(y_true: Any, mean: Any, std: Any, n_levels: int = 99) -> tuple[np.ndarray, np.ndarray]:
    """Expected vs observed coverage of centred Gaussian intervals.

    For each level ``p`` in ``linspace(0.01, 0.99, n_levels)`` the interval ``μ ± z σ`` with
    ``z = √2 erfinv(p)`` should contain a fraction ``p`` of the targets. Returns ``(expected (L,),
    observed (L,))``.
    """
    y, m, s = _arrays(y_true, mean, std)
    s = np.maximum(s, MIN_STD)
    expected = np.linspace(0.01, 0.99, n_levels)
    z = np.sqrt(2.0) * erfinv(expected)  # (L,)
    observed = (np.abs(y - m)[None, :] <= z[:, None] * s[None, :]).mean(axis=1)
    return expected, observed


def miscalibration_area(y_true: Any, mean: Any, std: Any, n_levels: int = 99) -> float:
    """Mean absolute gap between observed and expected coverage over the levels of :func:`calibration_curve`.

    0 is perfect calibration; about 0.5 is the worst (all or none of the targets in every interval).
    """
    expected, observed = calibration_curve(y_true, mean, std, n_levels)
    return float(np.mean(np.abs(observed - expected)))


def spearman_error_std(y_true: Any, mean: Any, std: Any) -> float:
    """Spearman rank correlation of ``|y - μ|`` with ``σ`` (NaN if either is constant)."""
    y, m, s = _arrays(y_true, mean, std)
    if len(y) < 2 or np.all(s == s[0]) or np.all(np.abs(y - m) == np.abs(y - m)[0]):
        return math.nan
    return float(spearmanr(np.abs(y - m), s).statistic)


def fit_std_scale(y_true: Any, mean: Any, std: Any, min_std: float = MIN_STD) -> float:
    """Scale factor ``c`` for the std that minimises the Gaussian NLL on (validation) data.

    Closed form: ``c = sqrt(mean((y - μ)² / σ²))``. Apply it as ``σ' = c σ``.
    """
    y, m, s = _arrays(y_true, mean, std)
    s = np.maximum(s, min_std)
    return float(np.sqrt(np.mean((y - m) ** 2 / s**2)))


def fit_std_affine(y_true: Any, mean: Any, std: Any, min_std: float = MIN_STD) -> tuple[float, float]:
    """Scale ``a`` and floor ``b`` (target units) of ``σ' = sqrt((a σ)² + b²)`` minimising the Gaussian NLL.

    Fitted on (validation) data ``(n,)`` by L-BFGS on ``log a, log b``, started from :func:`fit_std_scale`. The
    floor covers the error a spread of zero does not see (members that agree and are all wrong), so it lowers
    NLL and miscalibration where a pure scale must inflate every σ; it does not change the ranking of σ.
    """
    from scipy.optimize import minimize

    y, m, s = _arrays(y_true, mean, std)
    s = np.maximum(s, min_std)
    r2 = (y - m) ** 2

    def nll(p: np.ndarray) -> float:
        var = (math.exp(p[0]) * s) ** 2 + math.exp(p[1]) ** 2
        return float(np.mean(0.5 * np.log(var) + 0.5 * r2 / var))

    start = np.array(
        [math.log(max(fit_std_scale(y, m, s, min_std), min_std)), math.log(max(np.sqrt(r2.mean()), min_std) / 3)]
    )
    best = minimize(nll, start, method="L-BFGS-B", bounds=[(-20.0, 20.0), (math.log(min_std), 20.0)]).x
    return float(math.exp(best[0])), float(math.exp(best[1]))


def conformal_scale(y_true: Any, mean: Any, std: Any, coverage: float = 0.6827, min_std: float = MIN_STD) -> float:
    """Split-conformal factor ``q``: the ``coverage`` quantile of ``|y - μ| / σ`` on calibration data ``(n,)``
    (finite-sample corrected), so that ``μ ± q σ`` covers about ``coverage`` of new values."""
    y, m, s = _arrays(y_true, mean, std)
    scores = np.sort(np.abs(y - m) / np.maximum(s, min_std))
    n = len(scores)
    if n == 0:
        raise ValueError("conformal calibration needs at least one value")
    rank = min(n, math.ceil((n + 1) * coverage))
    return float(scores[rank - 1])


def ensemble_metrics(y_true: Any, members: Any, std_scale: float = 1.0) -> dict[str, float]:
    """Accuracy of the ensemble mean and calibration of its (scaled) std, for ``(K, n)`` member predictions.

    Keys: ``mae``, ``rmse``, ``r2`` (of the mean), ``member_mae_mean`` (mean of the members' MAEs),
    ``mean_std`` (mean predicted σ after scaling), ``nll``, ``miscalibration_area``, ``spearman``
    (|error| vs σ), ``std_scale``.
    """
    members = np.asarray(members, dtype=np.float64)
    if members.ndim != 2:
        raise ValueError(f"members must be (K, n), got {members.shape}")
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    mean = members.mean(axis=0)
    std = members.std(axis=0) * std_scale
    out = regression_metrics(y, mean)
    out.update(
        {
            "member_mae_mean": float(np.mean([np.abs(row - y).mean() for row in members])),
            "mean_std": float(std.mean()),
            "nll": gaussian_nll(y, mean, std),
            "miscalibration_area": miscalibration_area(y, mean, std),
            "spearman": spearman_error_std(y, mean, std),
            "std_scale": float(std_scale),
        }
    )
    return out


def save_plots(
    directory: Path | str,
    y_true: Any,
    mean: Any,
    std: Any | None = None,
    *,
    label: str = "target",
    unit: str = "",
    prefix: str = "",
) -> list[Path]:
    """Parity plot, error histogram and (with ``std``) calibration plot as PNG files in ``directory``.

    Returns the written paths: ``<prefix>parity.png``, ``<prefix>errors.png``, ``<prefix>calibration.png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    y, m = _arrays(y_true, mean)
    units = f" ({unit})" if unit else ""
    paths = []

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if std is not None:
        ax.errorbar(y, m, yerr=np.asarray(std), fmt="none", ecolor="0.75", lw=0.5, zorder=1)
    ax.scatter(y, m, s=6, alpha=0.6, zorder=2)
    lo, hi = float(min(y.min(), m.min())), float(max(y.max(), m.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    r = regression_metrics(y, m)
    ax.set(
        xlabel=f"true {label}{units}", ylabel=f"predicted {label}{units}", title=f"MAE {r['mae']:.3g}, R² {r['r2']:.3f}"
    )
    fig.tight_layout()
    paths.append(directory / f"{prefix}parity.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.hist(m - y, bins=50)
    ax.set(xlabel=f"predicted - true{units}", ylabel="structures")
    fig.tight_layout()
    paths.append(directory / f"{prefix}errors.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    if std is not None:
        expected, observed = calibration_curve(y, m, std)
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(expected, observed, label="ensemble")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
        ax.fill_between(expected, expected, observed, alpha=0.2)
        ax.set(
            xlabel="expected fraction in interval",
            ylabel="observed fraction",
            title=f"miscalibration area {miscalibration_area(y, m, std):.3f}",
        )
        ax.legend()
        fig.tight_layout()
        paths.append(directory / f"{prefix}calibration.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
