"""Acquire: choose the round's batch from the predictions and record it on the round.

The posterior settings (``acquisition.posterior``) in the loop:

- ``recalibrate``: each learned target's spread scale is fitted (:func:`acquisition.fit_spread_scale_moments`) on
  the campaign's held-out pairs (:func:`held_out_pairs`): every candidate acquired with a prediction in an earlier
  round, its prediction as recorded then (``BatchEntry.means``/``stds``, made by the model of the round before,
  which had not seen its label) and its label. A target with fewer than :data:`MIN_CALIBRATION_PAIRS` pairs keeps
  ``posterior.spread_scale``. A property derived from one learned target (its provider ``needs`` it:
  ``e_above_hull`` is the formation energy members shifted by the hull, energy density the voltage members times
  the capacity) takes that target's factor; any other property keeps ``posterior.spread_scale``. The factors, the
  pairs and the rounds they come from are recorded in the round's ``acquisition_notes``.
- ``kind: gp``: a GP fitted on the descriptor surrogate's features (describe + CHGNet) of the labelled structures
  and their values of every outcome, looked up on the pool's features; it needs no ensemble, only two labelled
  structures (fewer: the batch is random, noted).

``BatchEntry.means``/``stds`` are always the ensemble's own (unscaled) predictions, the data the next rounds
recalibrate on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition import fit_spread_scale_moments, select
from acquisition.config import AcquisitionConfig, PosteriorConfig
from core.threads import torch_threads
from loop.labels import NESTED_TARGETS, label_value, observed_targets
from loop.registry import PROPERTIES
from loop.roles import RoundContext
from loop.stages.predict import PredictOutput, candidate_features, labelled_features
from store.documents import BatchEntry, EvaluationDoc, RoundDoc

#: Fewest held-out pairs a learned target's spread scale is fitted on (fewer: ``posterior.spread_scale``). With
#: n pairs of Gaussian errors the fitted factor is within about ``1 / sqrt(2 n)`` (25 % at 8) of the true one.
MIN_CALIBRATION_PAIRS = 8


@dataclass(frozen=True, kw_only=True)
class AcquireOutput:
    """The chosen batch, one entry per candidate, in selection order."""

    entries: list[BatchEntry]
    strategy: str
    elapsed_s: float
    #: Factor applied to each outcome's ensemble spread (empty: a random batch, the GP posterior, a resumed round).
    spread_scale: dict[str, float] = field(default_factory=dict)
    #: With ``posterior.recalibrate``: the held-out pairs of each learned target.
    calibration_pairs: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class HeldOutPairs:
    """Predictions made before the label existed, and the labels: ``n x m`` over the learned targets (NaN: none)."""

    mean: np.ndarray
    std: np.ndarray
    label: np.ndarray
    rounds: list[int]
    """The rounds the pairs were acquired in."""


def held_out_pairs(ctx: RoundContext) -> HeldOutPairs:
    """Every candidate of the campaign acquired with a prediction before round ``ctx.round_index``: its mean and std
    of each learned target at acquisition and its label (a failed or missing evaluation gives NaN)."""
    m = len(ctx.targets)
    fields = ["labels", *[t for t in ctx.targets if t in EvaluationDoc.model_fields]]
    fields += sorted({NESTED_TARGETS[t][0] for t in ctx.targets if t in NESTED_TARGETS})
    labels = {r["candidate_id"]: r for r in ctx.store.evaluation_rows(ctx.campaign, ctx.labeler_key, fields)}
    mean, std, label, rounds = [], [], [], []
    for doc in ctx.store.list_rounds(ctx.campaign):
        if doc.round >= ctx.round_index:
            continue
        entries = [e for e in doc.acquired if e.means]
        for e in entries:
            row = labels.get(e.candidate_id)
            mean.append([e.means.get(t, np.nan) for t in ctx.targets])
            std.append([e.stds.get(t, np.nan) for t in ctx.targets])
            label.append([label_value(row, t) if row is not None else np.nan for t in ctx.targets])
        if entries:
            rounds.append(doc.round)
    shape = (len(mean), m)
    return HeldOutPairs(
        mean=np.asarray(mean, dtype=float).reshape(shape),
        std=np.asarray(std, dtype=float).reshape(shape),
        label=np.asarray(label, dtype=float).reshape(shape),
        rounds=rounds,
    )


def _span(rounds: list[int]) -> str:
    """``round 3`` or ``rounds 1-4``."""
    return f"round {rounds[0]}" if len(rounds) == 1 else f"rounds {rounds[0]}-{rounds[-1]}"


def fitted_spread_scale(
    posterior: PosteriorConfig, ctx: RoundContext, names: tuple[str, ...]
) -> tuple[np.ndarray, dict[str, int], list[str]]:
    """Per-outcome factors for ``names`` fitted on the held-out pairs (see the module), the pairs of each learned
    target, and the notes that record them."""
    pairs = held_out_pairs(ctx)
    fitted, counts = fit_spread_scale_moments(pairs.mean, pairs.std, pairs.label)
    default = posterior.spread_scale
    per_target: dict[str, float] = {}
    notes = []
    for j, target in enumerate(ctx.targets):
        if counts[j] >= MIN_CALIBRATION_PAIRS:
            per_target[target] = float(fitted[j])
            notes.append(
                f"spread scale {target} {fitted[j]:.4f} fitted on {counts[j]} held-out pairs ({_span(pairs.rounds)})"
            )
        else:
            per_target[target] = default
            notes.append(
                f"spread scale {target} {default:g}: posterior.spread_scale, {counts[j]} held-out pairs "
                f"(fewer than {MIN_CALIBRATION_PAIRS})"
            )
    scale = []
    for name in names:
        if name in per_target:
            scale.append(per_target[name])
            continue
        needs = tuple(PROPERTIES.get(name).needs) if name in PROPERTIES else ()
        if len(needs) == 1 and needs[0] in per_target:
            scale.append(per_target[needs[0]])
            notes.append(f"spread scale {name} {per_target[needs[0]]:.4f} (that of {needs[0]})")
        else:
            scale.append(default)
    return np.asarray(scale, dtype=float), {t: int(c) for t, c in zip(ctx.targets, counts, strict=True)}, notes


def acquire_stage(
    acquisition: AcquisitionConfig, ctx: RoundContext, prediction: PredictOutput, *, batch_size: int
) -> AcquireOutput:
    """Choose ``batch_size`` candidates and record the batch on the round (idempotent: a batch already
    recorded for this round is returned as it is). Without a model, or with one predicting NaN/inf, the
    batch is random (the GP posterior needs only two labels)."""
    start = time.perf_counter()
    store = ctx.store
    existing = store.get_round(ctx.campaign, ctx.round_index)
    if existing is not None and existing.acquired:
        return AcquireOutput(entries=existing.acquired, strategy="resumed", elapsed_s=time.perf_counter() - start)
    pool = store.candidate_briefs(prediction.pool_ids)
    if not pool:
        return AcquireOutput(entries=[], strategy=acquisition.strategy, elapsed_s=time.perf_counter() - start)
    names = tuple(prediction.outcomes or ctx.targets)
    observed = np.asarray(prediction.observed, dtype=float) if prediction.outcomes else observed_targets(ctx)
    m = len(names)
    usable = bool(prediction.members) and bool(np.all(np.isfinite(np.asarray(prediction.members))))
    members = np.asarray(prediction.members, dtype=float).reshape(-1, len(pool), m) if usable else None
    n_labels = int(np.all(np.isfinite(observed), axis=1).sum()) if observed.size else 0
    notes: list[str] = []
    inputs: dict[str, Any] = {}
    pairs: dict[str, int] = {}
    if acquisition.strategy == "random":  # reads no posterior: nothing to fit
        acquisition = acquisition.model_copy(update={"posterior": PosteriorConfig()})
    gp = acquisition.posterior.kind == "gp"
    posterior_members: np.ndarray | None = np.zeros((1, len(pool), m))  # a random batch reads none
    if gp and n_labels >= 2:
        with torch_threads(ctx.num_threads):
            inputs["features"] = candidate_features(ctx, [c["_id"] for c in pool])
            inputs["observed_features"] = labelled_features(ctx)
        if inputs["observed_features"].shape[0] != observed.shape[0]:
            raise ValueError(
                f"{inputs['observed_features'].shape[0]} labelled structures for {observed.shape[0]} label rows"
            )
        notes.append(f"posterior gp on {n_labels} labels x {inputs['features'].shape[1]} features")
        strategy, posterior_members = acquisition, None
    elif members is not None and not gp:
        strategy, posterior_members = acquisition, members  # select() falls back from logei to ucb without labels
        if acquisition.posterior.recalibrate:
            inputs["spread_scale"], pairs, fitted_notes = fitted_spread_scale(acquisition.posterior, ctx, names)
            notes += fitted_notes
    else:  # no model yet, one predicting NaN/inf, or a GP without two labels: nothing to exploit
        if gp:
            notes.append(
                f"posterior gp: {n_labels} labelled structures with every outcome known, 2 needed: random batch"
            )
        strategy = acquisition.model_copy(update={"strategy": "random", "posterior": PosteriorConfig()})
    selection = select(
        posterior_members,
        batch_size,
        strategy,
        outcome_names=names,
        observed=observed if len(observed) else None,
        keys=[c["formula"] for c in pool],
        **inputs,
    )
    # the ensemble's own (unscaled) predictions, n x m each: what later rounds recalibrate on
    mean, std = (members.mean(0), members.std(0)) if members is not None else (None, None)
    entries = [
        BatchEntry(
            candidate_id=pool[i]["_id"],
            formula=pool[i]["formula"],
            n_sites=pool[i]["n_sites"],
            mean=float(mean[i, 0]) if mean is not None else None,
            std=float(std[i, 0]) if std is not None else None,
            means={t: float(mean[i, j]) for j, t in enumerate(names)} if mean is not None else {},
            stds={t: float(std[i, j]) for j, t in enumerate(names)} if std is not None else {},
            acquisition_value=value,
        )
        for i, value in zip(selection.indices, selection.values, strict=True)
    ]
    store.set_status([e.candidate_id for e in entries], "acquired")
    doc = existing or RoundDoc(_id=f"{ctx.campaign}:{ctx.round_index}", campaign=ctx.campaign, round=ctx.round_index)
    update = {
        "acquired": entries,
        "n_pool": len(pool),
        "prediction_model": prediction.model_version,
        "acquisition_notes": [*notes, *selection.notes],
    }
    store.save_round(doc.model_copy(update=update))
    ensemble = members is not None and posterior_members is members
    applied = dict(zip(names, selection.spread_scale, strict=True)) if ensemble else {}
    return AcquireOutput(
        entries=entries,
        strategy=selection.strategy,
        elapsed_s=time.perf_counter() - start,
        spread_scale=applied,
        calibration_pairs=pairs,
    )
