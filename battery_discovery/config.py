"""The loop's configuration: one model composed of the stage configs.

The same model is the Prefect flow's parameter set (each top-level field is a flow parameter, so
``prefect deployment run discovery-loop/local --param rounds=3`` works) and the CLI's YAML file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from acquisition.config import AcquisitionConfig
from battery_discovery.replay import ReplayConfig, parse_target
from core.errors import ConfigError
from generation.config import GenerateConfig
from oracle.md import MDConfig
from oracle.relax import RelaxConfig
from surrogates.config import EnsembleConfig


class OracleConfig(RelaxConfig):
    """Relaxation settings plus how the seeds are labelled."""

    relax_seeds: bool = Field(
        False,
        description="Relax the seeds too; False labels them with a single-point energy (seeds are already "
        "DFT-relaxed, and a 28-40 atom relaxation costs minutes on 2 cores).",
    )

    num_threads: int = Field(
        1,
        ge=1,
        le=256,
        description="torch threads for the potential; 1 is fastest for small cells on a shared 2-core machine.",
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
    md: MDConfig = Field(
        default_factory=MDConfig,
        description="Optional molecular dynamics of the top candidates of each round (Li/Na diffusivity).",
    )
    competing_phases: Literal["auto", "off"] = Field(
        "auto",
        description="MP competing phases in the hull: 'auto' fetches them once per chemical system with mp-api "
        "when MP_API_KEY is set and the energies are on the MP scale (cached under <data home>/cache/mp_phases); "
        "'off' never.",
    )
    batch_size: int = Field(
        8,
        ge=1,
        le=256,
        description="Structures relaxed in lockstep with one batched potential call per optimizer step "
        "(each keeps its own optimizer; results do not depend on it; memory grows with it).",
    )

    @field_validator("potential")
    @classmethod
    def _known_potential(cls, value: str) -> str:
        from oracle.potentials import POTENTIALS, parse_spec

        family = parse_spec(value)[0]
        if family not in POTENTIALS:
            raise ValueError(f"unknown potential {family!r}; registered: {', '.join(sorted(POTENTIALS))}")
        return value

    def key(self) -> str:
        """Identity of this oracle: results under another key are not reused."""
        return (
            f"{self.potential}|fmax={self.fmax:g}|steps={self.max_steps}|cell={int(self.relax_cell)}"
            f"|opt={self.optimizer}|refs={self.reference_source}|seeds={'relaxed' if self.relax_seeds else 'static'}"
            f"|corr={self.energy_correction}"
        )

    def resolved_reference_source(self, energy_scale: str) -> Literal["ase", "mp", "auto"]:
        """The ElementalReferences source for a potential of ``energy_scale`` (see ``reference_source``)."""
        from oracle.compat import mp_compatible

        if self.reference_source != "auto":
            return self.reference_source
        return "mp" if mp_compatible(energy_scale, self.energy_correction) else "auto"

    def relax_config(self, *, seeds: bool = False) -> RelaxConfig:
        """The RelaxConfig to run (single point for seeds unless ``relax_seeds``)."""
        data = self.model_dump(
            exclude={
                "relax_seeds",
                "num_threads",
                "reference_source",
                "energy_correction",
                "batch_size",
                "competing_phases",
                "md",
            }
        )
        if seeds and not self.relax_seeds:
            data["max_steps"] = 0
        return RelaxConfig(**data)


class RunnerConfig(BaseModel):
    """Where the oracle's relaxations run: in the flow's process, or one task per candidate on Dask."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["local", "dask"] = Field(
        "local", description="'local': one oracle task relaxes the batch in turn; 'dask': one task per candidate."
    )
    dask_address: str = Field(
        "", description="Scheduler address (tcp://host:8786) of an existing Dask cluster; empty: a local cluster."
    )
    dask_workers: int = Field(2, ge=1, le=1024, description="Worker processes of the local cluster (1 thread each).")


