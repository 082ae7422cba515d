"""What the dashboard's pages show, read from the store as plain values (no Dash here).

Each function takes a :class:`store.CandidateStore` and returns dicts and lists of numbers and strings; the pages
turn them into tables and figures. Units: eV/atom for energies, eV for band gaps, log10 S/cm, V, mAh/g.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from store.browse import campaign_names, field_value
from store.documents import CandidateDoc, EvaluationDoc, Novelty, RoundDoc
from store.repository import CandidateStore, _guard

#: Batch-entry outcome name -> field of an evaluation holding the oracle's value of it (eV/atom).
ORACLE_OF = {"formation_energy_per_atom": "formation_energy_per_atom", "e_above_hull": "energy_above_hull"}
#: How many evaluated candidates the property scatter shows at most (the most recent rounds first).
MAX_SCATTER = 5000


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value)):
        return float(value)
    return None


def _count(store: CandidateStore, collection: str, flt: dict[str, Any]) -> int:
    """``count`` command (a SQL COUNT on the embedded server), else ``count_documents`` (mongomock)."""
    try:
        return int(store.db.command({"count": collection, "query": flt})["n"])
    except Exception:
        return store.db[collection].count_documents(flt)


@dataclass(frozen=True, kw_only=True)
class CampaignSummary:
    """One campaign at a glance."""

    name: str
    rounds_completed: int
    last_round: int | None
    n_candidates: int
    n_evaluations: int
    best_formula: str
    best_id: str
    best_e_above_hull: float | None
    running: bool
    running_since: str
    updated: str


def _ago(when: datetime | None) -> str:
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max(0.0, (datetime.now(UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


@_guard
def campaign_summaries(store: CandidateStore) -> list[CampaignSummary]:
    """Every campaign in the store: rounds, candidates, evaluations, the most stable so far, whether a round runs."""
    out = []
    for name in campaign_names(store):
        rounds = list(
            store.rounds.find({"campaign": name}, {"round": 1, "status": 1, "started_at": 1, "completed_at": 1}).sort(
                "round", 1
            )
        )
        completed = [r for r in rounds if r.get("status") == "completed"]
        running = [r for r in rounds if r.get("status") == "running"]
        best = next(
            iter(
                store.evaluations.find(
                    {"campaign": name, "status": {"$ne": "failed"}, "energy_above_hull": {"$gte": -1e300}},
                    {"candidate_id": 1, "formula": 1, "energy_above_hull": 1},
                )
                .sort([("energy_above_hull", 1), ("_id", 1)])
                .limit(1)
            ),
            None,
        )
        stamps = [r.get("completed_at") or r.get("started_at") for r in rounds]
        stamps = [s for s in stamps if s is not None]
        out.append(
            CampaignSummary(
                name=name,
                rounds_completed=len(completed),
                last_round=max((int(r["round"]) for r in rounds), default=None),
                n_candidates=_count(store, "candidates", {"campaign": name}),
                n_evaluations=_count(store, "evaluations", {"campaign": name}),
                best_formula=(best or {}).get("formula", ""),
                best_id=(best or {}).get("candidate_id", ""),
                best_e_above_hull=_number((best or {}).get("energy_above_hull")),
                running=bool(running),
                running_since=_ago(running[-1].get("started_at")) if running else "",
                updated=_ago(max(stamps)) if stamps else "",
            )
        )
    return out


@dataclass(frozen=True, kw_only=True)
class RoundPoint:
    """One round of a campaign on the progression plots."""

    round: int
    status: str
    n_evaluated: int
    best_so_far: float | None  # lowest energy above hull among the campaign's evaluations up to this round
    new_best: float | None  # lowest among this round's own evaluations
    hits: int  # this round's evaluations with e_above_hull <= the hit threshold
    hits_cumulative: int
    novel_hits: int  # of those, the novel ones (matching no reference phase or seed: store.novelty)
    novel_hits_cumulative: int
    targets_found: int | None  # replay campaigns: targets found so far (metrics.n_targets_found)
    model: str | None
    errors: dict[str, list[tuple[float, float, float]]]  # outcome -> [(predicted mean, std, oracle value)]
    flow_run_url: str | None


@_guard
def round_progress(store: CandidateStore, campaign: str, *, hit_threshold: float = 0.05) -> list[RoundPoint]:
    """Per round: best energy above hull so far (eV/atom), hits (new evaluations within ``hit_threshold`` eV/atom of
    the hull) and novel hits (those that are novel, not a known material: stable, unique, novel), and the predictions
    the model made for the round's batch next to what the oracle found."""
    rounds = store.list_rounds(campaign)
    evaluations = list(
        store.evaluations.find(
            {"campaign": campaign, "status": {"$ne": "failed"}},
            {
                "candidate_id": 1,
                "energy_above_hull": 1,
                "formation_energy_per_atom": 1,
                "provenance.round": 1,
                "novelty.status": 1,
            },
        )
    )
    by_round: dict[int, list[dict[str, Any]]] = {}
    for e in evaluations:
        by_round.setdefault(int(field_value(e, "provenance.round") or 0), []).append(e)
    by_id = {e["candidate_id"]: e for e in evaluations}
    points, best, total_hits, total_novel = [], None, 0, 0
    for doc in rounds:
        found = [
            (v, field_value(e, "novelty.status") == "novel")
            for e in by_round.get(doc.round, [])
            if (v := _number(e.get("energy_above_hull"))) is not None
        ]
        values = [v for v, _ in found]
        new_best = min(values) if values else None
        if new_best is not None:
            best = new_best if best is None else min(best, new_best)
        hits = sum(v <= hit_threshold for v in values)
        novel_hits = sum(v <= hit_threshold and novel for v, novel in found)
        total_hits += hits
        total_novel += novel_hits
        errors: dict[str, list[tuple[float, float, float]]] = {}
        for entry in doc.acquired:
            found = by_id.get(entry.candidate_id)
            if found is None:
                continue
            for name, field in ORACLE_OF.items():
                mean, std, truth = entry.means.get(name), entry.stds.get(name), _number(found.get(field))
                if mean is not None and truth is not None:
                    errors.setdefault(name, []).append((float(mean), float(std or 0.0), truth))
        found_targets = doc.metrics.get("n_targets_found")
        points.append(
            RoundPoint(
                round=doc.round,
                status=doc.status,
                n_evaluated=len(by_round.get(doc.round, [])),
                best_so_far=best,
                new_best=new_best,
                hits=hits,
                hits_cumulative=total_hits,
                novel_hits=novel_hits,
                novel_hits_cumulative=total_novel,
                targets_found=int(found_targets) if isinstance(found_targets, int | float) else None,
                model=doc.prediction_model,
                errors=errors,
                flow_run_url=doc.flow_run_url,
            )
        )
    return points


