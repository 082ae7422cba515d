"""Known or novel (issue #26): candidates matching a reference phase, an MP phase online or a seed are known, with
the id they match; the others novel. Mongomock, a three-row phase file cut from MPTS-52, no potential."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymongo.database import Database

from oracle.phases import PhaseSet, ReferencePhase, mp_elemental_energies, read_phase_file
from oracle.references import default_mp_references_path, load_mp_reference_entries
from store import open_store
from store.candidates import register_structures
from store.connection import close_all
from store.documents import CandidateDoc, EvaluationDoc, Novelty, Provenance
from store.novelty import (
    MPStructures,
    NoveltyChecker,
    check_labels,
    discovery_metrics,
    needs_relaxed_check,
)
from store.queries import query_rows
from store.repository import CandidateStore

from .conftest import backend_params

#: Antifluorite Li2O (Fm-3m, conventional cell).
LI2O = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]])


def _swap(structure: Structure, mapping: dict[str, str], scale: float = 1.0) -> Structure:
    out = structure.copy()
    out.replace_species(mapping)  # type: ignore[arg-type]
    out.scale_lattice(out.volume * scale)
    return out


def _strained(structure: Structure, c: float = 1.4) -> Structure:
    """The same sites in a cell stretched along c: another structure for StructureMatcher (beyond its tolerances)."""
    a, b, c0 = structure.lattice.abc
    return Structure(
        Lattice.from_parameters(a, b, c0 * c, *structure.lattice.angles), structure.species, structure.frac_coords
    )


@pytest.fixture(scope="module")
def phases(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> PhaseSet:
    """The Li2S and Na2S phases of the MPTS-52 file (mp-1125, mp-556978) as a phase set of their own."""
    rows = pd.read_csv(shared_data / "mpts_52" / "val.csv.gz")
    rows = rows[rows["material_id"].isin(["mp-1125", "mp-556978"])]
    assert len(rows) == 2
    path = tmp_path_factory.mktemp("phases") / "mpts_52.csv.gz"
    with gzip.open(path, "wt") as handle:
        rows.to_csv(handle, index=False)
    mu = mp_elemental_energies(load_mp_reference_entries(default_mp_references_path()))
    return PhaseSet(compounds=read_phase_file(path, "mpts_52", mu), mu=mu, structure_files={"mpts_52": path})


@pytest.fixture
def store() -> Iterator[CandidateStore]:
    yield open_store("mongomock://novelty", "t")
    close_all()


def _register(store: CandidateStore, checker: NoveltyChecker, *items: tuple[Structure, dict[str, Any]]) -> list[str]:
    ids, _ = register_structures(
        store, campaign="nov", round_index=1, items=list(items), limit=len(items), novelty=checker.check
    )
    return ids


def test_a_phase_file_structure_registered_as_a_candidate_is_known_by_its_id(
    phases: PhaseSet, store: CandidateStore
) -> None:
    checker = NoveltyChecker(phase_set=phases, store=store, campaign="nov")
    li2s = phases.structure("mp-1125")
    assert li2s is not None
    generated = {"source": "substitution", "generator": "substitution"}
    known_id, new_id, polymorph_id = _register(
        store,
        checker,
        (_swap(li2s, {}, scale=1.06), generated),  # mp-1125 itself, its cell 6 % larger (as relaxed elsewhere)
        (_swap(li2s, {"S": "Se"}), generated),  # substituted: no Li-Se compound is known here
        (_swap(LI2O, {"Li": "Na", "O": "S"}), generated),  # antifluorite Na2S: a known formula, another structure
    )
    known, new, polymorph = store.get_candidates([known_id, new_id, polymorph_id])
    assert known.novelty == Novelty(
        status="known", match="mp-1125", match_source="mpts_52", checked_against="seeds, mpts_52"
    )
    assert known.novelty.novel == 0
    assert new.formula == "Li2Se" and new.novelty is not None and new.novelty.status == "novel"
    assert new.novelty.match is None and new.novelty.novel == 1 and new.novelty.checked_on == "generated"
    assert polymorph.formula == "Na2S" and polymorph.novelty.status == "novel"  # type: ignore[union-attr]
    # stored as a nested document with the number --where filters on
    assert store.candidates.find_one({"_id": known_id})["novelty"]["novel"] == 0


def test_seeds_and_data_set_entries_are_known_by_their_source(store: CandidateStore) -> None:
    checker = NoveltyChecker(store=store, campaign="nov")
    seed_id, entry_id = _register(
        store,
        checker,
        (LI2O, {"source": "seed", "parent": "Li2O"}),
        (_swap(LI2O, {"Li": "Na"}), {"source": "dataset", "parent": "perov5:17"}),
    )
    seed, entry = store.get_candidates([seed_id, entry_id])
    assert (seed.novelty.status, seed.novelty.match, seed.novelty.match_source) == ("known", "seed:Li2O", "seed")  # type: ignore[union-attr]
    assert (entry.novelty.status, entry.novelty.match) == ("known", "perov5:17")  # type: ignore[union-attr]
    # a generated structure is checked against the campaign's seeds too (here: the same seed, slightly larger)
    assert checker.check(_swap(LI2O, {}, scale=1.04)).match == "seed:Li2O"


def _evaluate(store: CandidateStore, cand: CandidateDoc, relaxed: Structure, e_hull: float, **fields: Any) -> str:
    ev = EvaluationDoc.for_candidate(
        cand,
        oracle_key="k",
        provenance=Provenance(campaign="nov", round=1, code_version="t"),
        status=fields.pop("status", "converged"),
        energy_per_atom=-4.0,
        formation_energy_per_atom=-2.0,
        energy_above_hull=e_hull,
        relaxed_structure=relaxed.as_dict(),
        potential="toy",
        potential_version="t",
        fmax=0.1,
        max_steps=10,
        elapsed_s=1.0,
        **fields,
    )
    store.put_evaluation(ev)
    return ev.id


def test_a_label_is_checked_again_on_its_relaxed_structure(store: CandidateStore) -> None:
    checker = NoveltyChecker(store=store, campaign="nov")
    seed_id, cand_id = _register(
        store,
        checker,
        (LI2O, {"source": "seed", "parent": "Li2O"}),
        (_strained(LI2O), {"source": "substitution"}),  # stretched: not the seed as generated
    )
    cand = store.get_candidates([cand_id])[0]
    assert cand.novelty.status == "novel"  # type: ignore[union-attr]
    # the evaluation starts with its candidate's verdict, then the relaxed structure (the seed again) decides
    eval_id = _evaluate(store, cand, _swap(LI2O, {}, scale=1.02), 0.0)
    (label,) = [e for e in store.labelled("nov", "k") if e.id == eval_id]
    assert label.novelty == cand.novelty and needs_relaxed_check(label.novelty)
    (checked,) = check_labels(store, checker, [label])
    assert checked.novelty.status == "known" and checked.novelty.match == "seed:Li2O"  # type: ignore[union-attr]
    assert checked.novelty.checked_on == "relaxed"  # type: ignore[union-attr]
    assert store.get_candidates([cand_id])[0].novelty == checked.novelty
    assert store.evaluations.find_one({"_id": eval_id})["novelty"]["match"] == "seed:Li2O"
    assert not needs_relaxed_check(checked.novelty)
    assert not needs_relaxed_check(store.get_candidates([seed_id])[0].novelty)  # a seed stays known


@dataclass
class FakePhases:
    """A phase set with a computed phase and an MP online phase (duck-typed ``PhaseSet``)."""

    phases: list[ReferencePhase]
    structures: dict[str, Structure]
    structure_files: dict[str, Path] = field(default_factory=lambda: {"mp_20": Path("unused")})
    competing: Any = "online"

    def phases_of(self, elements: list[str]) -> list[ReferencePhase]:
        return [p for p in self.phases if sorted(p.elements) == sorted(elements)]

    def structure(self, entry_id: str) -> Structure | None:
        return self.structures.get(entry_id)


class Unreachable(FakePhases):
    """MP online is down: asking a chemical system fails; the files' phases are still there."""

    def phases_of(self, elements: list[str]) -> list[ReferencePhase]:
        raise RuntimeError("MP is down")

    def systems(self, n_elements: int) -> dict[frozenset[str], list[ReferencePhase]]:
        return {frozenset(p.elements): [q for q in self.phases if q.elements == p.elements] for p in self.phases}


