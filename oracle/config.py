"""The oracle's configuration: a relaxation step plus how its energies become labels.

:class:`OracleConfig` holds a :class:`~oracle.relax.RelaxConfig` as a field (composition, not a
subclass), and its :meth:`OracleConfig.key` is a hash of every setting that can change a stored result.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from oracle.md import MDConfig
from oracle.relax import RelaxConfig

#: Fields that never change a stored label, left out of :meth:`OracleConfig.key`: ``batch_size`` only
#: groups structures into lockstep batches (results do not depend on it) and ``md`` results are stored
#: apart from the relaxation (``EvaluationDoc.transport``), so changing MD settings re-runs MD only.
#: ``reference_phases`` and ``completion`` only shape the hull, which is recomputed from every label at the end of
#: each round (computed phases are cached per oracle key and completion settings).
#: ``electrode`` results are stored apart (``EvaluationDoc.electrode``), like MD.
NOT_IN_KEY: frozenset[str] = frozenset({"batch_size", "md", "reference_phases", "electrode", "completion"})


#: The default second tier (chosen by benchmarks/potentials.py, README "The oracle").
DEFAULT_REFINE = "sevennet:7net-l3i5"


def _check_family(spec: str) -> None:
    from oracle.potentials import POTENTIALS, parse_spec

    family = parse_spec(spec)[0]
    if family not in POTENTIALS:
        raise ValueError(f"unknown potential {family!r}; registered: {', '.join(sorted(POTENTIALS))}")


class ElectrodeConfig(BaseModel):
    """Intercalation voltage of Li/Na candidates: their de-intercalated counterpart relaxed by the oracle."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    top_k: int = Field(
        1,
        ge=0,
        le=100,
        description="Most stable labelled Li/Na candidates (lowest energy above hull) whose voltage, capacity and "
        "energy density are computed; 0: none (unless average_voltage or volume_change is learned, which computes "
        "them for every labelled candidate).",
    )
    when: Literal["last", "every"] = Field(
        "last", description="'last': after the campaign's last round only; 'every': after every round."
    )
    ion: Literal["auto", "Li", "Na"] = Field("auto", description="Working ion; 'auto': Li if present, else Na.")
    max_sites: int = Field(
        60, ge=1, description="Largest cell whose counterpart is relaxed (atoms); bigger ones are skipped (reason)."
    )


class CompletionConfig(BaseModel):
    """Hull completion (oracle.completion): competitors the reference phases lack, built from known phases of
    analogous systems and relaxed by the oracle."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_structures: int = Field(
        3,
        ge=0,
        le=50,
        description="Compositions relaxed per empty sub-system (likeliest first); 0: no completion (the hull is the "
        "reference phases and the campaign's structures; `thin` flags what may be missing).",
    )
    per_formula: int = Field(2, ge=1, le=20, description="Parent structures per composition.")
    max_sites: int = Field(40, ge=1, le=500, description="Largest analogue cell (sites).")
    min_compounds_self: int = Field(
        3,
        ge=1,
        le=100,
        description="A labelled binary or ternary system itself is completed while it holds fewer reference "
        "compounds than this (its sub-systems while they hold none).",
    )

    def kwargs(self) -> dict[str, int]:
        """Keyword arguments of :func:`oracle.completion.complete`."""
        return self.model_dump()


class RefineConfig(BaseModel):
    """The second tier of a two-tier oracle: a more accurate potential re-scores each relaxed structure.

    The first tier (``OracleConfig.relax``) relaxes with a fast potential; this one takes the relaxed structure
    and computes its energy with ``potential``, as a single point (``max_steps: 0``) or by a short re-relaxation.
    The final energy (and, after a re-relaxation, structure) is the refined one; the first tier's is kept in
    ``EvaluationDoc.refine``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    potential: str | None = Field(
        DEFAULT_REFINE,
        description="Potential spec of the second tier (default 'sevennet:7net-l3i5'); None: one tier, the "
        "relaxing potential's energy is the label. (A refine section that leaves it out keeps the default.)",
    )
    max_steps: int = Field(
        0,
        ge=0,
        le=10_000,
        description="0: a single point of the first tier's relaxed structure; N > 0: a short re-relaxation (cell and "
        "positions) of at most N steps with this potential.",
    )
    fmax: float = Field(0.05, gt=0, description="Force threshold of the re-relaxation (eV/Å); max_steps > 0 only.")

    def relax_config(self, first: RelaxConfig) -> RelaxConfig:
        """The RelaxConfig of this tier: ``first``'s failure checks with this potential and step budget."""
        if self.potential is None:
            raise ValueError("refine.potential is not set")
        steps = self.max_steps
        return first.model_copy(update={"potential": self.potential, "max_steps": steps, "fmax": self.fmax})


