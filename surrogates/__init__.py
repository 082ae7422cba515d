"""Surrogate models: ensembles that predict a scalar property per structure, with uncertainty.

``GNNEnsemble`` (and ``check_structures``) import matgl, which takes seconds; they are loaded lazily on
first access, so ``from surrogates import MockSurrogate, Surrogate`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import MEGNET_SIZES, MIN_STRUCTURES_FOR_VALIDATION, EnsembleConfig
from .mock import FunctionSurrogate, MockSurrogate, spread_members
from .protocols import Prediction, Surrogate

if TYPE_CHECKING:
    from .ensemble import GNNEnsemble, check_structures

__all__ = [
    "MEGNET_SIZES",
    "MIN_STRUCTURES_FOR_VALIDATION",
    "EnsembleConfig",
    "FunctionSurrogate",
    "GNNEnsemble",
    "MockSurrogate",
    "Prediction",
    "Surrogate",
    "check_structures",
    "spread_members",
]

_LAZY = {"GNNEnsemble", "check_structures"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import ensemble

        return getattr(ensemble, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
