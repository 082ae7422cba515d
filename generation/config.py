"""Knobs of the generate stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
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

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    generators: tuple[str, ...] = Field(
        ("substitution",),
        min_length=1,
        description="Registered generators run each round, in order (see `generation.registry`): 'substitution' "
        "(ion exchange plus data-mined substitution), 'ion-exchange', 'pyxtal' (random symmetric structures), "
        "'learned' (the project's Wyckoff transformer).",
    )
    quotas: dict[str, float] = Field(
        default_factory=dict,
        description="Share of each round's candidates per generator, e.g. {substitution: 0.5, learned: 0.25, "
        "pyxtal: 0.25} (normalised; a generator left out gets none; empty: equal shares).",
    )

    substitution_threshold: float = Field(
        1e-3,
        gt=0.0,
        lt=1.0,
        description="Minimum probability (dimensionless) of the data-mined substitution (Hautier et al. 2011).",
    )
    max_substitutions_per_parent: int = Field(300, ge=1, description="Most probable substitutions kept per parent.")
    ion_exchange: bool = Field(True, description="Also apply the ion exchanges of `ion_exchange_pairs` to each parent.")
    ion_exchange_pairs: tuple[str, ...] = Field(
        ("Li:Na", "Na:Li"),
        description="Isovalent exchanges 'OLD:NEW': every OLD ion of a parent becomes NEW (cell volume rescaled); "
        "add 'Li:K', 'Na:K', 'K:Li', 'K:Na' for potassium.",
    )
    aliovalent: tuple[str, ...] = Field(
        (),
        description="Aliovalent exchanges 'ALKALI:DOPANT', e.g. 'Li:Mg': one alkali site takes the dopant and the "
        "nearest (charge - 1) alkali sites are left vacant, keeping the cell neutral.",
    )
    require_any: tuple[str, ...] = Field(
        ("Li", "Na"), description="A candidate must contain at least one of these elements (empty: no rule)."
    )
    exclude_elements: tuple[str, ...] = Field(
        DEFAULT_EXCLUDED,
        description="Candidates with any of these elements are dropped (toxic, radioactive, gases).",
    )
    allow_elements: tuple[str, ...] = Field(
        (),
        description="Only these elements may appear (empty: any not excluded); also the palette of PyXtal "
        "compositions and of the learned model's samples.",
    )
    max_sites: int = Field(30, ge=1, description="Largest cell (sites) kept: relaxation cost grows with size.")
    charge_balance: bool = Field(
        True, description="Reject candidates without a charge-neutral oxidation-state assignment (pymatgen's guess)."
    )
    density_range: tuple[float, float] = Field(
        (0.5, 15.0), description="Plausible mass density (g/cm³) of a candidate; outside it, rejected."
    )
    pyxtal_max_formula_units: int = Field(
        4, ge=1, le=12, description="PyXtal: most formula units tried per conventional cell."
    )
    pyxtal_max_elements: int = Field(3, ge=2, le=5, description="PyXtal: most elements in an enumerated composition.")
    learned_model: str = Field(
        "wyckoff-transformer",
        description="Registry name of the learned generator's model (trained on first use when missing).",
    )
    temperature: float = Field(1.0, gt=0.0, le=5.0, description="Sampling temperature of the learned model.")
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
    parent_pool: tuple[str, ...] = Field(
        (),
        description="Structures that are parents every round without being evaluated (seed specs: files, folders, "
        "'pymatgen:<name>'), e.g. every known phase of a chemical space: their candidates join the pool, they do "
        "not. Substitution caches each parent's candidates (`<data home>/cache/generated/`), so a pool of hundreds "
        "costs its generation once.",
    )

    @field_validator("require_any", "exclude_elements", "allow_elements")
    @classmethod
    def _valid_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_elements(value)

    @field_validator("ion_exchange_pairs", "aliovalent")
    @classmethod
    def _valid_pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pair in value:
            parts = pair.split(":")
            if len(parts) != 2 or parts[0] == parts[1]:
                raise ValueError(f"exchange {pair!r}: write 'OLD:NEW' with two different elements, e.g. 'Li:Na'")
            _check_elements(tuple(parts))
        return value

    @field_validator("density_range")
    @classmethod
    def _valid_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] < value[1]:
            raise ValueError(f"density_range {value}: want 0 <= low < high (g/cm³)")
        return value

    @model_validator(mode="after")
    def _valid_quotas(self) -> GenerateConfig:
        unknown = sorted(set(self.quotas) - set(self.generators))
        if unknown:
            raise ValueError(f"quotas name generators not in `generators`: {', '.join(unknown)}")
        if any(v < 0 for v in self.quotas.values()) or (self.quotas and sum(self.quotas.values()) <= 0):
            raise ValueError("quotas must be >= 0 and not all 0")
        return self

    def shares(self) -> dict[str, float]:
        """Generator -> fraction of a round's candidates (sums to 1)."""
        raw = self.quotas or dict.fromkeys(self.generators, 1.0)
        total = sum(raw.values())
        return {name: raw.get(name, 0.0) / total for name in self.generators}
