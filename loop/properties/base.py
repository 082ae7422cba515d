"""The property-provider contract: one more outcome for every candidate, with posterior samples.

A campaign scores candidates on its learned targets (the in-loop ensembles) and on the properties it lists
(``LoopConfig.properties``), each from a provider registered in :data:`loop.registry.PROPERTIES`: a hull that
turns the learned formation energy into an energy above the hull of real phases, a registered property model
trained on public data (band gap, ionic conductivity), ... Acquisition sees all of them as outcomes.

Shapes: ``K`` ensemble members, ``S`` posterior samples, ``n`` candidates, ``n_obs`` labelled structures,
``m`` learned targets, ``P`` properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
from pymatgen.core import Composition, Structure

from loop.roles import RoundContext
from store.documents import EvaluationDoc


@dataclass(frozen=True, kw_only=True)
class PropertyInputs:
    """The candidates a provider scores."""

    ids: list[str]
    compositions: list[Composition]
    structures: list[Structure]
    learned: dict[str, np.ndarray] = field(default_factory=dict)
    """Learned target -> ``K x n`` member predictions (target units)."""


class Property(Protocol):
    """A provider of one outcome."""

    name: ClassVar[str]
    """Outcome name acquisition and reports see (e.g. ``band_gap``)."""
    unit: ClassVar[str]
    """Unit of the outcome (e.g. ``eV``)."""
    needs: ClassVar[tuple[str, ...]]
    """Learned targets it derives from (empty: none)."""

    @classmethod
    def applies(cls, config: Any) -> bool:
        """Whether it can score candidates of this ``LoopConfig`` (a default property that does not apply is left
        out; one named in the config is an error from ``from_config``)."""
        ...

    @classmethod
    def from_config(cls, config: Any) -> Property:
        """The provider for this ``LoopConfig``; ConfigError when it cannot serve it."""
        ...

    def describe(self) -> dict[str, Any]:
        """Provenance of the values (model id, phase set, ...), stored with each round."""
        ...

    def version(self, ctx: RoundContext) -> str:
        """Identity of the values it gives now (e.g. the resolved model id): stored values of another version
        are recomputed."""
        ...

    def prepare(self, ctx: RoundContext, *, on_stage: Any = None) -> None:
        """Work before the first round reads it (e.g. train and register a missing default model)."""
        ...

    def samples(self, ctx: RoundContext, inputs: PropertyInputs) -> np.ndarray:
        """``S x n`` posterior samples on the candidates (``S = 1`` for an exact value), in ``unit``."""
        ...

    def observed(self, ctx: RoundContext, evaluations: list[EvaluationDoc]) -> np.ndarray:
        """``(n_obs,)`` values for labelled structures (a label, else the provider's best estimate; NaN: none)."""
        ...


def combine_samples(members: np.ndarray, extra: list[np.ndarray]) -> np.ndarray:
    """One ``S x n x (m + P)`` sample tensor from learned members ``K x n x m`` and per-property ``S_j x n``.

    ``S`` is the largest of ``K`` and the ``S_j``; sample ``s`` of a source with ``S_j`` samples is its
    sample ``s mod S_j`` (sources are independent models, so pairing them in order is as good as any).
    """
    members = np.asarray(members, dtype=float)
    if members.ndim != 3:
        raise ValueError(f"members must be K x n x m, got shape {members.shape}")
    columns = [members[:, :, j] for j in range(members.shape[2])] + [np.atleast_2d(np.asarray(e, float)) for e in extra]
    n = members.shape[1]
    for c in columns:
        if c.shape[1] != n:
            raise ValueError(f"samples for {c.shape[1]} candidates, expected {n}")
    s = max(c.shape[0] for c in columns) if columns else 0
    return np.stack([c[np.arange(s) % c.shape[0]] for c in columns], axis=-1)
