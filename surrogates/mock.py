"""Deterministic test doubles that satisfy :class:`surrogates.Surrogate` without any model or torch.

- :class:`MockSurrogate`: fixed ``mean``/``std`` per position (the i-th structure of every call gets
  ``mean[i]``, ``std[i]``); for tests of acquisition on a known candidate list.
- :class:`FunctionSurrogate`: members computed from each structure by a function; for flows where the
  candidate set changes between calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from pymatgen.core import Structure

from core.errors import ConfigError

from .protocols import Prediction

__all__ = ["FunctionSurrogate", "MockSurrogate", "spread_members"]


def _unit_offsets(n_members: int, n: int, rng: np.random.Generator | None) -> np.ndarray:
    """``(K, n)`` offsets whose every column has mean exactly 0 and population std 1 (up to rounding).

    With ``rng`` None the columns are the evenly spaced, standardised ``linspace(-1, 1, K)``; otherwise
    each column is an independently standardised normal draw. ``K == 1`` gives zeros.
    """
    if n_members == 1:
        return np.zeros((1, n))
    if rng is None:
        z = np.repeat(np.linspace(-1.0, 1.0, n_members)[:, None], n, axis=1)
    else:
        z = rng.standard_normal((n_members, n))
    z = z - z.mean(axis=0, keepdims=True)
    return z / z.std(axis=0, keepdims=True)


def spread_members(
    mean: np.ndarray, std: np.ndarray, n_members: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """``(K, n)`` members whose mean over axis 0 is ``mean (n,)`` and population std is ``std (n,)``.

    Exact up to floating-point rounding (~1e-15 relative). ``K == 1`` requires ``std == 0``.
    """
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if mean.shape != std.shape:
        raise ConfigError(f"mean and std must have the same shape, got {mean.shape} and {std.shape}")
    if np.any(std < 0) or not np.all(np.isfinite(std)) or not np.all(np.isfinite(mean)):
        raise ConfigError("mean must be finite and std finite and non-negative")
    if n_members < 1:
        raise ConfigError(f"n_members must be >= 1, got {n_members}")
    if n_members == 1 and np.any(std > 0):
        raise ConfigError("a single member cannot have a non-zero std; use n_members >= 2")
    return mean[None, :] + std[None, :] * _unit_offsets(n_members, mean.size, rng)


class MockSurrogate:
    """Returns fixed predictions by position: ``predict(structures)`` needs ``len(structures) == n``.

    ``predict`` returns ``mean`` and ``std`` exactly as given and ``members (K, n)`` consistent with them
    (see :func:`spread_members`; which member is high or low is drawn from ``seed``). ``calls`` counts calls
    to :meth:`predict_members` / :meth:`predict`.
    """

    def __init__(
        self,
        mean: Sequence[float] | np.ndarray,
        std: Sequence[float] | np.ndarray,
        *,
        n_members: int = 5,
        seed: int = 0,
        property_name: str = "mock_property",
        version: str = "mock-0",
    ) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1).copy()
        self.std = np.asarray(std, dtype=np.float64).reshape(-1).copy()
        self.members = spread_members(self.mean, self.std, n_members, np.random.default_rng(seed))
        self.property_name = property_name
        self.version = version
        self.calls = 0

    @property
    def n_members(self) -> int:
        """``K``."""
        return int(self.members.shape[0])

    def _check(self, structures: Sequence[Structure]) -> None:
        if len(structures) != self.mean.size:
            raise ConfigError(f"MockSurrogate holds predictions for {self.mean.size} structures, got {len(structures)}")
        self.calls += 1

    def predict_members(self, structures: Sequence[Structure]) -> np.ndarray:
        """``(K, n)`` float64 copy of the fixed members."""
        self._check(structures)
        return self.members.copy()

    def predict(self, structures: Sequence[Structure]) -> Prediction:
        """``mean`` and ``std`` exactly as given, members ``(K, n)``."""
        self._check(structures)
        return Prediction(mean=self.mean.copy(), std=self.std.copy(), members=self.members.copy())


class FunctionSurrogate:
    """Members from a function of each structure: ``fn(structure) -> K floats``.

    ``predict`` summarises with :meth:`Prediction.from_members` (mean and population std over members).
    See :meth:`from_mean_std` to specify mean and std directly.
    """

    def __init__(
        self,
        fn: Callable[[Structure], Sequence[float] | np.ndarray],
        *,
        n_members: int,
        property_name: str = "mock_property",
        version: str = "mock-0",
    ) -> None:
        if n_members < 1:
            raise ConfigError(f"n_members must be >= 1, got {n_members}")
        self.fn = fn
        self._n_members = n_members
        self.property_name = property_name
        self.version = version
        self.calls = 0

    @classmethod
    def from_mean_std(
        cls,
        mean_fn: Callable[[Structure], float],
        std_fn: Callable[[Structure], float],
        *,
        n_members: int = 4,
        property_name: str = "mock_property",
        version: str = "mock-0",
    ) -> FunctionSurrogate:
        """Members evenly spread so that their mean is ``mean_fn(s)`` and population std ``std_fn(s)``."""

        def fn(structure: Structure) -> np.ndarray:
            return spread_members(np.array([mean_fn(structure)]), np.array([std_fn(structure)]), n_members)[:, 0]

        return cls(fn, n_members=n_members, property_name=property_name, version=version)

    @property
    def n_members(self) -> int:
        """``K``."""
        return self._n_members

    def predict_members(self, structures: Sequence[Structure]) -> np.ndarray:
        """``(K, n)`` float64, column i is ``fn(structures[i])``."""
        self.calls += 1
        out = np.empty((self._n_members, len(structures)), dtype=np.float64)
        for i, structure in enumerate(structures):
            values = np.asarray(self.fn(structure), dtype=np.float64).reshape(-1)
            if values.shape != (self._n_members,):
                raise ConfigError(f"fn returned {values.shape[0]} values, expected n_members={self._n_members}")
            out[:, i] = values
        return out

    def predict(self, structures: Sequence[Structure]) -> Prediction:
        """Mean ``(n,)``, population std ``(n,)``, members ``(K, n)``."""
        return Prediction.from_members(self.predict_members(structures))
