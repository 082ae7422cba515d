"""What a generator is, what it is asked for and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pymatgen.core import Structure

from core.expressions import TargetExpression
from generation.config import GenerateConfig


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A generated structure with its provenance.

    ``kind`` is the generator's word for how it was made ("ion_exchange", "substitution", "pyxtal", "learned");
    ``generator`` and ``version`` name the registered generator and its code or model version; ``parameters``
    hold what a re-run needs (space group, Wyckoff sites, seed, temperature, ...); ``condition`` is the property
    condition it was sampled under ('' for none).
    """

    structure: Structure
    parent: str
    kind: str
    substitutions: dict[str, str] = field(default_factory=dict)  # old species -> new species
    probability: float = 1.0
    generator: str = ""
    version: str = ""
    parents: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    condition: str = ""
    oxidation_states: dict[str, float] = field(default_factory=dict)
    """Oxidation states the generator assigned and balanced (element -> mean state; the parent's bond-valence
    states carried over by substitution). When set, they stand for the charge-balance filter's guess, so a
    peroxide such as Na2O2 from Li2O2 (O at -1) is kept."""

    def provenance(self) -> dict[str, Any]:
        """The fields a candidate document keeps (JSON-safe)."""
        return {
            "source": self.kind,
            "parent": self.parent,
            "substitutions": self.substitutions,
            "probability": self.probability,
            "generator": self.generator or self.kind,
            "generator_version": self.version,
            "parents": list(self.parents or ((self.parent,) if self.parent else ())),
            "parameters": self.parameters,
            "condition": self.condition,
        }


@dataclass(frozen=True, kw_only=True)
class GenerationRequest:
    """What a generator is asked for.

    Attributes:
        n: how many candidates are wanted (a generator may return fewer, or more when it cannot help it;
            0: all it has, for generators with a finite output such as substitution).
        parents: (name, structure) pairs for generators that transform structures.
        seed: random seed; the same request gives the same candidates.
        condition: property condition (``core.expressions`` syntax) for a generator that can be conditioned.
        store: the candidate store whose model registry holds learned generators' models (None: none needed).
    """

    n: int
    parents: Sequence[tuple[str, Structure]] = ()
    seed: int = 0
    condition: TargetExpression | None = None
    store: Any = None


class Generator(Protocol):
    """Makes candidates (not yet filtered nor de-duplicated: :mod:`generation.filters` does that)."""

    def generate(self, request: GenerationRequest, config: GenerateConfig) -> list[Candidate]:
        """Candidates for ``request``, best first where a generator has an order."""
        ...


def quota_counts(config: GenerateConfig, n: int) -> dict[str, int]:
    """Generator -> number of candidates of a round of ``n`` (largest remainders; sums to ``n``)."""
    shares = config.shares()
    exact = {name: share * n for name, share in shares.items()}
    counts = {name: int(v) for name, v in exact.items()}
    left = n - sum(counts.values())
    for name in sorted(exact, key=lambda k: -(exact[k] - counts[k]))[:left]:
        counts[name] += 1
    return counts
