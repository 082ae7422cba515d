"""The repository on mongomock: idempotent writes, queries, rounds and the model registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from store import open_store
from store.connection import close_all
from store.documents import BatchEntry, CandidateDoc, EvaluationDoc, ModelDoc, Provenance, RoundDoc
from store.repository import CandidateStore


@pytest.fixture
def store() -> Iterator[CandidateStore]:
    s = open_store("mongomock://repo", "t")
    yield s
    close_all()


def _prov(round_: int = 1) -> Provenance:
    return Provenance(campaign="c", round=round_, code_version="0.1.0")


def _cand(cid: str, formula: str = "Li2O", elements: tuple[str, ...] = ("Li", "O")) -> CandidateDoc:
    return CandidateDoc(
        _id=cid,
        campaign="c",
        fingerprint=cid[:4],
        formula=formula,
        elements=list(elements),
        chemsys="-".join(elements),
        n_sites=3,
        structure={},
        source="substitution",
        provenance=_prov(),
    )


def _eval(cid: str, ef: float | None, status: str = "converged", formula: str = "Li2O") -> EvaluationDoc:
    return EvaluationDoc(
        _id=f"{cid}:k",
        candidate_id=cid,
        campaign="c",
        oracle_key="k",
        formula=formula,
        elements=["Li", "O"],
        status=status,
        formation_energy_per_atom=ef,
        potential="chgnet",
        potential_version="v",
        fmax=0.1,
        max_steps=10,
        elapsed_s=1.0,
        provenance=_prov(),
    )


def test_candidates_insert_once(store: CandidateStore) -> None:
    assert store.insert_candidates([_cand("aaaa1"), _cand("bbbb1")]) == 2
    assert store.insert_candidates([_cand("aaaa1"), _cand("cccc1")]) == 1
    assert store.counts()["candidates"] == 3
    assert [c.id for c in store.find_by_fingerprints("c", ["aaaa", "cccc"])] == ["aaaa1", "cccc1"]
    assert [c.id for c in store.get_candidates(["cccc1", "nope", "aaaa1"])] == ["cccc1", "aaaa1"]


def test_evaluations_mark_candidates_and_are_not_duplicated(store: CandidateStore) -> None:
    store.insert_candidates([_cand("aaaa1"), _cand("bbbb1"), _cand("cccc1", "Na2S", ("Na", "S"))])
    store.put_evaluation(_eval("aaaa1", -2.0))
    store.put_evaluation(_eval("aaaa1", -2.1))  # re-run: replaced, not added
    store.put_evaluation(_eval("bbbb1", None, status="failed"))
    assert store.counts()["evaluations"] == 2
    assert store.evaluated_ids("k", ["aaaa1", "bbbb1", "cccc1"]) == {"aaaa1", "bbbb1"}
    assert [c.id for c in store.pending_candidates("c")] == ["cccc1"]
    labelled = store.labelled("c", "k")
    assert [(e.candidate_id, e.formation_energy_per_atom) for e in labelled] == [("aaaa1", -2.1)]
    assert store.get_candidates(["bbbb1"])[0].status == "failed"


def test_query_filters_and_sorts(store: CandidateStore) -> None:
    store.put_evaluation(_eval("a", -1.0))
    store.put_evaluation(_eval("b", -2.5))
    store.put_evaluation(_eval("c", -0.5))
    store.put_evaluation(_eval("d", None, status="failed"))
    assert [d.candidate_id for d in store.query(elements=["Li", "O"])] == ["b", "a", "c"]
    assert [d.candidate_id for d in store.query(max_formation_energy=-0.9)] == ["b", "a"]
    assert [d.candidate_id for d in store.query(elements=["Na"])] == []
    assert len(store.query(include_failed=True, limit=0)) == 4
    assert len(store.query(limit=1)) == 1
    store.set_hull("a:k", 0.0, {"Li2O": 1.0})
    store.set_hull("b:k", 0.2, {"Li2O": 0.5, "O2": 0.5})
    assert [d.candidate_id for d in store.query(max_e_above_hull=0.1)] == ["a"]
    assert [d.candidate_id for d in store.query(sort="e_above_hull", limit=2)] == ["a", "b"]
    with pytest.raises(ValueError, match="cannot sort by"):
        store.query(sort="colour")


def test_rounds_and_models(store: CandidateStore) -> None:
    doc = RoundDoc(_id="c:1", campaign="c", round=1, acquired=[BatchEntry(candidate_id="a", formula="Li2O", n_sites=3)])
    store.save_round(doc)
    store.save_round(doc.model_copy(update={"status": "completed"}))
    assert store.counts()["rounds"] == 1
    got = store.get_round("c", 1)
    assert got is not None and got.status == "completed" and got.acquired[0].formula == "Li2O"
    assert store.get_round("c", 2) is None
    for r in (0, 1, 2):
        store.register_model(
            ModelDoc(
                _id=f"c-r{r}",
                campaign="c",
                round=r,
                property_name="e",
                architecture="megnet",
                n_members=2,
                path="/x",
                n_train=r + 2,
            )
        )
    assert store.latest_model("c").id == "c-r2"
    assert store.latest_model("c", before_round=2).id == "c-r1"
    assert store.latest_model("other") is None


def test_count_generated_counts_one_campaign_round_of_generated_candidates(store: CandidateStore) -> None:
    seed = _cand("seed-1").model_copy(update={"source": "seed"})
    later = _cand("gen-2").model_copy(update={"provenance": _prov(2)})
    other = _cand("gen-3").model_copy(update={"campaign": "d"})
    store.insert_candidates([_cand("gen-1"), _cand("gen-1b"), seed, later, other])
    assert store.count_generated("c", 1) == 2
    assert store.count_generated("c", 2) == 1
    assert store.count_generated("c", 3) == 0 and store.count_generated("d", 1) == 1