def _phase(entry_id: str, source: str) -> ReferencePhase:
    return ReferencePhase(
        entry_id=entry_id,
        formula="Na2O",
        elements=("Na", "O"),
        energy_per_atom=-4.0,
        formation_energy_per_atom=-1.4,
        source=source,
    )


def test_computed_phases_are_not_known_materials_and_mp_online_phases_are(tmp_path: Path) -> None:
    na2o = _swap(LI2O, {"Li": "Na"}, scale=1.4)
    computed = _phase("computed:k:Na2O:mp-1", "computed")
    online = FakePhases([computed], {computed.entry_id: na2o})
    assert NoveltyChecker(phase_set=online).check(na2o).status == "novel"  # the hull's analogue does not count

    asked: list[list[str]] = []

    def fetch(ids: list[str]) -> dict[str, Structure]:
        asked.append(ids)
        return {"mp-2352": na2o}

    mp = [_phase("mp-2352", "mp-api"), _phase("mp-776952", "mp_20")]
    found = NoveltyChecker(phase_set=FakePhases([computed, *mp], {}), mp_structures=MPStructures(fetch, tmp_path))
    verdict = found.check(_swap(na2o, {}, scale=0.97))
    assert (verdict.status, verdict.match, verdict.match_source) == ("known", "mp-2352", "mp-api")
    assert verdict.checked_against == "mp_20, mp-api" and asked == [["mp-2352"]]
    # the structure is cached: another checker (another round, another process) does not ask MP again
    again = MPStructures(None, tmp_path)
    assert NoveltyChecker(phase_set=FakePhases(mp, {}), mp_structures=again).check(na2o).match == "mp-2352"
    assert again.n_fetched == 0
    # MP unreachable: the verdict rests on the files' phases and says so
    down = NoveltyChecker(phase_set=Unreachable([mp[1]], {"mp-776952": na2o})).check(na2o)
    assert (down.status, down.match, down.checked_against) == ("known", "mp-776952", "mp_20")


