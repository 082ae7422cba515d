"""Reading labels back: the value of a target in an evaluation, observed targets, training data.

Pure reads of the store; every labeler writes evaluations these functions understand: a target is a
revealed label (``labels[name]``) or an evaluation field of that name (``formation_energy_per_atom``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from loop.roles import RoundContext
from store.documents import EvaluationDoc

#: Targets read from a nested result of an evaluation: name -> (field, key).
NESTED_TARGETS: dict[str, tuple[str, str]] = {
    "average_voltage": ("electrode", "average_voltage"),
    "volume_change": ("electrode", "volume_change"),
}


def label_value(evaluation: EvaluationDoc | Mapping[str, Any], prop: str) -> float:
    """The value of target ``prop`` in an evaluation (a document or a projected row): a revealed label, a
    field such as ``formation_energy_per_atom``, or a nested result such as the electrode's ``average_voltage``
    (:data:`NESTED_TARGETS`); NaN when it has none."""
    get = evaluation.get if isinstance(evaluation, Mapping) else lambda k: getattr(evaluation, k, None)
    labels = get("labels") or {}
    if prop in NESTED_TARGETS:
        field, key = NESTED_TARGETS[prop]
        other = (get(field) or {}).get(key)
    else:
        other = get(prop)
    value = labels.get(prop, other)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def observed_targets(ctx: RoundContext) -> np.ndarray:
    """``n_obs x m`` target values of the campaign's evaluations (NaN: missing), without reading structures."""
    fields = ["labels", *[t for t in ctx.targets if t in EvaluationDoc.model_fields]]
    fields += sorted({NESTED_TARGETS[t][0] for t in ctx.targets if t in NESTED_TARGETS})
    rows = ctx.store.evaluation_rows(ctx.campaign, ctx.labeler_key, fields)
    values = [[label_value(r, t) for t in ctx.targets] for r in rows]
    return np.asarray(values, dtype=float).reshape(len(rows), len(ctx.targets))


def training_data(ctx: RoundContext) -> tuple[list[EvaluationDoc], np.ndarray]:
    """Evaluations with a structure and at least one finite target, and their targets ``n x m`` (NaN: missing)."""
    evaluations = [e for e in ctx.store.evaluated(ctx.campaign, ctx.labeler_key) if e.relaxed_structure]
    values = np.array([[label_value(e, t) for t in ctx.targets] for e in evaluations], dtype=float)
    values = values.reshape(len(evaluations), len(ctx.targets))
    keep = np.isfinite(values).any(axis=1)
    return [e for e, k in zip(evaluations, keep, strict=True) if k], values[keep]