class LoopConfig(BaseModel):
    """Everything one discovery campaign needs. Defaults are the embedded default run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign: str = Field("default", description="Campaign name: rounds are stored and resumed under it.")
    rounds: int = Field(3, ge=0, le=1000, description="Discovery rounds after round 0 (which labels the seeds).")
    batch_size: int = Field(4, ge=1, le=10_000, description="Candidates sent to the oracle per round.")
    candidates_per_round: int = Field(100, ge=1, description="At most this many new candidates generated per round.")
    seeds: tuple[str, ...] = Field(
        ("pymatgen:default",),
        description="Seed structures: 'pymatgen:default', 'pymatgen:<name>', files or folders (CIF/POSCAR/JSON).",
    )
    mode: Literal["discovery", "replay"] = Field(
        "discovery",
        description="'discovery': generate candidates and relax them with the oracle; 'replay': the pool of "
        "'replay.pool' is the candidate set and the oracle reveals its known labels (benchmarks).",
    )
    targets: tuple[str, ...] = Field(
        ("formation_energy_per_atom",),
        description="Properties the surrogate learns (one ensemble each) and acquisition sees as outcomes, in "
        "order: 'formation_energy_per_atom' (eV/atom) in discovery mode; label names of the pool in replay mode "
        "(default there: the names the replay target reads).",
    )
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    surrogate: EnsembleConfig = Field(default_factory=EnsembleConfig)
    acquisition: AcquisitionConfig = Field(default_factory=AcquisitionConfig)
    oracle: OracleConfig = Field(default_factory=OracleConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    store_uri: str = Field(
        "embedded", description="'embedded' (local server started on demand), mongodb://... or mongomock://."
    )
    database: str = Field("battery_discovery", description="MongoDB database name.")

    @field_validator("campaign")
    @classmethod
    def _campaign_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", value):
            raise ValueError("use lowercase letters, digits and dashes (it names Prefect artifacts)")
        return value

    @field_validator("database")
    @classmethod
    def _database_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", value):
            raise ValueError("use 1-63 letters, digits, '_' or '-'")
        return value

    def oracle_key(self) -> str:
        """Identity of the oracle labelling this campaign: relaxation settings, or the replayed pool."""
        return f"replay|{self.replay.pool}" if self.mode == "replay" else self.oracle.key()

    @model_validator(mode="before")
    @classmethod
    def _replay_targets(cls, data: Any) -> Any:
        """In replay mode the targets default to the labels the target expression reads (also when the
        discovery default is passed along, as the flow's signature does)."""
        default = ("formation_energy_per_atom",)
        if isinstance(data, dict) and data.get("mode") == "replay" and tuple(data.get("targets") or default) == default:
            replay = data.get("replay") or {}
            text = replay.get("target", "") if isinstance(replay, dict) else getattr(replay, "target", "")
            try:
                names = parse_target(text).names if text else ()
            except ValueError:
                names = ()  # replay.target's own validator reports it, naming the field
            if names:
                data = {**data, "targets": names}
        return data

    @model_validator(mode="after")
    def _mode_is_consistent(self) -> LoopConfig:
        if not self.targets or len(set(self.targets)) != len(self.targets):
            raise ValueError("targets: give one or more distinct property names")
        if self.mode == "replay":
            if not self.replay.pool or not self.replay.target:
                raise ValueError("replay mode needs replay.pool (a data set spec) and replay.target (an expression)")
        elif self.targets != ("formation_energy_per_atom",):
            raise ValueError("discovery mode learns targets ['formation_energy_per_atom'] (the oracle's label)")
        return self

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one seed")
        return value


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the first bad field and why."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    extra = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"invalid config value for {where}: {err['msg']}{extra}"


def build_config(data: dict[str, Any]) -> LoopConfig:
    """Validate a plain dict into a LoopConfig, raising ConfigError with one clear line."""
    try:
        return LoopConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> LoopConfig:
    """Read a YAML file into a LoopConfig; ``overrides`` (top-level keys) win over the file."""
    from core.yamlfile import read_mapping

    data = read_mapping(Path(path))
    data.update(overrides or {})
    return build_config(data)


def dump_config(config: LoopConfig) -> str:
    """The config as YAML (every knob, defaults included)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
