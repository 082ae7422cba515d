"""What a generator is and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pymatgen.core import Structure

from generation.config import GenerateConfig
from generation.registry import GENERATORS


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A generated structure with its lineage."""

    structure: Structure
    parent: str
    kind: str  # the generator's word for how it was made, e.g. "substitution", "ion_exchange"
    substitutions: dict[str, str] = field(default_factory=dict)  # old species -> new species
    probability: float = 1.0


class Generator(Protocol):
    """Turns parent structures into candidates (filtered, not yet de-duplicated against a store)."""

    def generate(self, parents: Sequence[tuple[str, Structure]], config: GenerateConfig) -> list[Candidate]:
        """Candidates from ``parents`` ((name, structure) pairs), best first."""
        ...


def run_generators(
    names: Sequence[str], parents: Sequence[tuple[str, Structure]], config: GenerateConfig
) -> list[Candidate]:
    """The candidates of each named generator in turn (ConfigError for an unknown name)."""
    out: list[Candidate] = []
    for name in names:
        out.extend(GENERATORS.get(name)().generate(parents, config))
    return out