class OracleConfig(BaseModel):
    """The ``relax`` labeler's settings: the relaxation, how seeds are labelled, energy scale and hull."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    relax: RelaxConfig = Field(
        default_factory=RelaxConfig,
        description="The relaxation: potential, convergence (fmax eV/Å, max_steps) and failure checks "
        "(max_force_abort eV/Å, max_volume_change, min_distance Å, timeout_s s).",
    )
    completion: CompletionConfig = Field(
        default_factory=CompletionConfig,
        description="Hull completion: competitors the reference phases lack, relaxed by this oracle and cached per "
        "oracle and reference set; max_structures 0 turns it off.",
    )
    refine: RefineConfig = Field(
        default_factory=RefineConfig,
        description="Second tier: a more accurate potential re-scores (single point or short re-relaxation) each "
        "structure the first tier relaxed; its energy becomes the label. Default: CHGNet relaxes, SevenNet-l3i5 "
        "gives the energy (benchmarks/potentials.py: verdict F1 0.731 vs CHGNet's 0.714); "
        "{potential: null}: CHGNet alone.",
    )
    relax_seeds: bool = Field(
        False,
        description="Relax the seeds too; False labels them with a single-point energy (seeds are already "
        "DFT-relaxed, and a 28-40 atom relaxation costs minutes on 2 cores).",
    )
    reference_source: Literal["auto", "ase", "mp"] = Field(
        "auto",
        description="Elemental references: 'ase' relaxes ASE reference states with the potential; 'mp' takes "
        "MP GGA/GGA+U energies from the elemental-reference file; 'auto' takes 'mp' when the potential's "
        "(corrected) energies are on the MP scale (CHGNet) and otherwise relaxes ASE reference states, with "
        "MP energies for elements ASE has no crystal for (S, P, Mn, ...).",
    )
    energy_correction: Literal["auto", "mp2020", "none"] = Field(
        "auto",
        description="'auto': add MP2020 corrections to potentials that learned raw GGA/GGA+U energies "
        "(M3GNet-MP-2021) and none to those that learned corrected ones (CHGNet); 'mp2020': always; 'none': never.",
    )
    competing_phases: Literal["auto", "off"] = Field(
        "auto",
        description="MP competing phases in the hull: 'auto' fetches them once per chemical system with mp-api "
        "when MP_API_KEY is set and the energies are on the MP scale (cached under <data home>/cache/mp_phases); "
        "'off' never.",
    )
    reference_phases: tuple[str, ...] = Field(
        ("mp_20", "mp_20_test", "mpts_52"),
        description="Materials Project phase files in the hull (oracle.phases: 'mp_20' MP-20 val, 'mp_20_test' "
        "MP-20 test without Li/Na compounds, 'mpts_52' MPTS-52 val, read from ../shared/data, the raw data cache, "
        "or downloaded into it; or 'file:PATH', a CSV in their format with material_id, formation_energy_per_atom "
        "(eV/atom, MP scale) and pretty_formula or cif, e.g. the known phases of `battery-discovery rediscover`); "
        "empty: the hull holds the elemental references, the campaign's structures and (with an API key) MP's "
        "phases only. Used when the energies are on the MP scale.",
    )
    batch_size: int = Field(
        8,
        ge=1,
        le=256,
        description="Structures relaxed in lockstep with one batched potential call per optimizer step "
        "(each keeps its own optimizer; results do not depend on it; memory grows with it).",
    )
    electrode: ElectrodeConfig = Field(
        default_factory=ElectrodeConfig,
        description="Average voltage vs the metal, capacity (mAh/g), energy density (Wh/kg) and volume change of the "
        "top Li/Na candidates (oracle.electrode).",
    )
    md: MDConfig = Field(
        default_factory=MDConfig,
        description="Optional molecular dynamics of the top candidates of each round (Li/Na diffusivity).",
    )

    @field_validator("relax")
    @classmethod
    def _known_potential(cls, value: RelaxConfig) -> RelaxConfig:
        _check_family(value.potential)
        return value

    @field_validator("refine")
    @classmethod
    def _known_refine_potential(cls, value: RefineConfig) -> RefineConfig:
        if value.potential is not None:
            _check_family(value.potential)
        return value

    @property
    def final_potential(self) -> str:
        """The potential whose energies become labels: the refining one when set, else the relaxing one."""
        return self.refine.potential or self.relax.potential

    @property
    def name(self) -> str:
        """``<relax potential>`` or ``<relax potential>+<refine potential>`` (the key's readable prefix)."""
        return (
            self.relax.potential if self.refine.potential is None else f"{self.relax.potential}+{self.refine.potential}"
        )

    @field_validator("reference_phases")
    @classmethod
    def _known_phase_sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from oracle.phase_files import PHASE_FILES

        for source in value:
            if source not in PHASE_FILES and not (source.startswith("file:") and source.removeprefix("file:")):
                raise ValueError(f"unknown reference phases {source!r}: use {', '.join(PHASE_FILES)} or file:PATH")
        return value

    def key(self) -> str:
        """Identity of this oracle's results: ``<name>|<12 hex of sha256>`` over every field but
        :data:`NOT_IN_KEY` and the identity (version, checkpoint sha256) of each potential, as canonical JSON
        (sorted keys), so results computed under any other relaxation setting, failure check, reference source,
        correction, seed treatment, refinement or checkpoint file are never reused."""
        from oracle.potentials import potential_identity

        settings = self.model_dump(mode="json", exclude=set(NOT_IN_KEY))
        settings["identity"] = {
            "relax": potential_identity(self.relax.potential),
            "refine": None if self.refine.potential is None else potential_identity(self.refine.potential),
        }
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.name}|{digest}"

    def resolved_reference_source(self, energy_scale: str) -> Literal["ase", "mp", "auto"]:
        """The ElementalReferences source for a potential of ``energy_scale`` (see ``reference_source``)."""
        from oracle.compat import mp_compatible

        if self.reference_source != "auto":
            return self.reference_source
        return "mp" if mp_compatible(energy_scale, self.energy_correction) else "auto"

    def relax_config(self, *, seeds: bool = False) -> RelaxConfig:
        """The RelaxConfig to run: a single point (``max_steps=0``) for seeds unless ``relax_seeds``."""
        if seeds and not self.relax_seeds:
            return self.relax.model_copy(update={"max_steps": 0})
        return self.relax
