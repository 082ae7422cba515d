"""Browsing the candidate store page by page: the queries behind the dashboard's candidates table.

Everything is filtered, sorted and paged by the database, never in Python, so a page of 100,000 candidates costs
what a page of 100 does: each sortable column is indexed (``store.repository.INDEXES``) and every column reads
the ``candidates`` collection alone (oracle values come from the candidate's ``oracle`` summary, which the
store keeps in step with its evaluations). Filters are built from whitelisted column names and numbers only
(:func:`core.expressions.parse_target`), so no user text reaches MongoDB as an operator.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pymongo.errors import OperationFailure

from core.expressions import parse_target
from store.repository import CandidateStore, _guard

__all__ = [
    "COLUMNS",
    "NUMERIC_COLUMNS",
    "CandidateQuery",
    "Column",
    "Page",
    "campaign_names",
    "candidate_filter",
    "candidate_page",
    "count_candidates",
    "export_candidates",
    "field_value",
]


@dataclass(frozen=True, kw_only=True)
class Column:
    """One column of the candidates table: where it lives in a candidate document and how it reads."""

    name: str
    path: str
    label: str
    numeric: bool = True


#: The table's columns, in display order (units in the labels).
COLUMNS: tuple[Column, ...] = (
    Column(name="id", path="_id", label="id", numeric=False),
    Column(name="formula", path="formula", label="formula", numeric=False),
    Column(name="elements", path="elements", label="elements", numeric=False),
    Column(name="round", path="provenance.round", label="round"),
    Column(name="generator", path="generator", label="generator", numeric=False),
    Column(name="status", path="status", label="status", numeric=False),
    Column(name="novelty", path="novelty.status", label="novel / known", numeric=False),
    Column(name="known_as", path="novelty.match", label="known as", numeric=False),
    Column(name="n_sites", path="n_sites", label="sites"),
    Column(name="pred_e_above_hull", path="predictions.e_above_hull.mean", label="pred. E_hull (eV/atom)"),
    Column(name="pred_e_above_hull_std", path="predictions.e_above_hull.std", label="± (eV/atom)"),
    Column(name="pred_band_gap", path="predictions.band_gap.mean", label="pred. gap (eV)"),
    Column(name="pred_band_gap_std", path="predictions.band_gap.std", label="± (eV)"),
    Column(
        name="pred_log10_conductivity",
        path="predictions.log10_conductivity.mean",
        label="pred. log10 σ (S/cm)",
    ),
    Column(name="pred_log10_conductivity_std", path="predictions.log10_conductivity.std", label="± (log10)"),
    Column(name="e_above_hull", path="oracle.e_above_hull", label="E_hull (eV/atom)"),
    Column(name="formation_energy", path="oracle.formation_energy_per_atom", label="E_form (eV/atom)"),
    Column(name="band_gap", path="oracle.band_gap", label="gap (eV)"),
    Column(name="log10_conductivity", path="oracle.log10_conductivity", label="log10 σ (S/cm)"),
    Column(name="average_voltage", path="oracle.average_voltage", label="voltage (V)"),
    Column(name="capacity_mAh_g", path="oracle.capacity_mAh_g", label="capacity (mAh/g)"),
    Column(name="window_low_V", path="oracle.window_low_V", label="window low (V)"),
    Column(name="window_high_V", path="oracle.window_high_V", label="window high (V)"),
)
_BY_NAME = {c.name: c for c in COLUMNS}
#: Names a ``where`` expression may use that are no column: ``novel`` is 1 for a novel candidate, 0 for a known one
#: (store.novelty), so ``novel >= 1`` keeps the novel ones.
WHERE_ONLY: dict[str, str] = {"novel": "novelty.novel"}
#: Columns a ``where`` expression may compare with numbers (and :data:`WHERE_ONLY`).
NUMERIC_COLUMNS: tuple[str, ...] = (*(c.name for c in COLUMNS if c.numeric), *WHERE_ONLY)
#: Columns the table may sort by (each has an index, or is the id).
SORTABLE: tuple[str, ...] = (
    "id",
    "formula",
    "round",
    "generator",
    "status",
    "novelty",
    "n_sites",
    "pred_e_above_hull",
    "pred_band_gap",
    "pred_log10_conductivity",
    "e_above_hull",
    "formation_energy",
    "band_gap",
    "log10_conductivity",
    "average_voltage",
)
STATUSES = ("generated", "acquired", "evaluated", "failed")
_PROJECTION = {"structure": 0, "parameters": 0, "labels": 0}
_MONGO_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_ELEMENT = re.compile(r"^[A-Z][a-z]?$")
_HUGE = 1e300  # a range on the sorted field lets SQLite walk its index, and leaves out missing values
MAX_PAGE_SIZE = 500
MAX_EXPORT = 20_000


@dataclass(frozen=True, kw_only=True)
class CandidateQuery:
    """What the table shows: filters (all must hold), one sort column and a page.

    ``where`` compares numeric columns with numbers (``"pred_band_gap >= 3 and e_above_hull <= 0.05"``, units as
    in :data:`COLUMNS`; ``novel >= 1``: the novel candidates only); ``elements`` must all be present; ``alkali``
    'Li', 'Na' or 'Li or Na'; ``formula`` is a reduced formula or its beginning ('LiFe' matches LiFePO4). Sorting
    by a numeric column shows only the rows that have a value in it (missing values have no place in an order).
    """

    campaign: str = ""
    where: str = ""
    elements: tuple[str, ...] = ()
    alkali: Literal["", "Li", "Na", "Li or Na"] = ""
    formula: str = ""
    generator: str = ""
    status: str = ""
    round: int | None = None
    ids: tuple[str, ...] = ()
    sort: str = "pred_e_above_hull"
    descending: bool = False
    page: int = 0
    page_size: int = 25


def candidate_filter(query: CandidateQuery, *, for_sort: bool = True) -> dict[str, Any]:
    """The MongoDB filter of ``query`` (``for_sort``: plus the range that keeps the sorted column's values only).

    Raises:
        ValueError: an unknown column, element, status or sort, or a malformed ``where`` (one line).
    """
    flt: dict[str, Any] = {}
    if query.campaign:
        flt["campaign"] = query.campaign
    elements = [e.strip() for e in query.elements if e.strip()]
    for element in elements:
        if not _ELEMENT.match(element):
            raise ValueError(f"not an element symbol: {element!r}")
    if query.alkali:
        if query.alkali not in ("Li", "Na", "Li or Na"):
            raise ValueError(f"alkali must be Li, Na or 'Li or Na', not {query.alkali!r}")
        if query.alkali == "Li or Na":
            # $in on the array: the embedded server matches arrays with $in/$all but not with a bare value
            flt["elements"] = {"$in": ["Li", "Na"]}
        else:
            elements.append(query.alkali)
    if elements:
        flt.setdefault("elements", {})["$all"] = sorted(set(elements))
    if query.formula.strip():
        text = query.formula.strip()
        if not re.fullmatch(r"[A-Za-z0-9().]+", text):
            raise ValueError(f"formula {text!r}: letters, digits and parentheses only")
        flt["formula"] = {"$regex": "^" + re.escape(text)}
    if query.generator:  # seeds and data-set entries have a source, not a generator
        flt["source" if query.generator in ("seed", "dataset") else "generator"] = query.generator
    if query.status:
        if query.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {query.status!r}")
        flt["status"] = query.status
    if query.round is not None:
        flt["provenance.round"] = int(query.round)
    if query.ids:
        flt["_id"] = {"$in": list(query.ids)}
    if query.where.strip():
        for c in parse_target(query.where).conditions:
            if c.name not in NUMERIC_COLUMNS:
                raise ValueError(f"cannot filter on {c.name!r}; columns: {', '.join(NUMERIC_COLUMNS)}")
            path = WHERE_ONLY[c.name] if c.name in WHERE_ONLY else _BY_NAME[c.name].path
            flt.setdefault(path, {})[_MONGO_OPS[c.op]] = float(c.value)
    if query.sort not in SORTABLE:
        raise ValueError(f"cannot sort by {query.sort!r}; sortable: {', '.join(SORTABLE)}")
    column = _BY_NAME[query.sort]
    if for_sort and column.numeric and column.path not in flt:
        flt[column.path] = {"$gte": -_HUGE, "$lte": _HUGE}
    return flt


def field_value(doc: dict[str, Any], path: str) -> Any:
    """The value at dotted ``path`` of a document read with a projection: nested, as MongoDB returns it, or under
    the dotted key itself, as the embedded server (nx-27017 0.8.1) returns included sub-fields."""
    if path in doc:
        return doc[path]
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    row = {c.name: field_value(doc, c.path) for c in COLUMNS}
    row["elements"] = " ".join(row["elements"] or [])
    row["generator"] = row["generator"] or doc.get("source", "")
    row["campaign"] = doc.get("campaign", "")
    row["hull_thin"] = field_value(doc, "oracle.hull_thin")
    return row


@dataclass(frozen=True, kw_only=True)
class Page:
    """One page of table rows (flat dicts keyed by column name) and whether another follows."""

    rows: list[dict[str, Any]]
    page: int
    page_size: int
    has_next: bool


@_guard
def candidate_page(store: CandidateStore, query: CandidateQuery) -> Page:
    """The rows of ``query``'s page, sorted by its column then by id (a stable order for paging)."""
    size = max(1, min(int(query.page_size), MAX_PAGE_SIZE))
    page = max(0, int(query.page))
    flt = candidate_filter(query)
    direction = -1 if query.descending else 1
    cursor = (
        store.candidates.find(flt, _PROJECTION)
        .sort([(_BY_NAME[query.sort].path, direction), ("_id", direction)])
        .skip(page * size)
        .limit(size + 1)
    )
    docs = list(cursor)
    return Page(rows=[_row(d) for d in docs[:size]], page=page, page_size=size, has_next=len(docs) > size)


@_guard
def count_candidates(store: CandidateStore, query: CandidateQuery, *, limit: int = 0) -> int:
    """How many candidates match ``query`` (with the sorted column's values, as the table shows them), counting at
    most ``limit`` (0: all).

    Uses the ``count`` command: on the embedded server a SQL ``COUNT`` (0.2-5 s at 100,000 candidates, 0.1-0.3 s
    with ``limit=1001``) where ``count_documents``' aggregation runs in Python (about a minute); mongomock has no
    such command.
    """
    flt = candidate_filter(query)
    command: dict[str, Any] = {"count": store.candidates.name, "query": flt}
    if limit:
        command["limit"] = int(limit)
    try:
        return int(store.db.command(command)["n"])
    except (OperationFailure, NotImplementedError, TypeError, KeyError):
        return store.candidates.count_documents(flt, **({"limit": int(limit)} if limit else {}))


@_guard
def export_candidates(store: CandidateStore, query: CandidateQuery, *, limit: int = MAX_EXPORT) -> list[dict[str, Any]]:
    """Every row of ``query`` (all pages, at most ``limit``) with its ``structure`` (pymatgen dict, Å): the relaxed
    one from its evaluation where there is one, else the generated one."""
    flt = candidate_filter(query)
    direction = -1 if query.descending else 1
    cursor = (
        store.candidates.find(flt, {"parameters": 0, "labels": 0})
        .sort([(_BY_NAME[query.sort].path, direction), ("_id", direction)])
        .limit(limit)
    )
    rows = []
    for doc in cursor:
        row = _row(doc)
        row["structure"] = doc.get("structure")
        rows.append(row)
    relaxed = _relaxed_structures(store, [r["id"] for r in rows if r["status"] == "evaluated"])
    for row in rows:
        row["structure"] = relaxed.get(row["id"], row["structure"])
    return rows


def _relaxed_structures(store: CandidateStore, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        for doc in store.evaluations.find(
            {"candidate_id": {"$in": chunk}}, {"candidate_id": 1, "relaxed_structure": 1}
        ):
            if doc.get("relaxed_structure"):
                out[doc["candidate_id"]] = doc["relaxed_structure"]
    return out


@_guard
def campaign_names(store: CandidateStore) -> list[str]:
    """Every campaign with candidates or rounds, sorted."""
    names = {str(c) for c in store.candidates.distinct("campaign")}
    names |= {str(c) for c in store.rounds.distinct("campaign")}
    return sorted(n for n in names if n)


@_guard
def distinct_generators(store: CandidateStore) -> list[str]:
    """Generators (or sources) that made candidates, sorted."""
    values = {str(g) for g in store.candidates.distinct("generator") if g}
    values |= {str(s) for s in store.candidates.distinct("source") if s}
    return sorted(values)
