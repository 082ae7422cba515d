"""The acquisition-strategy registry: strategy name -> factory ``(AcquisitionProblem) -> Scorer``.

A strategy is registered with one decorator line next to its definition::

    from acquisition.problem import AcquisitionProblem, Scorer, static_scorer
    from acquisition.registry import STRATEGIES

    @STRATEGIES.register("lowest_index")
    def strategy_lowest_index(problem: AcquisitionProblem) -> Scorer:
        return static_scorer(-torch.arange(problem.n_pool, dtype=torch.double))

Registering a name twice raises :class:`core.registry.DuplicateRegistrationError`. The factory's
contract (shapes of the scores, tie-breaks) is in :mod:`acquisition.problem`.

This module imports nothing of the project but :mod:`core.registry`, so :mod:`acquisition.config`
can check ``AcquisitionConfig.strategy`` against it without importing BoTorch or the strategies. The
built-in strategies (:mod:`acquisition.botorch_strategies`, :mod:`acquisition.direct_strategies`) are
registered when the package ``acquisition`` is imported, which Python always does before any of its
modules (``import acquisition.config`` included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.registry import Registry

__all__ = ["STRATEGIES"]

STRATEGIES: Registry[Callable[[Any], Any]] = Registry("acquisition strategy")
"""Strategy name -> factory ``(AcquisitionProblem) -> Scorer`` (see :mod:`acquisition.problem`).
``AcquisitionConfig.strategy`` must be one of its names."""
