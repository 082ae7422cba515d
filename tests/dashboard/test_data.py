"""What the pages show, without a browser: data read from a mongomock store, figures, exports, the viewer patch."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator

import pytest
from pymatgen.core import Lattice, Structure

from dashboard import data, figures
from dashboard.export import cif_zip, rows_csv, rows_json
from dashboard.viewer import patch_pymatgen_graph_names
from store import open_store
from store.browse import CandidateQuery, candidate_page, count_candidates
from store.connection import close_all
from store.documents import BatchEntry, CandidateDoc, EvaluationDoc, Novelty, Provenance, RoundDoc
from store.repository import CandidateStore

LI2O = Structure(Lattice.cubic(4.6), ["Li", "Li", "O"], [[0.25, 0.25, 0.25], [0.75, 0.75, 0.75], [0, 0, 0]])


@pytest.fixture
def store() -> Iterator[CandidateStore]:
    s = open_store("mongomock://dashboard-data", "t")
    for r in range(3):
        prov = Provenance(campaign="c", round=r, code_version="0")
        cand = CandidateDoc.from_structure(
            LI2O, cid=f"c-{r}", fingerprint=str(r), provenance=prov, source="substitution", generator="substitution"
        )
        s.insert_candidate(cand)
        ev = EvaluationDoc.for_candidate(
            cand,
            oracle_key="k",
            provenance=prov,
            status="converged",
            formation_energy_per_atom=-2.0 + 0.1 * r,
            corrected_energy_per_atom=-4.0,
            relaxed_structure=LI2O.as_dict(),
            energy_trajectory=[-3.9, -3.95, -4.0],
            potential="chgnet",
            potential_version="v",
            fmax=0.1,
            max_steps=10,
            elapsed_s=1.0,
        )
        s.put_evaluation(ev)
        s.set_hull(ev.id, 0.2 - 0.1 * r, {"Li2O": 1.0}, {"n_phases": 2, "thin": False})
        s.set_evaluation_properties(ev.id, {"band_gap": {"mean": 5.0 - r, "std": 0.2, "model": "m"}})
        entry = BatchEntry(
            candidate_id=cand.id,
            formula="Li2O",
            n_sites=3,
            means={"e_above_hull": 0.1, "formation_energy_per_atom": -1.9},
            stds={"e_above_hull": 0.05, "formation_energy_per_atom": 0.05},
        )
        s.save_round(
            RoundDoc(
                _id=f"c:{r}",
                campaign="c",
                round=r,
                status="completed",
                acquired=[entry] if r else [],
                prediction_model=f"c-r{r - 1}" if r else None,
                flow_run_url="http://127.0.0.1:4200/runs/flow-run/x" if r == 2 else None,
            )
        )
    yield s
    close_all()


def test_campaign_summary(store: CandidateStore) -> None:
    (summary,) = data.campaign_summaries(store)
    assert summary.name == "c" and summary.rounds_completed == 3 and not summary.running
    assert summary.n_candidates == 3 and summary.n_evaluations == 3
    assert summary.best_id == "c-2" and summary.best_e_above_hull == pytest.approx(0.0)
    store.save_round(RoundDoc(_id="c:3", campaign="c", round=3))  # a loop starts round 3
    (summary,) = data.campaign_summaries(store)
    assert summary.running and summary.last_round == 3 and summary.running_since.endswith("ago")


def test_round_progress_tracks_best_hits_and_errors(store: CandidateStore) -> None:
    points = data.round_progress(store, "c", hit_threshold=0.05)
    assert [p.best_so_far for p in points] == pytest.approx([0.2, 0.1, 0.0])
    assert [p.hits for p in points] == [0, 0, 1] and points[-1].hits_cumulative == 1
    assert points[0].errors == {}  # round 0: no model yet
    assert points[1].errors["e_above_hull"] == [pytest.approx((0.1, 0.05, 0.1))]
    assert points[2].flow_run_url and points[2].model == "c-r1"
    for fig in (figures.best_so_far(points), figures.model_error(points), figures.calibration(points)):
        assert any(len([y for y in trace.y if y is not None]) for trace in fig.data)
    parity = data.loop_model_parity(store, "c-r0")
    assert len(parity["formation_energy_per_atom"]) == 1


def test_novel_hits_and_the_known_or_novel_column(store: CandidateStore) -> None:
    """Hits that are known materials (a reference phase, a seed) are counted apart from novel ones; the candidates
    table shows the verdict and filters on it (``novel >= 1``)."""
    store.set_novelty("c-1", Novelty(status="known", match="mp-1960", match_source="mp_20"), "c-1:k")
    store.set_novelty("c-2", Novelty(status="novel", checked_on="relaxed"), "c-2:k")
    points = data.round_progress(store, "c", hit_threshold=0.15)
    assert [(p.hits, p.novel_hits) for p in points] == [(0, 0), (1, 0), (1, 1)]
    assert (points[-1].hits_cumulative, points[-1].novel_hits_cumulative) == (2, 1)
    names = [trace.name for trace in figures.hits_per_round(points, 0.15).data]
    assert "novel hits this round" in names and "novel hits so far (S.U.N.)" in names
    rows = candidate_page(store, CandidateQuery(campaign="c", sort="id")).rows
    assert [(r["id"], r["novelty"], r["known_as"]) for r in rows] == [
        ("c-0", None, None),  # not checked (a store written before the check)
        ("c-1", "known", "mp-1960"),
        ("c-2", "novel", None),
    ]
    novel = CandidateQuery(campaign="c", where="novel >= 1", sort="novelty")
    assert [r["id"] for r in candidate_page(store, novel).rows] == ["c-2"] and count_candidates(store, novel) == 1
    known = CandidateQuery(campaign="c", where="novel < 1", sort="e_above_hull")
    assert [r["id"] for r in candidate_page(store, known).rows] == ["c-1"]
    texts = [data.novelty_text(data.candidate_detail(store, f"c-{i}").candidate.novelty) for i in range(3)]
    assert texts == [
        "not checked",
        "known: mp-1960 (mp_20; generated structure)",
        "novel (relaxed structure; checked against nothing)",
    ]


def test_scatter_and_detail(store: CandidateStore) -> None:
    rows = data.scatter_points(store, "c")
    assert {r["id"] for r in rows} == {"c-0", "c-1", "c-2"} and all(r["band_gap"] is not None for r in rows)
    fig = figures.property_scatter(rows)
    assert list(fig.data[0].customdata) and len(fig.data[0].x) == 3
    detail = data.candidate_detail(store, "c-1")
    assert detail is not None and detail.batch_entry and detail.evaluations[0].energy_trajectory == [-3.9, -3.95, -4.0]
    assert data.candidate_detail(store, "nope") is None


def test_exports() -> None:
    rows = [
        {
            "id": "a/1",
            "formula": "Li2O",
            "pred_band_gap": 4.0,
            "e_above_hull": float("nan"),
            "structure": LI2O.as_dict(),
        },
        {"id": "b", "formula": "X", "structure": None},
    ]
    table = list(csv.DictReader(io.StringIO(rows_csv(rows).decode())))
    assert table[0]["pred_band_gap"] == "4.0" and table[0]["e_above_hull"] == "" and len(table) == 2
    parsed = json.loads(rows_json(rows))
    assert parsed[0]["e_above_hull"] is None and parsed[0]["structure"]["lattice"]
    with zipfile.ZipFile(io.BytesIO(cif_zip(rows))) as archive:
        names = archive.namelist()
        assert "a_1_Li2O.cif" in names and "candidates.csv" in names
        assert "b: no structure" in archive.read("skipped.txt").decode()
        assert (
            Structure.from_str(archive.read("a_1_Li2O.cif").decode(), fmt="cif").composition.reduced_formula == "Li2O"
        )


def test_viewer_patch_restores_the_old_graph_names() -> None:
    from pymatgen.analysis.graphs import StructureGraph

    patch_pymatgen_graph_names()
    assert StructureGraph.with_empty_graph.__func__ is StructureGraph.from_empty_graph.__func__  # type: ignore[attr-defined]
    graph = StructureGraph.with_empty_graph(LI2O)
    assert len(graph.structure) == 3


def test_phase_diagram_marks_computed_phases(store: CandidateStore, tmp_path, monkeypatch, shared_data) -> None:
    """A phase hull completion computed for the evaluation's oracle (key 'k') is drawn and marked as computed."""
    from dashboard.detail import phase_diagram_figure
    from oracle.completion import complete
    from oracle.phases import PhaseSet, default_phase_set
    from tests.oracle.test_oracle_completion import CountingLabeler

    class Oracle:
        def key(self) -> str:
            return "k"

    monkeypatch.setenv("BATTERY_DISCOVERY_HOME", str(tmp_path))
    base = default_phase_set()
    scratch = PhaseSet(compounds=base.compounds, mu=base.mu, structure_files=base.structure_files)
    complete(scratch, [["Li", "O"]], Oracle(), label=CountingLabeler(dict(base.mu), formation=-2.0))
    computed = {p.parent for p in scratch.phases_of(["Li", "O"]) if p.source == "computed"}
    assert computed

    detail = data.candidate_detail(store, "c-1")
    page = phase_diagram_figure(detail)
    graph, note = page.children
    assert "computed by hull completion" in note.children and "Li2O" in note.children
    hover = " ".join(str(t) for trace in graph.figure.data for t in (trace.hovertext or trace.text or []))
    assert any(f"computed from {parent}" in hover for parent in computed)
