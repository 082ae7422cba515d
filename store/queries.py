"""Property queries over a campaign's candidates: ``--where "band_gap >= 3 and e_above_hull <= 0.05"``.

An expression is parsed by :func:`core.expressions.parse_target` into comparisons of known property names with
numbers; each becomes a MongoDB comparison on a whitelisted field path (:data:`QUERY_FIELDS`), so no part of a
user's text reaches the database as an operator. Evaluated candidates are matched on the oracle's values and the
model properties of their relaxed structures; with ``predicted=True`` the unevaluated ones are matched on their
latest predictions too. ``novel`` is 1 for a novel candidate and 0 for a known one (:mod:`store.novelty`: it matches a
reference phase or a seed), so ``novel >= 1`` keeps the novel ones. Rows are flat dicts with the columns of
:data:`COLUMNS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from core.expressions import parse_target
from store.documents import CandidateDoc, EvaluationDoc, Novelty
from store.repository import CandidateStore, _guard

__all__ = ["COLUMNS", "QUERY_FIELDS", "query_rows", "where_filter"]

#: Property name -> (field path in an evaluation, field path in a candidate's predictions or None).
QUERY_FIELDS: dict[str, tuple[str, str | None]] = {
    "formation_energy_per_atom": ("formation_energy_per_atom", "predictions.formation_energy_per_atom.mean"),
    "e_above_hull": ("energy_above_hull", "predictions.e_above_hull.mean"),
    "energy_per_atom": ("energy_per_atom", None),
    "band_gap": ("properties.band_gap.mean", "predictions.band_gap.mean"),
    "log10_conductivity": ("properties.log10_conductivity.mean", "predictions.log10_conductivity.mean"),
    "average_voltage": ("electrode.average_voltage", None),
    "capacity_mAh_g": ("electrode.capacity_mAh_g", None),
    "energy_density_Wh_kg": ("electrode.energy_density_Wh_kg", None),
    "volume_change": ("electrode.volume_change", None),
    "stability_window_low_V": ("window.low_V", None),
    "stability_window_high_V": ("window.high_V", None),
    "round": ("provenance.round", "provenance.round"),
    # 1 novel, 0 known (store.novelty): 'novel >= 1' keeps the novel ones, 'novel <= 0' the known ones
    "novel": ("novelty.novel", "novelty.novel"),
}

#: Columns of a result row (units: eV/atom, eV, log10 S/cm, V, mAh/g, Wh/kg).
COLUMNS: tuple[str, ...] = (
    "id",
    "formula",
    "campaign",
    "round",
    "status",
    "values_from",
    "novelty",
    "known_as",
    "formation_energy_per_atom",
    "e_above_hull",
    "hull_thin",
    "hull_phases",
    "hull_sources",
    "band_gap_mean",
    "band_gap_std",
    "log10_conductivity_mean",
    "log10_conductivity_std",
    "average_voltage",
    "capacity_mAh_g",
    "energy_density_Wh_kg",
    "stability_window_low_V",
    "stability_window_high_V",
    "reason",
)

_MONGO_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def where_filter(expression: str, *, predicted: bool = False) -> dict[str, Any]:
    """The MongoDB filter of ``expression`` on evaluations (or, ``predicted``, on candidates' predictions).

    Raises:
        ValueError: not an expression, or a name that is not a queryable property (the message lists them).
    """
    if not expression.strip():
        return {}
    parsed = parse_target(expression)
    flt: dict[str, dict[str, float]] = {}
    for c in parsed.conditions:
        if c.name not in QUERY_FIELDS:
            raise ValueError(f"cannot filter on {c.name!r}; properties: {', '.join(QUERY_FIELDS)}")
        path = QUERY_FIELDS[c.name][1 if predicted else 0]
        if path is None:
            return {"_id": {"$in": []}}  # computed only for evaluated candidates: no prediction matches
        flt.setdefault(path, {})[_MONGO_OPS[c.op]] = float(c.value)
    return flt


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _novelty_cells(novelty: Novelty | None) -> dict[str, Any]:
    """``novelty`` ('known', 'novel'; None: not checked), ``known_as`` (the id it matches) and ``novel`` (1, 0)."""
    if novelty is None:
        return {"novelty": None, "known_as": None, "novel": None}
    return {"novelty": novelty.status, "known_as": novelty.match, "novel": novelty.novel}


def _evaluation_row(e: EvaluationDoc) -> dict[str, Any]:
    electrode, window = e.electrode or {}, e.window or {}
    row = {
        "id": e.candidate_id,
        "formula": e.formula,
        "campaign": e.campaign,
        "round": e.provenance.round,
        "status": e.status,
        "values_from": "oracle",
        **_novelty_cells(e.novelty),
        "formation_energy_per_atom": e.formation_energy_per_atom,
        "e_above_hull": e.energy_above_hull,
        "hull_thin": e.hull.get("thin"),
        "hull_phases": e.hull.get("n_phases"),
        "hull_sources": format_sources(e.hull.get("sources")),
        "average_voltage": _num(electrode.get("average_voltage")),
        "capacity_mAh_g": _num(electrode.get("capacity_mAh_g")),
        "energy_density_Wh_kg": _num(electrode.get("energy_density_Wh_kg")),
        "stability_window_low_V": _num(window.get("low_V")),
        "stability_window_high_V": _num(window.get("high_V")),
        "reason": e.reason,
        "structure": e.relaxed_structure,
    }
    for name in ("band_gap", "log10_conductivity"):
        value = e.properties.get(name, {})
        row[f"{name}_mean"], row[f"{name}_std"] = _num(value.get("mean")), _num(value.get("std"))
    return row


def _candidate_row(c: CandidateDoc) -> dict[str, Any]:
    p = c.predictions
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        id=c.id,
        formula=c.formula,
        campaign=c.campaign,
        round=c.provenance.round,
        status=c.status,
        values_from="predicted",
        **_novelty_cells(c.novelty),
        formation_energy_per_atom=_num(p.get("formation_energy_per_atom", {}).get("mean")),
        e_above_hull=_num(p.get("e_above_hull", {}).get("mean")),
        reason="",
        structure=c.structure,
    )
    for name in ("band_gap", "log10_conductivity"):
        row[f"{name}_mean"] = _num(p.get(name, {}).get("mean"))
        row[f"{name}_std"] = _num(p.get(name, {}).get("std"))
    return row


@_guard
def query_rows(
    store: CandidateStore,
    *,
    campaign: str | None = None,
    where: str = "",
    elements: Sequence[str] = (),
    predicted: bool = False,
    include_failed: bool = False,
    sort: str = "e_above_hull",
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Candidates matching ``where`` (see :func:`where_filter`), ascending by ``sort`` (unknown values last),
    at most ``limit`` (0: all). Each row has :data:`COLUMNS` plus ``structure`` (pymatgen dict, Å) for export.

    Args:
        predicted: also the unevaluated candidates, matched on their latest predictions.
        include_failed: also failed evaluations (with their reason).
    """
    if sort not in QUERY_FIELDS and sort != "formula":
        raise ValueError(f"cannot sort by {sort!r}; choose one of formula, {', '.join(QUERY_FIELDS)}")
    base: dict[str, Any] = {}
    if campaign:
        base["campaign"] = campaign
    if elements:
        base["elements"] = {"$all": list(elements)}
    flt = {**base, **where_filter(where)}
    if not include_failed:
        flt["status"] = {"$ne": "failed"}
    rows = [_evaluation_row(EvaluationDoc.model_validate(d)) for d in store.evaluations.find(flt)]
    if predicted:
        cflt = {**base, **where_filter(where, predicted=True), "status": {"$in": ["generated", "acquired"]}}
        rows += [_candidate_row(CandidateDoc.model_validate(d)) for d in store.candidates.find(cflt)]

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        if sort == "formula":
            return (row["formula"], row["id"])
        value = row.get(sort, row.get(f"{sort}_mean"))
        missing = not isinstance(value, int | float) or not math.isfinite(float(value))
        return (missing, 0.0 if missing else float(value), row["id"])

    rows.sort(key=key)
    return rows[:limit] if limit else rows


def format_sources(sources: dict[str, int] | None) -> str | None:
    """``{"mp_20": 8, "computed": 3}`` as ``"mp_20:8;computed:3"`` (most first), None when unknown."""
    if not sources:
        return None
    return ";".join(f"{k}:{v}" for k, v in sorted(sources.items(), key=lambda kv: (-kv[1], kv[0])))
