"""The one place that turns the config's role names into objects: the candidate source and the labeler.

Nothing else in the project asks which source or labeler a campaign uses: stages, tasks, flows and
reports call the roles' methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import loop.labelers
import loop.properties
import loop.sources  # noqa: F401  (registers the built-in sources)
from acquisition.config import AcquisitionConfig, ObjectiveSpec
from core.errors import ConfigError
from loop.config import LoopConfig, read_config_file, validate_config
from loop.labelers.relax import RelaxLabeler
from loop.properties.base import Property
from loop.registry import LABELERS, PROPERTIES, SOURCES
from loop.roles import CandidateSource, Labeler, RoundContext
from loop.stages.electrode import ELECTRODE_TARGETS
from oracle.config import OracleConfig
from oracle.md import MDConfig
from store.repository import CandidateStore


@dataclass(frozen=True, kw_only=True)
class LoopPlan:
    """A campaign's roles, built once from its config."""

    config: LoopConfig
    source: CandidateSource
    labeler: Labeler
    targets: tuple[str, ...]
    """Outcomes learned in the loop: ``config.targets`` or, when empty, the labeler's own."""
    properties: tuple[Property, ...] = ()
    """Further outcomes from property providers, in config order (see ``LoopConfig.properties``)."""
    acquisition: AcquisitionConfig
    """The acquisition settings in force: ``config.acquisition``, with the default objective (minimise
    ``e_above_hull``) when the campaign scores stability and the config names no objective."""
    md: MDConfig | None = None
    """Molecular dynamics of the best labels after each round (relaxation labelers only); None: none."""
    electrode: OracleConfig | None = None
    """The oracle whose electrode stage computes voltages (relaxation labelers only); None: no electrode stage."""

    @property
    def learn_electrode(self) -> bool:
        """Whether an electrode result is a learned target (then every labelled Li/Na candidate gets one)."""
        return bool(set(self.targets) & set(ELECTRODE_TARGETS))

    @property
    def outcomes(self) -> tuple[str, ...]:
        """What acquisition sees: the learned targets, then the properties."""
        return (*self.targets, *(p.name for p in self.properties))

    def context(self, store: CandidateStore, round_index: int) -> RoundContext:
        """The context of round ``round_index`` of this campaign."""
        return RoundContext(
            store=store,
            campaign=self.config.campaign,
            round_index=round_index,
            labeler_key=self.labeler.key,
            targets=self.targets,
            num_threads=self.config.runtime.num_threads,
            store_uri=self.config.store_uri,
            database=self.config.database,
        )


def build_plan(config: LoopConfig) -> LoopPlan:
    """The source and labeler named by ``config``; ConfigError when one is unknown or they do not fit."""
    source = SOURCES.get(config.source).from_config(config)
    labeler = LABELERS.get(config.labeler).from_config(config)
    targets = config.targets or tuple(labeler.targets)
    if not targets:
        raise ConfigError(f"labeler {config.labeler!r} names no targets: set targets")
    optional = tuple(getattr(labeler, "optional_targets", ()))
    targets = (*targets, *(t for t in _wanted(config) if t in optional and t not in targets))
    provided = (*labeler.targets, *optional)
    if labeler.targets and not set(targets) <= set(provided):
        raise ConfigError(f"labeler {config.labeler!r} provides targets {list(provided)}, not {list(targets)}")
    properties = _properties(config, labeler, targets)
    outcomes = (*targets, *(p.name for p in properties))
    acquisition = config.acquisition
    if not acquisition.objectives and "e_above_hull" in outcomes:  # the default objective is stability
        acquisition = acquisition.model_copy(
            update={"objectives": (ObjectiveSpec(name="e_above_hull", direction="min"),)}
        )
    acquisition.check_outcomes(outcomes)  # objectives and constraints name outcomes the loop predicts
    md = config.oracle.md if config.oracle.md.enabled and isinstance(labeler, RelaxLabeler) else None
    electrode = config.oracle if isinstance(labeler, RelaxLabeler) else None
    return LoopPlan(
        config=config,
        source=source,
        labeler=labeler,
        targets=targets,
        properties=properties,
        acquisition=acquisition,
        md=md,
        electrode=electrode,
    )


def _wanted(config: LoopConfig) -> list[str]:
    """Outcomes the acquisition settings name, and the learned targets the named properties need."""
    names = [item.name for item in (*config.acquisition.objectives, *config.acquisition.constraints)]
    for name in [*(config.properties or ()), *names]:
        if name in PROPERTIES:
            names.extend(PROPERTIES.get(name).needs)
    return list(dict.fromkeys(names))


def _properties(config: LoopConfig, labeler: Labeler, targets: tuple[str, ...]) -> tuple[Property, ...]:
    """The campaign's property providers: ``config.properties`` (None: the labeler's defaults that apply to this
    config) plus registered properties that acquisition objectives or constraints name; each must find the
    learned targets it needs."""
    explicit = config.properties is not None
    names = list(config.properties if explicit else getattr(labeler, "default_properties", ()))  # type: ignore[arg-type]
    if not explicit:
        names = [n for n in names if PROPERTIES.get(n).applies(config)]
    for item in (*config.acquisition.objectives, *config.acquisition.constraints):
        if item.name not in targets and item.name not in names and item.name in PROPERTIES:
            names.append(item.name)
    providers = []
    for name in names:
        if name in targets:
            continue  # learned in the loop already
        cls = PROPERTIES.get(name)
        missing = [t for t in cls.needs if t not in targets]
        if missing:
            raise ConfigError(
                f"property {name!r} derives from the learned target(s) {', '.join(missing)}, which labeler "
                f"{config.labeler!r} with targets {list(targets)} does not learn"
            )
        providers.append(cls.from_config(config))
    return tuple(providers)


def build_config(data: dict[str, Any]) -> LoopConfig:
    """Validate a plain dict into a LoopConfig whose roles exist and fit; ConfigError with one clear line."""
    config = validate_config(data)
    build_plan(config)
    return config


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> LoopConfig:
    """Read a YAML file into a checked LoopConfig; ``overrides`` (top-level keys) win over the file."""
    return build_config(read_config_file(path, overrides))
