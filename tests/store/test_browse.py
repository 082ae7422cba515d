"""Browsing the store page by page (store.browse) on mongomock: filters, sorting, paging, counts, summaries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from store import open_store
from store.browse import CandidateQuery, candidate_filter, candidate_page, count_candidates, export_candidates
from store.connection import close_all
from store.documents import CandidateDoc, EvaluationDoc, Provenance
from store.repository import CandidateStore


@pytest.fixture
def store() -> Iterator[CandidateStore]:
    s = open_store("mongomock://browse", "t")
    formulas = [("LiFePO4", ["Fe", "Li", "O", "P"]), ("NaFePO4", ["Fe", "Na", "O", "P"]), ("Li2O", ["Li", "O"])]
    for i in range(30):
        formula, elements = formulas[i % 3]
        doc = CandidateDoc(
            _id=f"c-{i:02d}",
            campaign="c" if i < 24 else "other",
            fingerprint=str(i),
            formula=formula,
            elements=elements,
            chemsys="-".join(elements),
            n_sites=4 + i % 5,
            structure={},
            source="substitution",
            generator="pyxtal" if i % 2 else "substitution",
            predictions={}
            if i == 5
            else {"band_gap": {"mean": i / 10, "std": 0.1}, "e_above_hull": {"mean": -i / 100}},
            provenance=Provenance(campaign="c", round=i % 4, code_version="0"),
        )
        s.insert_candidate(doc)
    yield s
    close_all()


def _evaluate(store: CandidateStore, cid: str, e_hull: float) -> None:
    cand = store.get_candidates([cid])[0]
    doc = EvaluationDoc.for_candidate(
        cand,
        oracle_key="k",
        provenance=cand.provenance,
        status="converged",
        formation_energy_per_atom=-1.0,
        potential="chgnet",
        potential_version="v",
        fmax=0.1,
        max_steps=10,
        elapsed_s=1.0,
    )
    store.put_evaluation(doc)
    store.set_hull(doc.id, e_hull, {"Li2O": 1.0}, {"n_phases": 3, "thin": False})
    store.set_evaluation_properties(doc.id, {"band_gap": {"mean": 4.2, "std": 0.3, "model": "m"}})


def test_pages_are_sorted_and_complete(store: CandidateStore) -> None:
    q = CandidateQuery(campaign="c", sort="pred_band_gap", page_size=10)
    pages = [candidate_page(store, CandidateQuery(**{**q.__dict__, "page": k})) for k in range(3)]
    ids = [r["id"] for p in pages for r in p.rows]
    assert len(ids) == len(set(ids)) == 23  # 24 of campaign c, minus the one without a prediction
    gaps = [r["pred_band_gap"] for p in pages for r in p.rows]
    assert gaps == sorted(gaps)
    assert pages[0].has_next and pages[1].has_next and not pages[2].has_next
    assert count_candidates(store, q) == 23
    desc = candidate_page(store, CandidateQuery(campaign="c", sort="pred_band_gap", descending=True, page_size=3))
    assert [r["pred_band_gap"] for r in desc.rows] == [2.3, 2.2, 2.1]


def test_filters_combine(store: CandidateStore) -> None:
    q = CandidateQuery(campaign="c", where="pred_band_gap >= 1 and pred_band_gap < 2", alkali="Li", sort="id")
    rows = candidate_page(store, CandidateQuery(**{**q.__dict__, "page_size": 100})).rows
    assert rows and all(1 <= r["pred_band_gap"] < 2 and "Li" in r["elements"].split() for r in rows)
    assert all(r["formula"].startswith("Li") for r in rows)
    only = candidate_page(store, CandidateQuery(campaign="c", elements=("Fe", "Na"), generator="pyxtal", sort="id"))
    assert only.rows and all(r["formula"] == "NaFePO4" and r["generator"] == "pyxtal" for r in only.rows)
    either = count_candidates(store, CandidateQuery(campaign="c", alkali="Li or Na", sort="id"))
    assert either == 24
    assert count_candidates(store, CandidateQuery(formula="LiFe", sort="id")) == 10
    assert count_candidates(store, CandidateQuery(round=2, campaign="c", sort="id")) == 6
    assert count_candidates(store, CandidateQuery(ids=("c-01", "c-02", "nope"), sort="id")) == 2


@pytest.mark.parametrize(
    ("query", "text"),
    [
        (CandidateQuery(where="pred_band_gap >= 'x'"), "pred_band_gap"),
        (CandidateQuery(where="__import__('os') > 1"), "compare a label name with a number"),
        (CandidateQuery(where="structure >= 1"), "cannot filter on 'structure'"),
        (CandidateQuery(elements=("Xx1",)), "not an element symbol"),
        (CandidateQuery(status="lost"), "status must be one of"),
        (CandidateQuery(sort="structure"), "cannot sort by 'structure'"),
        (CandidateQuery(formula="Li$where"), "letters, digits"),
    ],
)
def test_bad_filters_are_one_line_errors(query: CandidateQuery, text: str) -> None:
    with pytest.raises(ValueError) as info:
        candidate_filter(query)
    assert text in str(info.value).replace('"', "'")
    assert "\n" not in str(info.value)


def test_oracle_values_follow_the_evaluations(store: CandidateStore) -> None:
    _evaluate(store, "c-03", -0.02)
    row = candidate_page(store, CandidateQuery(ids=("c-03",), sort="id")).rows[0]
    assert row["status"] == "evaluated"
    assert row["e_above_hull"] == -0.02 and row["band_gap"] == 4.2 and row["formation_energy"] == -1.0
    assert row["hull_thin"] is False
    by_hull = candidate_page(store, CandidateQuery(sort="e_above_hull"))
    assert [r["id"] for r in by_hull.rows] == ["c-03"]  # sorting by an oracle column shows rows that have one
    exported = export_candidates(store, CandidateQuery(campaign="c", sort="id"))
    assert len(exported) == 24 and all("structure" in r for r in exported)


def test_sync_rebuilds_missing_summaries(store: CandidateStore) -> None:
    _evaluate(store, "c-04", 0.1)
    store.candidates.update_one({"_id": "c-04"}, {"$unset": {"oracle": ""}})
    assert store.missing_oracle_summaries()
    assert store.sync_oracle_summaries() == 1
    assert not store.missing_oracle_summaries()
    assert store.candidates.find_one({"_id": "c-04"})["oracle"]["e_above_hull"] == 0.1


def test_count_can_stop_early(store: CandidateStore) -> None:
    q = CandidateQuery(campaign="c", sort="id")
    assert count_candidates(store, q) == 24
    assert count_candidates(store, q, limit=5) == 5
