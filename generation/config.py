"""Knobs of the generate stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymatgen.core import Element

# Radioactive, noble-gas and very heavy elements: no use in a battery and poorly covered by potentials.
DEFAULT_EXCLUDED: tuple[str, ...] = (
    "He",
    "Ne",
    "Ar",
    "Kr",
    "Xe",
    "Rn",
    "Tc",
    "Pm",
    "Po",
    "At",
    "Fr",
    "Ra",
    "Ac",
    "Th",
    "Pa",
    "U",
    "Np",
    "Pu",
    "Am",
    "Cm",
    "Bk",
    "Cf",
    "Es",
    "Fm",
    "Md",
    "No",
    "Lr",
    "Hg",
    "Cd",
    "Tl",
    "Pb",
    "As",
    "Be",
)


def _check_elements(values: tuple[str, ...]) -> tuple[str, ...]:
    for symbol in values:
        if not Element.is_valid_symbol(symbol):
            raise ValueError(f"unknown element {symbol!r}")
    return values


class GenerateConfig(BaseModel):
    """How candidates are derived from parent structures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generators: tuple[str, ...] = Field(
        ("substitution",),
        min_length=1,
        description="Registered generators run each round, in order (see `generation.registry`); "
        "'substitution' is ion exchange plus data-mined substitution.",
    )

    substitution_threshold: float = Field(
        1e-3,
        gt=0.0,
        lt=1.0,
        description="Minimum probability (dimensionless) of the data-mined substitution (Hautier et al. 2011).",
    )
    max_substitutions_per_parent: int = Field(300, ge=1, description="Most probable substitutions kept per parent.")
    ion_exchange: bool = Field(True, description="Also swap every Li for Na and every Na for Li in each parent.")
    require_any: tuple[str, ...] = Field(
        ("Li", "Na"), description="A candidate must contain at least one of these elements (empty: no rule)."
    )
    exclude_elements: tuple[str, ...] = Field(
        DEFAULT_EXCLUDED,
        description="Candidates with any of these elements are dropped (toxic, radioactive, gases).",
    )
    max_sites: int = Field(30, ge=1, description="Largest cell (sites) kept: relaxation cost grows with size.")
    min_distance_ratio: float = Field(
        0.6,
        gt=0.0,
        le=1.5,
        description="Reject a candidate if two atoms are closer than this fraction of their summed atomic radii.",
    )
    parents_per_round: int = Field(
        8,
        ge=0,
        description="Besides the seeds, this many lowest-formation-energy evaluated structures are parents.",
    )

    @field_validator("require_any", "exclude_elements")
    @classmethod
    def _valid_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_elements(value)
