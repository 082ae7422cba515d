"""Retrain: one ensemble per target on every label so far, registered as ``<campaign>-r<round>``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Structure

from core.errors import ModelNotFoundError
from core.threads import torch_threads
from loop.labels import training_data
from loop.roles import RoundContext
from surrogates.config import EnsembleConfig


@dataclass(frozen=True, kw_only=True)
class RetrainOutput:
    """The model trained at the end of a round (None when nothing was trained)."""

    model_version: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    n_train: int = 0
    elapsed_s: float = 0.0
    #: Set when the round's model was registered but its files could not be read, so it was trained again.
    retrained_because: str | None = None
    #: Whether a model was fitted by this call (False when the round's registered model was kept or none trained).
    trained: bool = False


def wants_model(strategy: str, *, final_model: bool, round_index: int, rounds: int) -> bool:
    """Whether a round trains a model: not for ``random`` (it never reads predictions), nor after the last
    round (``round_index == rounds``) unless ``final_model``."""
    return strategy != "random" and (final_model or round_index < rounds)


def _previous_ensembles(surrogate: EnsembleConfig, ctx: RoundContext) -> list[Any]:
    """The ensembles of the campaign's newest model before this round (empty when none or unreadable)."""
    from surrogates.registry import load_ensembles

    if not surrogate.warm_start:
        return []
    model = ctx.store.latest_model(ctx.campaign, before_round=ctx.round_index)
    if model is None:
        return []
    try:
        return load_ensembles(model, ctx.targets)
    except (ModelNotFoundError, OSError, ValueError):
        return []


def _unreadable(model: Any, targets: Sequence[str]) -> str | None:
    """Why a registered, complete model cannot be loaded (a corrupt or missing file, named), or None."""
    from surrogates.registry import load_ensembles, loop_model_complete

    if not loop_model_complete(model, targets):
        return None  # incomplete (a crash while saving): retrained anyway
    try:
        load_ensembles(model, targets)
    except (ModelNotFoundError, OSError, ValueError) as exc:
        return str(exc)
    return None


def retrain_stage(surrogate: EnsembleConfig, ctx: RoundContext, *, train: bool = True) -> RetrainOutput:
    """Train one ensemble per target on every label so far and register them as ``<campaign>-r<round>``.

    A re-run of a finished round keeps the model registered then. Nothing is trained when ``train`` is
    False (a strategy that never reads predictions, or after the last round when no round will read it)
    or with fewer than two labels of a target.
    """
    from surrogates.registry import loop_model_complete, register_loop_model, surrogate_family

    start = time.perf_counter()
    version = f"{ctx.campaign}-r{ctx.round_index}"
    existing = ctx.store.get_model(version)
    unreadable = _unreadable(existing, ctx.targets) if existing is not None else None
    if existing is not None and unreadable is None and loop_model_complete(existing, ctx.targets):
        # a re-run of a finished round keeps the model later rounds were predicted with
        return RetrainOutput(
            model_version=version,
            metrics=existing.metrics,
            n_train=existing.n_train,
            elapsed_s=time.perf_counter() - start,
        )
    if not train:
        return RetrainOutput(model_version=None, n_train=0, elapsed_s=time.perf_counter() - start)
    labelled, values = training_data(ctx)
    counts = np.isfinite(values).sum(axis=0) if len(labelled) else np.zeros(len(ctx.targets))
    if len(labelled) < 2 or counts.min() < 2:
        return RetrainOutput(model_version=None, n_train=len(labelled), elapsed_s=time.perf_counter() - start)
    structures = [Structure.from_dict(e.relaxed_structure) for e in labelled]  # type: ignore[arg-type]
    previous = _previous_ensembles(surrogate, ctx)  # warm start (surrogate.warm_start)
    ensembles: dict[str, Any] = {}
    family = surrogate_family(surrogate)
    if surrogate.descriptor and surrogate.num_threads is None:
        surrogate = surrogate.model_copy(update={"num_threads": ctx.num_threads})
    for j, target in enumerate(ctx.targets):
        rows = np.flatnonzero(np.isfinite(values[:, j]))
        with torch_threads(ctx.num_threads):
            ensemble = family.fit(
                [structures[i] for i in rows],
                values[rows, j].tolist(),
                config=surrogate,
                property_name=target,
                version=version,
                init_from=previous[j] if previous and isinstance(previous[j], family) else None,
            )
        ensembles[target] = ensemble
    doc = register_loop_model(  # raises ModelNotFoundError when a training diverged (non-finite metrics)
        ctx.store,
        version=version,
        campaign=ctx.campaign,
        round_index=ctx.round_index,
        database=ctx.database,
        ensembles=ensembles,
        config=surrogate,
        n_train=len(labelled),
    )
    return RetrainOutput(
        model_version=version,
        metrics=doc.metrics,
        n_train=len(labelled),
        elapsed_s=time.perf_counter() - start,
        retrained_because=unreadable,
        trained=True,
    )