def test_discovery_metrics_count_stable_unique_novel_labels(store: CandidateStore) -> None:
    checker = NoveltyChecker(store=store, campaign="nov")
    na2s, li2s, k2o = _swap(LI2O, {"Li": "Na", "O": "S"}, 1.5), _swap(LI2O, {"O": "S"}, 1.4), _swap(LI2O, {"Li": "K"})
    ids = _register(
        store,
        checker,
        (LI2O, {"source": "seed", "parent": "Li2O"}),  # stable, but a seed: not counted
        (na2s, {"source": "substitution"}),  # stable, found known below
        (li2s, {"source": "substitution"}),  # stable and novel
        (k2o, {"source": "substitution"}),  # unstable
        (_swap(LI2O, {"Li": "Na"}, 1.3), {"source": "substitution"}),  # failed
        (_strained(li2s), {"source": "substitution"}),  # evaluated later: relaxes into Li2S above
    )
    seed, known, new, unstable, failed, twin = store.get_candidates(ids)
    _evaluate(store, seed, LI2O, 0.0)
    _evaluate(store, known, na2s, -0.02)
    _evaluate(store, new, li2s, 0.05)
    _evaluate(store, unstable, k2o, 0.4)
    _evaluate(store, failed, LI2O, 0.0, status="failed")
    store.set_novelty(known.id, Novelty(status="known", match="mp-648", match_source="mp-api"), f"{known.id}:k")
    metrics = discovery_metrics(store, "nov", "k")
    assert metrics == {
        "n_evaluated": 4,
        "n_stable": 2,
        "n_stable_known": 1,
        "n_sun": 1,
        "sun_rate": 0.25,
        "stable_threshold_eV_per_atom": 0.1,
    }
    # two novel stable labels that relaxed into one structure count once
    _evaluate(store, twin, _swap(li2s, {}, 1.02), 0.0)
    metrics = discovery_metrics(store, "nov", "k")
    assert (metrics["n_evaluated"], metrics["n_stable"], metrics["n_sun"]) == (5, 3, 1)


def test_query_rows_show_and_filter_known_or_novel(store: CandidateStore) -> None:
    checker = NoveltyChecker(store=store, campaign="nov")
    seed_id, new_id, pending_id = _register(
        store,
        checker,
        (LI2O, {"source": "seed", "parent": "Li2O"}),
        (_swap(LI2O, {"Li": "Na"}, 1.4), {"source": "substitution"}),
        (_swap(LI2O, {"Li": "K"}, 1.6), {"source": "substitution"}),
    )
    seed, new = store.get_candidates([seed_id, new_id])
    _evaluate(store, seed, LI2O, 0.0)
    _evaluate(store, new, _swap(LI2O, {"Li": "Na"}, 1.4), 0.01)
    rows = query_rows(store, campaign="nov")
    assert [(r["id"], r["novelty"], r["known_as"]) for r in rows] == [
        (seed_id, "known", "seed:Li2O"),
        (new_id, "novel", None),
    ]
    assert [r["id"] for r in query_rows(store, where="novel >= 1")] == [new_id]
    assert [r["id"] for r in query_rows(store, where="novel <= 0 and e_above_hull <= 0.05")] == [seed_id]
    predicted = query_rows(store, where="novel >= 1", predicted=True)
    assert [(r["id"], r["values_from"], r["novelty"]) for r in predicted] == [
        (new_id, "oracle", "novel"),
        (pending_id, "predicted", "novel"),
    ]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_set_novelty_round_trips_on_every_backend(db: Database[dict[str, Any]]) -> None:
    store = CandidateStore(db)
    prov = Provenance(campaign="nov", round=1, code_version="t")
    cand = CandidateDoc.from_structure(LI2O, cid="nov-a", fingerprint="a", provenance=prov, source="substitution")
    assert cand.novelty is None
    store.insert_candidate(cand)
    eval_id = _evaluate(store, cand, LI2O, 0.0)
    verdict = Novelty(status="known", match="mp-1960", match_source="mp_20", checked_on="relaxed")
    store.set_novelty("nov-a", verdict, eval_id)
    assert store.get_candidates(["nov-a"])[0].novelty == verdict
    assert store.get_evaluations(["nov-a"], "k")["nov-a"].novelty == verdict
    novel = Novelty(status="novel", checked_against="seeds")
    store.set_novelty("nov-a", novel, eval_id)
    assert store.get_candidates(["nov-a"])[0].novelty == novel
    assert [d["_id"] for d in db["candidates"].find({"novelty.novel": {"$gte": 1}}, {"_id": 1})] == ["nov-a"]
    assert [d["_id"] for d in db["evaluations"].find({"novelty.status": "novel"}, {"_id": 1})] == [eval_id]
