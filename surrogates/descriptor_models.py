"""Descriptor ensembles: K gradient-boosting members on :func:`surrogates.descriptors.describe` features.

Two kinds, both deterministic for a seed (no wall-time planning):

- ``hurdle`` for zero-inflated targets (band gaps: 0 for metals). Member ``k`` is a classifier giving
  ``p_k(x) = P(y > 0)`` and a regressor giving ``mu_k(x) = E[y | y > 0]``; its expected value is ``p_k mu_k``.
  The predictive distribution is the mixture over members of "exactly 0 with probability ``1 - p_k``, else a
  log-normal with mean ``mu_k`` and standard deviation ``sigma``" (strictly positive), with ``sigma`` (target
  units) the RMS residual of the positive part on calibration data; its mean is ``mean_k p_k mu_k`` and its
  second moment ``mean_k p_k (mu_k^2 + sigma^2)``. :meth:`DescriptorEnsemble.sample` draws from that mixture.
- ``regressor``: K regressors (bootstrap resamples when ``bootstrap``); mean and spread over members, the spread
  times a scale fitted on calibration data (:func:`surrogates.metrics.fit_std_scale`); samples are Gaussian.
- ``crossfit`` (features ``describe+chgnet``): K-fold cross-fitting. Member ``k`` leaves out fold ``k`` and is a
  ridge line on CHGNet's energy and the element fractions (learned elemental references: the target on the data's
  own scale) plus gradient boosting on the residual from the descriptors, CHGNet's crystal feature and the
  line's value. The out-of-fold residuals train an *error model* (gradient boosting on the same inputs plus the
  prediction and its distance from the line) that predicts a quantile ``error_quantile`` of the absolute error
  of each input (``absolute_error`` loss: the median); with ``q`` that quantile of ``|z|`` for a standard normal
  (1.0 for 68.3 %, 0.6745 for the median) the std is ``c sqrt((e(x) / q)^2 + s(x)^2)``, ``e`` the error model,
  ``s`` the member spread and ``c`` fitted on calibration data. Samples are Gaussian. Measured on perov_5
  ``heat_all`` (seed-0 split, see the README): MAE 0.076 eV/atom (0.14x dummy) and Spearman(abs error, std)
  about 0.3, against 0.10 eV/atom and 0.18 for five MEGNets.

Members differ by seed and by the random feature subset of every split (``max_features``), and with
``bootstrap`` by their resample.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pymatgen.core import Composition, Structure

from core.signing import read_signed, write_signed

from .descriptors import DESCRIPTOR_NAMES, describe
from .metrics import MIN_STD, fit_std_scale

__all__ = [
    "CHGNET_GB",
    "DESCRIPTOR_ARCHITECTURES",
    "GB_ENSEMBLE",
    "ZERO_INFLATED_FRACTION",
    "DescriptorEnsemble",
    "make_descriptor_ensemble",
    "resolve_architecture",
    "zero_fraction",
]

Item = Structure | Composition | str
MIN_POSITIVE = 1e-3
"""Smallest mean of the positive part used for a hurdle draw (target units, e.g. eV)."""

#: Architecture names of ``battery-discovery train --architecture`` -> ensemble kind.
Kind = Literal["hurdle", "regressor", "crossfit"]
DESCRIPTOR_ARCHITECTURES: dict[str, Kind] = {
    "hurdle-gb": "hurdle",
    "gb-ensemble": "regressor",
    "chgnet-gb": "crossfit",
}


@dataclass
class DescriptorEnsemble:
    """K histogram-gradient-boosting members on composition + structure descriptors (see the module docstring).

    Attributes:
        kind: ``hurdle`` (zero-inflated target), ``regressor`` or ``crossfit`` (needs ``describe+chgnet``).
        n_members: K.
        max_iter, learning_rate, max_leaf_nodes, max_features, l2_regularization, min_samples_leaf: scikit-learn
            histogram-gradient-boosting settings of every member (defaults chosen by 5-fold cross-validation on
            MP-20 band gaps).
        bootstrap: each member fits a bootstrap resample (else all members see all data).
        seed: member k uses ``seed + k``.
        sigma: noise of the positive part (hurdle, target units), set by :meth:`calibrate`.
        std_scale: factor on the member spread (regressor), set by :meth:`calibrate`.
        features: ``describe`` (143 composition, oxidation-state and structure descriptors), ``baseline`` (the
            35 descriptors of ``surrogates.baseline.featurize``; better on small data such as OBELiX) or
            ``describe+chgnet`` (``describe`` then :func:`surrogates.potential_features.potential_features`).
        error_loss, error_quantile, error_max_iter, error_learning_rate, error_min_samples_leaf: settings of the
            ``crossfit`` kind's error model (``quantile`` predicts that quantile of the absolute error, read as a
            std through the half-normal's quantile; ``absolute_error`` its median).
        error_model: the ``crossfit`` kind's model of the absolute error, set by :meth:`fit`.
        num_threads: OpenMP threads of scikit-learn while fitting and predicting (None: the library's default,
            every core); results do not depend on it. Default 1: on a busy 2-core machine two processes with
            two OpenMP threads each slow down many times over (spinning threads).
    """

    kind: Kind = "hurdle"
    n_members: int = 8
    max_iter: int = 600
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    max_features: float = 0.5
    l2_regularization: float = 1.0
    min_samples_leaf: int = 10
    bootstrap: bool = False
    seed: int = 0
    sigma: float = 0.0
    std_scale: float = 1.0
    num_threads: int | None = 1
    features: Literal["describe", "baseline", "describe+chgnet"] = "describe"
    members: list[tuple[Any, Any]] = field(default_factory=list, repr=False)
    error_loss: Literal["absolute_error", "quantile"] = "absolute_error"
    error_quantile: float = 0.5
    error_max_iter: int = 300
    error_learning_rate: float = 0.03
    error_min_samples_leaf: int = 40
    error_model: Any = field(default=None, repr=False)

    # ----------------------------------------------------------------------------- fitting
    def _boost(self, classifier: bool, seed: int) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if classifier else HistGradientBoostingRegressor
        return cls(  # type: ignore[operator]
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            max_features=self.max_features,
            l2_regularization=self.l2_regularization,
            min_samples_leaf=self.min_samples_leaf,
            early_stopping=False,
            random_state=seed,
        )

    def featurize(self, items: Sequence[Item]) -> np.ndarray:
        """Descriptors ``(n, D)`` of ``items`` in this ensemble's feature set."""
        if self.features == "baseline":
            from .baseline import featurize

            return featurize(items)
        if self.features == "describe+chgnet":
            from .potential_features import potential_features

            return np.concatenate([describe(items), potential_features(items)], axis=1)
        return describe(items)

    def _threads(self) -> Any:
        from contextlib import nullcontext

        from threadpoolctl import threadpool_limits

        return nullcontext() if self.num_threads is None else threadpool_limits(limits=self.num_threads)

    def fit(self, items: Sequence[Item], y: Sequence[float], x: np.ndarray | None = None) -> DescriptorEnsemble:
        """Fit the K members on ``items`` with targets ``y`` ``(n,)`` (``x``: precomputed descriptors ``(n, D)``)."""
        with self._threads():
            return self._fit(self.featurize(items) if x is None else x, y)

    def _fit(self, x: np.ndarray, y: Sequence[float]) -> DescriptorEnsemble:
        y_arr = np.asarray(y, dtype=np.float64)
        if self.kind == "hurdle" and (np.any(y_arr < 0) or (y_arr > 0).sum() < 2 or (y_arr == 0).sum() < 1):
            raise ValueError("a hurdle model needs targets >= 0 with at least one zero and two positive values")
        if self.kind == "crossfit":
            return self._fit_crossfit(x, y_arr)
        rng = np.random.default_rng(self.seed)
        self.members = []
        for k in range(self.n_members):
            idx = np.sort(rng.integers(0, len(y_arr), len(y_arr))) if self.bootstrap else np.arange(len(y_arr))
            xs, ys = x[idx], y_arr[idx]
            if self.kind == "hurdle":
                clf = self._boost(True, self.seed + k).fit(xs, ys > 0)
                pos = ys > 0
                reg = self._boost(False, self.seed + k).fit(xs[pos], ys[pos])
                self.members.append((clf, reg))
            else:
                self.members.append((None, self._boost(False, self.seed + k).fit(xs, ys)))
        return self

    # ------------------------------------------------------------------ the crossfit kind
    def _check_crossfit(self, x: np.ndarray) -> None:
        from .potential_features import POTENTIAL_FEATURE_NAMES

        if self.features != "describe+chgnet" or x.shape[1] != len(DESCRIPTOR_NAMES) + len(POTENTIAL_FEATURE_NAMES):
            raise ValueError("the crossfit kind needs the describe+chgnet features")

    @staticmethod
    def _line_inputs(x: np.ndarray) -> np.ndarray:
        """``(n, 1 + 103)``: CHGNet energy (0 where missing) and element fractions, the ridge line's inputs."""
        from .potential_features import ENERGY_COLUMN, FRACTION_COLUMNS

        d = len(DESCRIPTOR_NAMES)
        energy = np.nan_to_num(x[:, d + ENERGY_COLUMN : d + ENERGY_COLUMN + 1])
        fractions = x[:, d + FRACTION_COLUMNS.start : d + FRACTION_COLUMNS.stop]
        return np.concatenate([energy, np.nan_to_num(fractions)], axis=1)

    @staticmethod
    def _boost_inputs(x: np.ndarray, line: np.ndarray) -> np.ndarray:
        """Descriptors and CHGNet energy and feature (no fractions) and the line's value ``(n,)``."""
        from .potential_features import FRACTION_COLUMNS

        d = len(DESCRIPTOR_NAMES)
        return np.concatenate([x[:, : d + FRACTION_COLUMNS.start], line[:, None]], axis=1)

    def _error_inputs(self, boost_inputs: np.ndarray, mean: np.ndarray, line: np.ndarray) -> np.ndarray:
        return np.concatenate([boost_inputs, mean[:, None], np.abs(mean - line)[:, None]], axis=1)

    def _fit_crossfit(self, x: np.ndarray, y: np.ndarray) -> DescriptorEnsemble:
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.linear_model import Ridge

        self._check_crossfit(x)
        if len(y) < 2 * self.n_members or self.n_members < 2:
            raise ValueError(f"the crossfit kind needs >= 2 members and >= {2 * self.n_members} records")
        folds = np.array_split(np.random.default_rng(self.seed).permutation(len(y)), self.n_members)
        lin_x = self._line_inputs(x)
        oof = np.zeros(len(y))
        oof_line = np.zeros(len(y))
        self.members = []
        for k, held in enumerate(folds):
            fit = np.setdiff1d(np.arange(len(y)), held)
            ridge = Ridge(alpha=1e-3).fit(lin_x[fit], y[fit])
            line = ridge.predict(lin_x)
            boost = self._boost(False, self.seed + k).fit(self._boost_inputs(x[fit], line[fit]), y[fit] - line[fit])
            oof_line[held] = line[held]
            oof[held] = line[held] + boost.predict(self._boost_inputs(x[held], line[held]))
            self.members.append((ridge, boost))
        self.error_model = HistGradientBoostingRegressor(
            loss=self.error_loss,
            quantile=self.error_quantile if self.error_loss == "quantile" else None,
            max_iter=self.error_max_iter,
            learning_rate=self.error_learning_rate,
            min_samples_leaf=self.error_min_samples_leaf,
            random_state=self.seed,
        ).fit(self._error_inputs(self._boost_inputs(x, oof_line), oof, oof_line), np.abs(oof - y))
        return self

    def _crossfit_parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Member predictions ``(K, n)`` and the error model's median absolute error ``(n,)``."""
        lin_x = self._line_inputs(x)
        lines = np.stack([ridge.predict(lin_x) for ridge, _ in self.members])
        boosts = [boost for _, boost in self.members]
        mu = np.stack([ln + boost.predict(self._boost_inputs(x, ln)) for ln, boost in zip(lines, boosts, strict=True)])
        line = lines.mean(0)
        err = self.error_model.predict(self._error_inputs(self._boost_inputs(x, line), mu.mean(0), line))
        return mu, np.maximum(err, 0.0)

    def _crossfit_std(self, mu: np.ndarray, err: np.ndarray) -> np.ndarray:
        """Uncalibrated std ``(n,)`` from member predictions ``(K, n)`` and median absolute errors ``(n,)``."""
        return np.sqrt((err / self._half_normal_quantile()) ** 2 + mu.var(0))

    def _half_normal_quantile(self) -> float:
        """``q`` with ``P(|z| <= q) = error_quantile`` for a standard normal (0.6745 for the median)."""
        from scipy.stats import norm

        level = 0.5 if self.error_loss == "absolute_error" else self.error_quantile
        return float(norm.ppf(0.5 + level / 2))

    def calibrate(self, items: Sequence[Item], y: Sequence[float], x: np.ndarray | None = None) -> DescriptorEnsemble:
        """Fit ``sigma`` (hurdle: RMS residual of ``mean_k mu_k`` on positive targets) or ``std_scale``
        (regressor) on held-out data."""
        x = self.featurize(items) if x is None else x
        y_arr = np.asarray(y, dtype=np.float64)
        if self.kind == "crossfit":
            with self._threads():
                mu, err = self._crossfit_parts(x)
            self.std_scale = fit_std_scale(y_arr, mu.mean(0), self._crossfit_std(mu, err))
            return self
        _, mu = self.components(items, x=x)
        if self.kind == "hurdle":
            pos = y_arr > 0
            if pos.any():
                self.sigma = float(np.sqrt(np.mean((mu.mean(0)[pos] - y_arr[pos]) ** 2)))
        else:
            self.std_scale = fit_std_scale(y_arr, mu.mean(0), mu.std(0))
        return self

    # -------------------------------------------------------------------------- prediction
    def components(self, items: Sequence[Item], x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per member ``p`` ``(K, n)`` (probability of a positive target; 1 for a regressor) and ``mu`` ``(K, n)``
        (the positive part's mean, clipped at 0 for a hurdle; the prediction of a regressor)."""
        if not self.members:
            raise RuntimeError("fit the descriptor ensemble first")
        x = self.featurize(items) if x is None else x
        n = x.shape[0]
        p = np.ones((len(self.members), n))
        mu = np.zeros((len(self.members), n))
        if n == 0:
            return p, mu
        with self._threads():
            if self.kind == "crossfit":
                return p, self._crossfit_parts(x)[0]
            for k, (clf, reg) in enumerate(self.members):
                mu[k] = reg.predict(x)
                if clf is not None:
                    p[k] = clf.predict_proba(x)[:, 1]
                    mu[k] = np.clip(mu[k], 0.0, None)
        return p, mu

    def predict_members(self, items: Sequence[Item], x: np.ndarray | None = None) -> np.ndarray:
        """Each member's expected value ``(K, n)``: ``p_k mu_k`` (hurdle) or its prediction (regressor)."""
        p, mu = self.components(items, x=x)
        return p * mu

    def predict(self, items: Sequence[Item], x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean ``(n,)`` and std ``(n,)`` (target units): of the mixture (hurdle), the scaled spread
        (regressor) or the scaled error model and spread (crossfit)."""
        if self.kind == "crossfit":
            if not self.members:
                raise RuntimeError("fit the descriptor ensemble first")
            x = self.featurize(items) if x is None else x
            if x.shape[0] == 0:
                return np.zeros(0), np.zeros(0)
            with self._threads():
                mu, err = self._crossfit_parts(x)
            return mu.mean(0), np.maximum(self._crossfit_std(mu, err) * self.std_scale, MIN_STD)
        p, mu = self.components(items, x=x)
        if self.kind == "regressor":
            return mu.mean(0), np.maximum(mu.std(0) * self.std_scale, MIN_STD)
        mean = (p * mu).mean(0)
        second = (p * (mu**2 + self.sigma**2)).mean(0)
        return mean, np.sqrt(np.maximum(second - mean**2, MIN_STD**2))

    def sample(self, items: Sequence[Item], n_samples: int, seed: int = 0, x: np.ndarray | None = None) -> np.ndarray:
        """``(n_samples, n)`` posterior draws (target units), deterministic for ``seed``.

        Draw ``s`` uses member ``s mod K``: for a hurdle, exactly 0 with probability ``1 - p_k``, else a
        log-normal draw with mean ``mu_k`` (floored at ``MIN_POSITIVE``) and std ``sigma``; for a regressor,
        ``mean + std z`` with the calibrated std.
        """
        if n_samples < 1:
            raise ValueError("n_samples must be >= 1")
        rng = np.random.default_rng(seed)
        if self.kind in ("regressor", "crossfit"):
            mean, std = self.predict(items, x=x)
            return mean[None, :] + std[None, :] * rng.standard_normal((n_samples, len(mean)))
        p, mu = self.components(items, x=x)
        k = np.arange(n_samples) % len(self.members)
        u = rng.random((n_samples, p.shape[1]))
        z = rng.standard_normal((n_samples, p.shape[1]))
        m = np.maximum(mu[k], MIN_POSITIVE)
        var_log = np.log1p((self.sigma / m) ** 2)
        positive = np.exp(np.log(m) - 0.5 * var_log + np.sqrt(var_log) * z)
        return np.where(u < p[k], positive, 0.0)

    # --------------------------------------------------------------------------- persistence
    def save(self, path: Path | str) -> Path:
        """Pickle the fitted ensemble to ``path``."""
        return write_signed(Path(path), pickle.dumps(self))

    @staticmethod
    def load(path: Path | str) -> DescriptorEnsemble:
        """Read an ensemble written by :meth:`save` (refused unless signed
        by this installation: core.signing)."""
        obj = pickle.loads(read_signed(Path(path)))  # refused unless this installation wrote it
        if not isinstance(obj, DescriptorEnsemble):
            raise TypeError(f"{path} does not hold a DescriptorEnsemble")
        return obj


#: ``architecture="auto"`` treats a target as zero-inflated (and trains ``hurdle-gb``) when at least this fraction of
#: its values is exactly 0 and none is negative (perov_5 ``ind_gap``: 96 %; MP-20 band gaps: 69 %).
ZERO_INFLATED_FRACTION = 0.3


def resolve_architecture(architecture: str | None, y: Any, *, has_structures: bool = True) -> str | None:
    """The descriptor architecture to train, or None for the GNN ensemble (or, without structures, the baseline).

    ``auto`` picks ``hurdle-gb`` for a zero-inflated target ``y`` ``(n,)`` (see :data:`ZERO_INFLATED_FRACTION`;
    measured on perov_5 ``ind_gap``: ROC-AUC 0.985 for gap >= 1.5 eV against 0.845 for the GNN ensemble),
    ``chgnet-gb`` when every record has a structure (``has_structures``; on perov_5 ``heat_all``: MAE 0.076
    eV/atom and Spearman(abs error, std) 0.31 against 0.10 and 0.18 for five MEGNets) and None otherwise; any
    other value is returned unchanged.
    """
    if architecture != "auto":
        return architecture
    zero_inflated = bool((np.asarray(y, dtype=np.float64) >= 0).all()) and zero_fraction(y) >= ZERO_INFLATED_FRACTION
    if zero_inflated:
        return "hurdle-gb"
    return "chgnet-gb" if has_structures else None


def zero_fraction(y: Any) -> float:
    """Fraction of the values of ``y`` ``(n,)`` that are exactly 0 (0 for no values)."""
    values = np.asarray(y, dtype=np.float64)
    return float((values == 0).mean()) if len(values) else 0.0


#: Settings of the ``gb-ensemble`` architecture: bootstrap members of the baseline's gradient boosting (its 35
#: descriptors and hyper-parameters); on OBELiX the 143 ``describe`` descriptors overfit (test MAE 1.31-1.38).
GB_ENSEMBLE: dict[str, Any] = {
    "features": "baseline",
    "max_iter": 300,
    "max_features": 1.0,
    "l2_regularization": 0.0,
    "min_samples_leaf": 20,
}

#: Settings of the ``chgnet-gb`` architecture: boosting members as on the perov_5 ``heat_all`` exploration, and an
#: error model predicting the 68.3 % quantile of the absolute error (one std of a normal error); over the seed
#: 0/1/2 splits its Spearman(abs error, std) was 0.306/0.292/0.278 against 0.292/0.276/0.258 for the median.
CHGNET_GB: dict[str, Any] = {
    "features": "describe+chgnet",
    "max_iter": 600,
    "learning_rate": 0.05,
    "max_features": 1.0,
    "l2_regularization": 0.0,
    "min_samples_leaf": 10,
    "error_loss": "quantile",
    "error_quantile": 0.683,
}


def make_descriptor_ensemble(
    architecture: str, *, n_members: int, seed: int = 0, num_threads: int | None = 1, **overrides: Any
) -> DescriptorEnsemble:
    """An unfitted ensemble of ``architecture`` (a key of :data:`DESCRIPTOR_ARCHITECTURES`) with its settings
    (``GB_ENSEMBLE``, ``CHGNET_GB``; the hurdle's class defaults), updated by ``overrides``."""
    if architecture not in DESCRIPTOR_ARCHITECTURES:
        valid = ", ".join(DESCRIPTOR_ARCHITECTURES)
        raise ValueError(f"unknown descriptor architecture {architecture!r}; valid: {valid}")
    kind = DESCRIPTOR_ARCHITECTURES[architecture]
    settings = GB_ENSEMBLE if kind == "regressor" else CHGNET_GB if kind == "crossfit" else {}
    return DescriptorEnsemble(
        kind=kind,
        n_members=n_members,
        seed=seed,
        bootstrap=kind == "regressor",
        num_threads=num_threads,
        **{**settings, **overrides},
    )
