"""The one place that turns the config's role names into objects: the candidate source and the labeler.

Nothing else in the project asks which source or labeler a campaign uses: stages, tasks, flows and
reports call the roles' methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import loop.labelers
import loop.properties
import loop.sources  # noqa: F401  (registers the built-in sources)
from acquisition.config import AcquisitionConfig, ObjectiveSpec
from core.errors import ConfigError
from core.registry import registry_changes
from loop.config import LoopConfig, read_config_file, validate_config
from loop.labelers.relax import RelaxLabeler
from loop.properties.base import Property
from loop.properties.models import ModelProperty
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


#: Config sections that only some roles read (``reads`` of sources, labelers and properties).
ROLE_SECTIONS = ("seeds", "candidates_per_round", "generate", "oracle", "replay")
#: What a descriptor surrogate reads of ``surrogate``; every other setting is the GNN ensemble's.
DESCRIPTOR_READS = frozenset({"descriptor", "n_members", "seed", "num_threads"})


def _default(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].get_default(call_default_factory=True)


def _first_change(prefix: str, value: Any, default: Any) -> str:
    """The dotted name of the first setting where ``value`` differs from ``default``."""
    if isinstance(value, BaseModel) and type(value) is type(default):
        for name in type(value).model_fields:
            if getattr(value, name) != getattr(default, name):
                return _first_change(f"{prefix}.{name}", getattr(value, name), getattr(default, name))
    return prefix


def check_settings_read(config: LoopConfig, roles: list[Any]) -> None:
    """Refuse a setting that differs from its default where no role of the campaign reads it, in one line naming
    it and why: a role-specific section (``ROLE_SECTIONS``) that neither the source, the labeler nor a property
    reads, a GNN setting under a descriptor surrogate, a ``property_models`` key naming no model-based property."""
    read = {section for role in roles for section in getattr(role, "reads", ())}
    for section in ROLE_SECTIONS:
        value, default = getattr(config, section), _default(LoopConfig, section)
        if section not in read and value != default:
            raise ConfigError(
                f"{_first_change(section, value, default)}: has no effect with source {config.source!r} and "
                f"labeler {config.labeler!r} (none of them reads '{section}'); remove it"
            )
    surrogate = config.surrogate
    if surrogate.descriptor is not None:
        for name in type(surrogate).model_fields:
            if name not in DESCRIPTOR_READS and getattr(surrogate, name) != _default(type(surrogate), name):
                raise ConfigError(
                    f"surrogate.{name}: has no effect with the descriptor surrogate ({surrogate.descriptor!r} reads "
                    f"n_members, seed and num_threads); remove it, or set surrogate.descriptor: null for the GNN "
                    "ensemble"
                )
    with_models = sorted(name for name in PROPERTIES.names() if issubclass(PROPERTIES.get(name), ModelProperty))
    for name in config.property_models:
        if name not in with_models:
            raise ConfigError(
                f"property_models.{name}: no property reads a model under that name (properties with models: "
                f"{', '.join(with_models)})"
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
    check_settings_read(config, [source, labeler, *properties])
    outcomes = (*targets, *(p.name for p in properties))
    acquisition = config.acquisition
    if not acquisition.objectives and "e_above_hull" in outcomes:  # the default objective is stability
        if acquisition.maximize:
            raise ConfigError(
                "acquisition.maximize: has no effect here: without objectives this campaign minimises e_above_hull; "
                "name the objective instead (acquisition.objectives)"
            )
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


_PLANS: dict[str, LoopPlan] = {}  # registry changes + config -> plan


def cached_plan(config: LoopConfig) -> LoopPlan:
    """:func:`build_plan` once per config and process: a round's tasks share their campaign's roles instead of
    rebuilding them (the roles are immutable; what changes between rounds lives in the store)."""
    key = f"{registry_changes()}:{config.model_dump_json()}"
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= 16:  # a long-lived worker process running many campaigns
            _PLANS.pop(next(iter(_PLANS)))
        plan = _PLANS[key] = build_plan(config)
    return plan


def build_config(data: dict[str, Any]) -> LoopConfig:
    """Validate a plain dict into a LoopConfig whose roles exist and fit; ConfigError with one clear line."""
    config = validate_config(data)
    build_plan(config)
    return config


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> LoopConfig:
    """Read a YAML file into a checked LoopConfig; ``overrides`` (top-level keys) win over the file."""
    return build_config(read_config_file(path, overrides))
