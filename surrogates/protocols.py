"""The contract every surrogate model fulfils: an ensemble of scalar predictions per structure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from pymatgen.core import Structure


@dataclass(frozen=True)
class Prediction:
    """Ensemble prediction for ``n`` structures with ``K`` members, in the target's original units.

    Attributes:
        mean: ``(n,)`` float64, mean over members.
        std: ``(n,)`` float64, population standard deviation over members (``ddof=0``; 0 when ``K == 1``).
        members: ``(K, n)`` float64, one row per member.
    """

    mean: np.ndarray
    std: np.ndarray
    members: np.ndarray

    def __post_init__(self) -> None:
        members = np.asarray(self.members, dtype=np.float64)
        if members.ndim != 2:
            raise ValueError(f"members must have shape (n_members, n), got {members.shape}")
        n = members.shape[1]
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        if mean.shape != (n,) or std.shape != (n,):
            raise ValueError(f"mean and std must have shape ({n},), got {mean.shape} and {std.shape}")
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def from_members(cls, members: np.ndarray) -> Prediction:
        """Summarise ``(K, n)`` member predictions into mean and population std over axis 0."""
        members = np.asarray(members, dtype=np.float64)
        if members.ndim != 2:
            raise ValueError(f"members must have shape (n_members, n), got {members.shape}")
        return cls(mean=members.mean(axis=0), std=members.std(axis=0), members=members)

    @property
    def n_members(self) -> int:
        """``K``, the number of ensemble members."""
        return int(self.members.shape[0])

    def __len__(self) -> int:
        """``n``, the number of structures predicted."""
        return int(self.members.shape[1])


@runtime_checkable
class Surrogate(Protocol):
    """A model predicting one scalar property per structure, with an ensemble for uncertainty.

    Implementations are deterministic: the same structures give the same numbers.
    """

    property_name: str
    """What is predicted, e.g. ``"voltage"`` or ``"formation_energy_per_atom"`` (units are the caller's)."""
    version: str
    """Identifier of the trained model (e.g. the round it was trained in), recorded next to predictions."""

    @property
    def n_members(self) -> int:
        """``K``, the number of ensemble members (rows of :meth:`predict_members`)."""
        ...

    def predict_members(self, structures: Sequence[Structure]) -> np.ndarray:
        """Every member's prediction: ``(K, n)`` float64 for ``n = len(structures)``, original units."""
        ...

    def predict(self, structures: Sequence[Structure]) -> Prediction:
        """Mean ``(n,)``, std ``(n,)`` and members ``(K, n)`` for ``n = len(structures)``."""
        ...
