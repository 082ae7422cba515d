"""Every accepted setting does what it says: each leaf of the loop config, changed to another valid value, either
reaches a role of the campaign that reads it, or is refused in one line naming it (a section no role of the
campaign reads, a GNN setting under a descriptor surrogate). Walked for the default campaign (generated source,
relax labeler, GNN ensemble), with a descriptor surrogate, and for a replay campaign (pool source, replay
labeler)."""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from core.errors import ConfigError
from loop.config import LoopConfig, validate_config
from loop.plan import DESCRIPTOR_READS, ROLE_SECTIONS, build_plan

REPLAY = {
    "source": "pool",
    "labeler": "replay",
    "targets": ["ind_gap"],
    "replay": {"pool": "perov5:pool.csv", "target": "ind_gap >= 1.5"},
}
CAMPAIGNS = {
    "default": {},
    "descriptor": {"surrogate": {"descriptor": "auto"}},
    "replay": REPLAY,
}


def _leaves(model: BaseModel, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """(path, value, annotation) of every scalar setting of ``model``, nested models walked."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _leaves(value, (*prefix, name))
        else:
            yield (*prefix, name), value, info.annotation


def _choices(annotation: Any) -> list[Any]:
    """The values a Literal (or an optional Literal) annotation allows."""
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [c for arg in typing.get_args(annotation) for c in _choices(arg)] + [None]
    return []


def _variants(value: Any, annotation: Any) -> list[Any]:
    """Other values of the same kind, most plausible first (validation picks the first accepted)."""
    literal = [c for c in _choices(annotation) if c != value]
    if literal:
        return literal
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value * 2, 1]
    if isinstance(value, float):
        return [value * 1.5 if value else 0.5, value / 2 if value else 0.1, value + 1.0, value - 0.5]
    return []  # free text, lists, mappings, None: not walked here (their own tests cover them)


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


def _changed(base: dict[str, Any], path: tuple[str, ...], value: Any, annotation: Any) -> LoopConfig | None:
    """The base config with ``path`` set to the first valid other value, or None when none validates."""
    for candidate in _variants(value, annotation):
        try:
            return validate_config(_set(base, path, candidate))
        except ConfigError:
            continue
    return None


def _roles(plan: Any) -> tuple[Any, ...]:
    return (plan.source, plan.labeler, plan.properties, plan.md, plan.electrode)


@pytest.mark.parametrize("campaign", sorted(CAMPAIGNS))
def test_every_setting_reaches_a_role_or_is_refused(campaign: str) -> None:
    base = CAMPAIGNS[campaign]
    default = validate_config(base)
    plan = build_plan(default)
    reads = {s for role in (plan.source, plan.labeler, *plan.properties) for s in getattr(role, "reads", ())}
    checked, refused, reached = 0, [], []
    for path, value, annotation in _leaves(default):
        changed = _changed(base, path, value, annotation)
        if changed is None:
            continue
        checked += 1
        name = ".".join(path)
        section = path[0]
        try:
            other = build_plan(changed)
        except ConfigError as exc:
            message = str(exc)
            assert "\n" not in message, message
            if "has no effect" in message:
                assert message.startswith(f"{name}:"), (name, message)
                refused.append(name)
            continue  # refused for another reason (e.g. a strategy that needs another setting): one line
        if section in ROLE_SECTIONS:  # accepted: a role that reads the section holds the new value
            assert section in reads, f"{name} accepted though no role of the {campaign} campaign reads {section!r}"
            assert _roles(other) != _roles(plan), f"{name} accepted but no role of the {campaign} campaign changed"
            reached.append(name)
        if section == "surrogate" and default.surrogate.descriptor is not None:
            assert path[1] in DESCRIPTOR_READS, f"{name} accepted though the descriptor surrogate does not read it"
    assert checked >= 80, checked  # the walk really walked
    unread = [s for s in ROLE_SECTIONS if s not in reads]
    for name in refused:
        assert name.split(".")[0] in unread or name.startswith("surrogate.") or name == "acquisition.maximize", name
    if campaign == "replay":  # generation and relaxation settings do nothing in a replay campaign
        assert any(n.startswith("generate.") for n in refused) and any(n.startswith("oracle.") for n in refused)
        assert "candidates_per_round" in refused
    if campaign == "descriptor":
        assert {"surrogate.epochs", "surrogate.learning_rate"} <= set(refused)
    if campaign == "default":
        # a replay setting in a relax campaign; maximize where the default objective is to minimise e_above_hull
        assert "acquisition.maximize" in refused
        assert all(n.startswith("replay.") or n == "acquisition.maximize" for n in refused), refused
        assert any(n.startswith("oracle.relax.") for n in reached)
        assert any(n.startswith("generate.") for n in reached)


def test_a_misspelt_property_model_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"property_models.bandgap: no property reads a model"):
        build_plan(validate_config({"property_models": {"bandgap": "my-gap"}}))
    build_plan(validate_config({"property_models": {"band_gap": "my-gap"}}))


def test_the_replay_benchmark_campaigns_set_nothing_their_surrogate_ignores() -> None:
    from battery_discovery.benchmark import BenchmarkConfig, loop_parameters

    for surrogate in ({}, {"descriptor": None}):
        bench = BenchmarkConfig(pool="pool.csv", target="ind_gap >= 1.5", surrogate=surrogate)
        build_plan(validate_config(loop_parameters(bench, "ucb", 0)))
    with pytest.raises(ConfigError, match=r"surrogate\.epochs: has no effect with the descriptor surrogate"):
        bench = BenchmarkConfig(pool="pool.csv", target="ind_gap >= 1.5", surrogate={"epochs": 10})
        build_plan(validate_config(loop_parameters(bench, "ucb", 0)))


def test_a_campaigns_roles_are_built_once_per_process() -> None:
    from loop.plan import cached_plan

    config = validate_config({"campaign": "once"})
    assert cached_plan(config) is cached_plan(validate_config({"campaign": "once"}))
    assert cached_plan(validate_config({"campaign": "once", "rounds": 5})) is not cached_plan(config)


def test_a_registration_rebuilds_the_cached_roles() -> None:
    from loop.plan import cached_plan
    from loop.registry import SOURCES

    config = validate_config({"campaign": "rebuilt"})
    first = cached_plan(config)

    @SOURCES.register("another-source")
    class Another:
        pass

    try:
        assert cached_plan(config) is not first
    finally:
        SOURCES.remove("another-source")
