"""The loop's configuration: one model that holds one small config per stage.

The same model is the Prefect flow's parameter set (each top-level field is a flow parameter, so
``prefect deployment run discovery-loop/local --param rounds=3`` works) and the CLI's YAML file.
Which candidate source and which labeler a campaign uses are names in registries
(:mod:`loop.registry`); :func:`loop.plan.build_plan` turns them into objects, once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from acquisition.config import AcquisitionConfig
from core.errors import ConfigError
from core.validation import describe_validation_error
from generation.config import GenerateConfig
from loop.targets import parse_target
from oracle.config import OracleConfig
from store.candidates import check_campaign_name
from surrogates.config import EnsembleConfig


class ReplayConfig(BaseModel):
    """The labelled pool of the ``pool`` source and the ``replay`` labeler (benchmarks)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    pool: str = Field("", description="Labelled pool as an ingest spec, e.g. 'perov5:../shared/data/perov_5/val.csv'.")
    target: str = Field(
        "", description="Which pool entries are discoveries, e.g. 'ind_gap >= 1.5 and heat_all <= 0.5' (label units)."
    )
    initial: int = Field(100, ge=1, description="Entries labelled at random in round 0 (the initial training set).")
    seed: int = Field(0, ge=0, description="Seed of the initial draw (the same draw for every strategy).")

    @field_validator("target")
    @classmethod
    def _parses(cls, value: str) -> str:
        if value:
            parse_target(value)
        return value


class RunnerConfig(BaseModel):
    """Where the labeler's work runs: in the flow's process, or shares of the batch on Dask."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: Literal["local", "dask"] = Field(
        "local", description="'local': one oracle task labels the batch; 'dask': one task per worker share."
    )
    dask_address: str = Field(
        "", description="Scheduler address (tcp://host:8786) of an existing Dask cluster; empty: a local cluster."
    )
    dask_workers: int = Field(2, ge=1, le=1024, description="Worker processes of the local cluster (1 thread each).")


class RuntimeConfig(BaseModel):
    """Process settings shared by every stage (they never change a result)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    num_threads: int = Field(
        1,
        ge=1,
        le=256,
        description="torch threads for training, prediction and the potential; 1 is fastest for these small "
        "models and cells on a shared 2-core machine (2 on a quiet one).",
    )


class LoopConfig(BaseModel):
    """Everything one discovery campaign needs. Defaults are the embedded default run."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    campaign: str = Field("default", description="Campaign name: rounds are stored and resumed under it.")
    rounds: int = Field(3, ge=0, le=1000, description="Discovery rounds after round 0 (which labels the seeds).")
    batch_size: int = Field(4, ge=1, le=10_000, description="Candidates sent to the labeler per round.")
    candidates_per_round: int = Field(100, ge=1, description="At most this many new candidates generated per round.")
    seeds: tuple[str, ...] = Field(
        ("pymatgen:default",),
        description="Seed structures: 'pymatgen:default', 'pymatgen:<name>', files or folders (CIF/POSCAR/JSON).",
    )
    source: str = Field(
        "generated",
        description="Registered candidate source: 'generated' (the seeds, then the generators of 'generate' "
        "applied to the seeds and the best labelled structures each round) or 'pool' (the labelled pool of "
        "'replay.pool' is the candidate set).",
    )
    labeler: str = Field(
        "relax",
        description="Registered labeler: 'relax' (relaxation with the potential of 'oracle': formation "
        "energy, hull) or 'replay' (reveals the pool's known labels; benchmarks).",
    )
    targets: tuple[str, ...] = Field(
        (),
        description="Properties the surrogate learns (one ensemble each) and acquisition sees as outcomes, in "
        "order; empty: the labeler's own ('formation_energy_per_atom' (eV/atom) for 'relax', the labels the "
        "replay target reads for 'replay').",
    )
    properties: tuple[str, ...] | None = Field(
        None,
        description="Further outcomes every candidate is scored on, each from a registered property provider: "
        "'e_above_hull' (eV/atom: the learned formation energy against the hull of Materials Project phases and "
        "the campaign's labels), 'band_gap' (eV) and 'log10_conductivity' (log10 S/cm) from registered property "
        "models trained on public data (trained on first use); outcomes named by acquisition objectives or "
        "constraints are added. None: the labeler's own ('relax': e_above_hull, band_gap, log10_conductivity; "
        "'replay': none).",
    )
    property_models: dict[str, str] = Field(
        default_factory=dict,
        description="Property -> registry model ('name' for its newest version, or 'name-vK') instead of the "
        "default model, e.g. {band_gap: my-gap-model}.",
    )
    final_model: bool = Field(
        True,
        description="Train a model after the last round too (no round of the campaign reads it; the replay "
        "benchmark switches it off, which saves the largest retrain of each campaign).",
    )
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    surrogate: EnsembleConfig = Field(default_factory=EnsembleConfig)
    acquisition: AcquisitionConfig = Field(default_factory=AcquisitionConfig)
    oracle: OracleConfig = Field(default_factory=OracleConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    store_uri: str = Field(
        "embedded", description="'embedded' (local server started on demand), mongodb://... or mongomock://."
    )
    database: str = Field("battery_discovery", description="MongoDB database name.")

    @field_validator("campaign")
    @classmethod
    def _campaign_name(cls, value: str) -> str:
        return check_campaign_name(value)

    @field_validator("database")
    @classmethod
    def _database_name(cls, value: str) -> str:
        import re

        if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", value):
            raise ValueError("use 1-63 letters, digits, '_' or '-'")
        return value

    @field_validator("targets")
    @classmethod
    def _distinct_targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("give distinct property names")
        return value

    @field_validator("properties")
    @classmethod
    def _distinct_properties(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("give distinct property names")
        return value

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one seed")
        return value


def validate_config(data: dict[str, Any]) -> LoopConfig:
    """Validate a plain dict into a LoopConfig (fields only), raising ConfigError with one clear line.

    :func:`loop.plan.build_config` also checks that the named source and labeler exist and fit.
    """
    try:
        return LoopConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def read_config_file(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The top-level keys of a YAML config file; ``overrides`` (top-level keys) win over the file."""
    from core.yamlfile import read_mapping

    data = read_mapping(Path(path))
    data.update(overrides or {})
    return data


def dump_config(config: LoopConfig) -> str:
    """The config as YAML (every knob, defaults included)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
