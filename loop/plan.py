"""The one place that turns the config's role names into objects: the candidate source and the labeller.

Nothing else in the project asks which source or labeller a campaign uses: stages, tasks, flows and
reports call the roles' methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import loop.labelers
import loop.sources  # noqa: F401  (registers the built-in sources)
from core.errors import ConfigError
from loop.config import LoopConfig, read_config_file, validate_config
from loop.labelers.relax import RelaxLabeler
from loop.registry import LABELERS, SOURCES
from loop.roles import CandidateSource, Labeler, RoundContext
from oracle.md import MDConfig
from store.repository import CandidateStore


@dataclass(frozen=True, kw_only=True)
class LoopPlan:
    """A campaign's roles, built once from its config."""

    config: LoopConfig
    source: CandidateSource
    labeler: Labeler
    targets: tuple[str, ...]
    """Outcomes learned and acquired on: ``config.targets`` or, when empty, the labeller's own."""
    md: MDConfig | None = None
    """Molecular dynamics of the best labels after each round (relaxation labellers only); None: none."""

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
    """The source and labeller named by ``config``; ConfigError when one is unknown or they do not fit."""
    source = SOURCES.get(config.source).from_config(config)
    labeler = LABELERS.get(config.labeler).from_config(config)
    targets = config.targets or tuple(labeler.targets)
    if not targets:
        raise ConfigError(f"labeller {config.labeler!r} names no targets: set targets")
    provided = tuple(labeler.targets)
    if provided and not set(targets) <= set(provided):
        raise ConfigError(f"labeller {config.labeler!r} provides targets {list(provided)}, not {list(targets)}")
    config.acquisition.check_outcomes(targets)  # objectives and constraints name outcomes the loop predicts
    md = config.oracle.md if config.oracle.md.enabled and isinstance(labeler, RelaxLabeler) else None
    return LoopPlan(config=config, source=source, labeler=labeler, targets=targets, md=md)


def build_config(data: dict[str, Any]) -> LoopConfig:
    """Validate a plain dict into a LoopConfig whose roles exist and fit; ConfigError with one clear line."""
    config = validate_config(data)
    build_plan(config)
    return config


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> LoopConfig:
    """Read a YAML file into a checked LoopConfig; ``overrides`` (top-level keys) win over the file."""
    return build_config(read_config_file(path, overrides))
