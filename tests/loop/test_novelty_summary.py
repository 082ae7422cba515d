"""The summary ranks novel candidates apart from known ones (issue #26): the relax labeler's best rows, the console
table printed after ``battery-discovery run`` and the round's markdown. Mongomock, no potential run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymatgen.core import Lattice, Structure
from rich.console import Console

from battery_discovery.tables import best_table
from loop.labelers.relax import RelaxLabeler
from loop.roles import RoundContext
from oracle.config import OracleConfig
from oracle.testing import register_toy_potential, unregister_toy_potential
from store import open_store
from store.connection import close_all
from store.documents import CandidateDoc, EvaluationDoc, Novelty, Provenance, RoundDoc
from store.repository import CandidateStore

CELL = Structure(Lattice.cubic(4.6), ["Na", "Na", "O"], [[0.25, 0.25, 0.25], [0.75, 0.75, 0.75], [0, 0, 0]])
OFFLINE = "seeds, mp_20, mp_20_test, mpts_52"
#: formula, energy above hull (eV/atom), verdict
LABELS = (
    ("Li2O", 0.0, Novelty(status="known", match="seed:Li2O", match_source="seed")),
    ("Na2O", -0.01, Novelty(status="known", match="mp-776952", match_source="mp_20", checked_on="relaxed")),
    ("NaLiO", 0.05, Novelty(status="novel", checked_on="relaxed", checked_against=OFFLINE)),
    ("Na3OCl", 0.02, Novelty(status="novel", checked_on="relaxed", checked_against=OFFLINE)),
    ("NaKO", 0.3, Novelty(status="novel", checked_on="relaxed", checked_against=OFFLINE)),
)


@pytest.fixture
def labeler() -> Iterator[RelaxLabeler]:
    register_toy_potential()
    yield RelaxLabeler(oracle=OracleConfig(relax={"potential": "toy"}, refine={"potential": None}))
    unregister_toy_potential()


@pytest.fixture
def ctx(labeler: RelaxLabeler) -> Iterator[RoundContext]:
    store: CandidateStore = open_store("mongomock://novelty-summary", "t")
    prov = Provenance(campaign="s", round=1, code_version="t")
    for i, (formula, e_hull, verdict) in enumerate(LABELS):
        cand = CandidateDoc.from_structure(CELL, cid=f"s-{i}", fingerprint=str(i), provenance=prov, source="x")
        cand = cand.model_copy(update={"formula": formula, "novelty": verdict})
        store.insert_candidate(cand)
        fields = {"status": "converged", "formation_energy_per_atom": -1.0 - i / 10, "energy_above_hull": e_hull}
        fields |= {"potential": "toy", "potential_version": "t", "fmax": 0.1, "max_steps": 1, "elapsed_s": 0.1}
        store.put_evaluation(EvaluationDoc.for_candidate(cand, oracle_key=labeler.key, provenance=prov, **fields))
    yield RoundContext(store=store, campaign="s", round_index=1, labeler_key=labeler.key, targets=())
    close_all()


def test_best_rows_rank_novel_candidates_apart_from_known_ones(labeler: RelaxLabeler, ctx: RoundContext) -> None:
    best = labeler.best(ctx, n=2)
    # the two most stable novel ones first, then the two most stable known ones, each group by energy above hull
    assert [(b["formula"], b["novelty"], b["known_as"]) for b in best] == [
        ("Na3OCl", "novel", None),
        ("NaLiO", "novel", None),
        ("Na2O", "known", "mp-776952"),
        ("Li2O", "known", "seed:Li2O"),
    ]

    console = Console(record=True, width=220)
    console.print(best_table(best, "Most stable so far"))
    text = console.export_text()
    lines = [line for line in text.splitlines() if "s-" in line]
    assert [line.split("│")[1].strip() for line in lines] == ["novel 1", "novel 2", "known 1", "known 2"]
    assert "mp-776952 (mp_20)" in lines[2] and "seed:Li2O" in lines[3] and "novel" in lines[0]
    assert "2 most stable novel candidates, then 2 most stable known materials" in text
    # offline, 'novel' means none of the phase files and seeds matched, and the summary says so
    flat = " ".join(text.split())
    assert f"novel: matching none of {OFFLINE} (not MP's own phases online: set MP_API_KEY)" in flat

    doc = RoundDoc(
        _id="s:1",
        campaign="s",
        round=1,
        best=best,
        metrics={"n_evaluated": 5, "n_stable": 4, "n_stable_known": 2, "n_sun": 2, "sun_rate": 0.4},
    )
    markdown = labeler.best_markdown(doc, ())
    novel_at, known_at = markdown.index("Most stable novel candidates"), markdown.index("Most stable known materials")
    assert novel_at < markdown.index("| Na3OCl |") < known_at < markdown.index("| Na2O |")
    assert "**S.U.N.**" in markdown and "2 of 5 evaluated candidates (40.0%)" in markdown
    assert f"novel: matching none of {OFFLINE} (not MP's" in markdown


def test_rows_without_a_verdict_keep_the_plain_table() -> None:
    """Other labelers' rows (replay targets) say nothing about novelty: one table, no rank or 'known as' column."""
    console = Console(record=True, width=200)
    console.print(best_table([{"formula": "LiF", "candidate_id": "r-1", "e_above_hull": 0.0}], "Targets"))
    text = console.export_text()
    assert "known as" not in text and "rank" not in text and "LiF" in text
