"""``battery-discovery query`` says which candidates are known materials and which are novel, and filters on it."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from store import open_store
from store.documents import CandidateDoc, EvaluationDoc, Novelty, Provenance

URI = ("--store-uri", "mongomock://cli-novelty")


@pytest.fixture
def seeded() -> None:
    """Two labels (a known Na2O, a novel NaLiO) and one unevaluated novel candidate."""
    store = open_store(URI[1], "battery_discovery")
    cell = Structure(Lattice.cubic(4.6), ["Na", "Na", "O"], [[0.25, 0.25, 0.25], [0.75, 0.75, 0.75], [0, 0, 0]])
    prov = Provenance(campaign="n", round=1, code_version="t")
    verdicts = {
        "n-known": Novelty(status="known", match="mp-776952", match_source="mp_20", checked_on="relaxed"),
        "n-novel": Novelty(status="novel", checked_on="relaxed"),
        "n-pending": Novelty(status="novel"),
    }
    for cid, verdict in verdicts.items():
        cand = CandidateDoc.from_structure(cell, cid=cid, fingerprint=cid, provenance=prov, source="substitution")
        store.insert_candidate(cand.model_copy(update={"novelty": verdict}))
        if cid == "n-pending":
            store.set_predictions({cid: {"e_above_hull": {"mean": 0.1, "std": 0.1}}}, model_version="m", round_index=1)
            continue
        fields = {"status": "converged", "formation_energy_per_atom": -1.5, "relaxed_structure": cell.as_dict()}
        fields |= {"potential": "toy", "potential_version": "t", "fmax": 0.1, "max_steps": 1, "elapsed_s": 0.1}
        fields["energy_above_hull"] = -0.01 if cid == "n-known" else 0.02
        store.put_evaluation(
            EvaluationDoc.for_candidate(store.get_candidates([cid])[0], oracle_key="k", provenance=prov, **fields)
        )


def _ids(capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str, str | None]]:
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [(r["id"], r["novelty"], r["known_as"]) for r in rows]


@pytest.mark.usefixtures("seeded")
def test_query_marks_and_filters_known_and_novel_candidates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    assert cli("query", "--json", *URI) == 0
    assert _ids(capsys) == [("n-known", "known", "mp-776952"), ("n-novel", "novel", None)]
    assert cli("query", "--json", "--novelty", "novel", "--predicted", *URI) == 0
    assert _ids(capsys) == [("n-novel", "novel", None), ("n-pending", "novel", None)]
    assert cli("query", "--json", "--where", "novel <= 0 and e_above_hull <= 0", *URI) == 0
    assert _ids(capsys) == [("n-known", "known", "mp-776952")]
    out = tmp_path / "q.csv"
    assert cli("query", "--where", "novel >= 1", "--csv", str(out), *URI) == 0
    assert "novel" in capsys.readouterr().out  # the table's 'known as' column
    assert [(r["id"], r["novelty"]) for r in csv.DictReader(out.open())] == [("n-novel", "novel")]
    assert cli("query", "--novelty", "new", *URI) == 2
    assert "--novelty must be novel or known" in capsys.readouterr().err