@_guard
def scatter_points(store: CandidateStore, campaign: str, *, limit: int = MAX_SCATTER) -> list[dict[str, Any]]:
    """Evaluated candidates of ``campaign`` with an energy above hull: id, formula, round, e_above_hull (eV/atom),
    band_gap and band_gap_std (eV) of the relaxed structure, log10_conductivity; newest rounds first."""
    cursor = (
        store.candidates.find(
            {"campaign": campaign, "oracle.e_above_hull": {"$gte": -1e300}},
            {"_id": 1, "formula": 1, "provenance.round": 1, "oracle": 1},
        )
        .sort([("provenance.round", -1), ("_id", 1)])
        .limit(limit)
    )
    rows = []
    for d in cursor:
        o = d.get("oracle") or {}
        rows.append(
            {
                "id": d["_id"],
                "formula": d.get("formula", ""),
                "round": int(field_value(d, "provenance.round") or 0),
                "e_above_hull": _number(o.get("e_above_hull")),
                "band_gap": _number(o.get("band_gap")),
                "band_gap_std": _number(o.get("band_gap_std")),
                "log10_conductivity": _number(o.get("log10_conductivity")),
            }
        )
    return rows


def novelty_text(novelty: Novelty | None) -> str:
    """``'known: mp-1234 (mp_20; relaxed structure)'``, ``'novel (relaxed structure; checked against seeds, ...)'``
    or ``'not checked'``: a candidate's verdict for its page."""
    if novelty is None:
        return "not checked"
    if novelty.status == "known":
        source = f"{novelty.match_source}; " if novelty.match_source and novelty.match_source != "seed" else ""
        return f"known: {novelty.match} ({source}{novelty.checked_on} structure)"
    return f"novel ({novelty.checked_on} structure; checked against {novelty.checked_against or 'nothing'})"


@dataclass(frozen=True, kw_only=True)
class CandidateDetail:
    """Everything the candidate page shows."""

    candidate: CandidateDoc
    evaluations: list[EvaluationDoc]
    round: RoundDoc | None
    batch_entry: dict[str, Any] | None  # its entry in the round's batch (predictions at acquisition)


@_guard
def candidate_detail(store: CandidateStore, candidate_id: str) -> CandidateDetail | None:
    """The candidate, its oracle results, the round that evaluated it (else the one that made it); None if unknown."""
    found = store.get_candidates([candidate_id])
    if not found:
        return None
    candidate = found[0]
    evaluations = [
        EvaluationDoc.model_validate(d) for d in store.evaluations.find({"candidate_id": candidate_id}).sort("_id", 1)
    ]
    index = evaluations[0].provenance.round if evaluations else candidate.provenance.round
    doc = store.get_round(candidate.campaign, index)
    entry = None
    if doc is not None:
        entry = next((e.model_dump() for e in doc.acquired if e.candidate_id == candidate_id), None)
    return CandidateDetail(candidate=candidate, evaluations=evaluations, round=doc, batch_entry=entry)


@_guard
def model_rows(store: CandidateStore) -> list[dict[str, Any]]:
    """The model registry, newest first: id, property, architecture, members, training size, headline metrics."""
    rows = []
    for m in reversed(store.list_models()):
        metrics = m.metrics or {}
        flat = {}
        for split in ("test", "val"):
            part = metrics.get(split)
            if isinstance(part, dict):
                for key in ("mae", "rmse", "r2", "coverage_95", "spearman"):
                    if _number(part.get(key)) is not None:
                        flat[f"{split}_{key}"] = round(float(part[key]), 4)
        for key in ("val_mae", "train_mae", "mae", "rmse"):
            if _number(metrics.get(key)) is not None:
                flat.setdefault(key, round(float(metrics[key]), 4))
        rows.append(
            {
                "id": m.id,
                "campaign": m.campaign,
                "property": m.property_name,
                "architecture": m.architecture,
                "members": m.n_members,
                "n_train": m.n_train,
                "created": m.created_at.strftime("%Y-%m-%d %H:%M"),
                "path": m.path,
                **flat,
            }
        )
    return rows


@_guard
def loop_model_parity(store: CandidateStore, model_id: str) -> dict[str, list[tuple[float, float, float]]]:
    """For a loop model (``<campaign>-r<k>``): its predictions for the batches it chose next to the oracle's values,
    outcome -> [(mean, std, oracle)] (eV/atom) — an out-of-sample parity, since it never saw those labels."""
    out: dict[str, list[tuple[float, float, float]]] = {}
    for doc in store.rounds.find({"prediction_model": model_id}, {"campaign": 1}):
        for point in round_progress(store, doc["campaign"]):
            if point.model == model_id:
                for name, values in point.errors.items():
                    out.setdefault(name, []).extend(values)
    return out
