"""The stages on mongomock with the toy potential: idempotent, resumable, failures recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from loop.config import LoopConfig
from loop.stages.evaluate import chunk_ids
from loop.stages.predict import PredictOutput
from loop.stages.retrain import RetrainOutput
from loop.testing import StageRunner, count_trainings, model_file_hashes, store_documents
from oracle.testing import count_oracle_calls, register_toy_potential, unregister_toy_potential
from store import open_store
from store.connection import close_all
from store.repository import CandidateStore
from store.testing import CrashAfter, StoreCrash


@pytest.fixture
def toy() -> Iterator[None]:
    register_toy_potential()
    yield
    unregister_toy_potential()


@pytest.fixture
def config(toy: None) -> LoopConfig:
    return LoopConfig(
        campaign="unit",
        rounds=1,
        batch_size=2,
        candidates_per_round=5,
        seeds=("pymatgen:Li2O", "pymatgen:Li2O2"),
        oracle={
            "relax": {"potential": "toy", "fmax": 0.1, "max_steps": 30},
            "refine": {"potential": None},
            "reference_source": "auto",
        },
        properties=(),  # the loop mechanics alone: no property models
        store_uri="mongomock://pipeline",
    )


@pytest.fixture
def store(config: LoopConfig) -> Iterator[CandidateStore]:
    yield open_store(config.store_uri, config.database)
    close_all()


def test_seed_generate_acquire_evaluate_resume(store: CandidateStore, config: LoopConfig) -> None:
    ids = StageRunner(store, config).seed()
    seeded = store_documents(store)
    assert len(ids) == 2 and StageRunner(store, config).seed() == ids
    assert store_documents(store) == seeded  # the re-run writes nothing, not even a timestamp
    entries = StageRunner(store, config).record_batch(0, ids)
    assert [e.formula for e in entries] == ["Li2O", "Li2O2"]
    ev = StageRunner(store, config).evaluate(0, ids, seeds=True)
    assert ev.n_computed == 2 and set(ev.status) == set(ids)
    assert all(np.isfinite(v) for v in ev.formation_energy.values())
    # seeds are labelled by a single point unless relax_seeds
    assert all(d["n_steps"] == 0 and d["max_steps"] == 0 for d in store.evaluations.find())
    labelled = store_documents(store)
    with count_oracle_calls() as calls:
        assert StageRunner(store, config).evaluate(0, ids, seeds=True).n_computed == 0  # resumed, not redone
    assert calls.structures == [] and calls.cells == 0 and store_documents(store) == labelled

    gen = StageRunner(store, config).generate(1)
    assert 1 <= len(gen.new_ids) <= config.candidates_per_round
    new = store.get_candidates(gen.new_ids)
    assert all({"Li", "Na"} & set(c.elements) for c in new)
    generated = store_documents(store)
    assert StageRunner(store, config).generate(1).new_ids == []  # re-run adds nothing
    assert store_documents(store) == generated

    pred = StageRunner(store, config).predict(1)
    assert pred.model_version is None and pred.members == [] and set(pred.pool_ids) == set(gen.new_ids)
    acq = StageRunner(store, config).acquire(1, pred)
    assert acq.strategy == "random" and len(acq.entries) == min(2, len(gen.new_ids))
    acquired = store_documents(store)
    again = StageRunner(store, config).acquire(1, pred)
    assert again.strategy == "resumed" and again.entries == acq.entries
    # resuming after the batch was chosen generates nothing more: the round's candidates stay those of its pool
    resumed = StageRunner(store, config).generate(1)
    assert resumed.new_ids == sorted(gen.new_ids) and store_documents(store) == acquired

    batch = [e.candidate_id for e in acq.entries]
    assert len(batch) == 2
    # the store dies on the second result write: the stage dies mid-batch with the first result stored
    dying = CrashAfter(store, 1)
    with pytest.raises(StoreCrash, match="put_evaluation"):
        StageRunner(dying, config).evaluate(1, batch)
    assert dying.calls == 2
    (kept,) = store.evaluations.find({"candidate_id": {"$in": batch}})
    (missing,) = store.get_candidates([c for c in batch if c != kept["candidate_id"]])
    crashed = store_documents(store)
    # the re-run keeps that result (field by field, timestamps too) and relaxes only the missing one
    with count_oracle_calls() as calls:
        ev1 = StageRunner(store, config).evaluate(1, batch)
    assert ev1.n_computed == 1 and calls.structures == [missing.formula] and calls.cells >= 1
    assert store.evaluations.find_one({"_id": kept["_id"]}) == kept
    after = store_documents(store)
    assert [d for d in after["evaluations"] if d["candidate_id"] != missing.id] == crashed["evaluations"]
    assert [d for d in after["candidates"] if d["_id"] != missing.id] == [
        d for d in crashed["candidates"] if d["_id"] != missing.id
    ]
    assert after["rounds"] == crashed["rounds"] and after["models"] == crashed["models"] == []
    assert set(ev1.status) == set(batch)
    assert store.evaluations.count_documents({}) == 2 + len(batch)
    doc = StageRunner(store, config).complete(
        1,
        n_generated=len(gen.new_ids),
        evaluation=ev1,
        retrain=RetrainOutput(model_version=None),
        timings={"oracle": ev1.elapsed_s},
    )
    assert doc.status == "completed" and doc.n_evaluated == len(batch)
    hulls = [e.energy_above_hull for e in store.labelled(config.campaign, config.oracle.key())]
    assert hulls and all(h is not None and h >= 0 for h in hulls) and min(hulls) == 0.0
    labels = store.labelled(config.campaign, config.oracle.key())
    assert min(b["formation_energy_per_atom"] for b in doc.best) == min(e.formation_energy_per_atom for e in labels)
    # novel candidates ranked first, apart from the known ones (the seeds), each group most stable first
    known = [b["novelty"] == "known" for b in doc.best]
    assert known == sorted(known) and not known[0]
    seed_ids = set(store.candidate_ids(config.campaign, "seed"))
    assert {b["candidate_id"] for b in doc.best if b["novelty"] == "known"} == seed_ids
    for group in (False, True):
        keys = [
            (b["e_above_hull"], b["formation_energy_per_atom"]) for b in doc.best if (b["novelty"] == "known") == group
        ]
        assert keys == sorted(keys)
    assert doc.metrics["n_evaluated"] == len(batch) and doc.metrics["n_sun"] <= doc.metrics["n_stable"]
    # the completed round again: nothing relaxed, nothing written (its completion time and timings kept too)
    completed = store_documents(store)
    with count_oracle_calls() as calls:
        assert StageRunner(store, config).predict(1).model_version is None  # the batch is chosen: not predicted
        redo = StageRunner(store, config).evaluate(1, batch)
        StageRunner(store, config).complete(
            1, n_generated=0, evaluation=redo, retrain=RetrainOutput(model_version=None), timings={"oracle": 0.0}
        )
    assert redo.n_computed == 0 and redo.status == ev1.status
    assert calls.structures == [] and calls.cells == 0 and store_documents(store) == completed


def test_a_rerun_of_a_trained_round_keeps_its_model(store: CandidateStore, config: LoopConfig) -> None:
    """Retraining a round whose model is registered trains nothing and leaves its files and document as they were."""
    cfg = config.model_copy(
        update={
            "acquisition": config.acquisition.model_copy(update={"strategy": "ucb"}),
            "surrogate": config.surrogate.model_copy(update={"n_members": 2, "epochs": 2}),
        }
    )
    ids = StageRunner(store, cfg).seed()
    StageRunner(store, cfg).evaluate(0, ids, seeds=True)
    with count_trainings() as trained:
        first = StageRunner(store, cfg).retrain(0)
    assert first.model_version == "unit-r0" and trained == [("unit-r0", "formation_energy_per_atom")]
    files, documents = model_file_hashes(store), store_documents(store)
    assert files["unit-r0"] and "ensemble.json" in {Path(f).name for f in files["unit-r0"]}
    with count_trainings() as trained, count_oracle_calls() as calls:
        again = StageRunner(store, cfg).retrain(0)
    assert trained == [] and calls.cells == 0
    assert (again.model_version, again.metrics, again.n_train) == (first.model_version, first.metrics, first.n_train)
    assert model_file_hashes(store) == files and store_documents(store) == documents


def test_acquire_uses_the_ensemble_when_there_is_one(store: CandidateStore, config: LoopConfig) -> None:
    StageRunner(store, config).seed()
    gen = StageRunner(store, config).generate(1)
    pool = [c.id for c in store.pending_candidates(config.campaign)]
    assert len(pool) >= 2
    members = np.zeros((3, len(pool)))
    members[:, 1] = -5.0  # candidate 1 is predicted far more stable
    pred = PredictOutput(pool_ids=pool, members=members.tolist(), model_version="m", elapsed_s=0.0)
    cfg = config.model_copy(update={"acquisition": config.acquisition.model_copy(update={"strategy": "greedy"})})
    acq = StageRunner(store, cfg).acquire(1, pred)
    assert acq.entries[0].candidate_id == pool[1] and acq.entries[0].mean == -5.0
    assert store.get_round("unit", 1).prediction_model == "m"
    assert gen.n_parents == 2


def test_a_failing_candidate_is_recorded_and_the_rest_go_on(store: CandidateStore, config: LoopConfig) -> None:
    good = Structure(Lattice.cubic(4.2), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    bad = Structure(Lattice.cubic(4.2), ["Li", "F"], [[0, 0, 0], [0.05, 0, 0]])  # 0.2 Å apart
    items = [(good, {"source": "seed", "parent": "good"}), (bad, {"source": "seed", "parent": "bad"})]
    ids, new = StageRunner(store, config).register(0, items, limit=5)
    assert ids == new and len(ids) == 2
    ev = StageRunner(store, config).evaluate(0, ids)
    assert ev.status[ids[1]] == "failed" and ev.status[ids[0]] != "failed"
    failed = store.evaluations.find_one({"candidate_id": ids[1]})
    assert "close" in failed["reason"] or "distance" in failed["reason"]
    assert store.get_candidates([ids[1]])[0].status == "failed"


def test_campaigns_do_not_share_pools(store: CandidateStore, config: LoopConfig) -> None:
    StageRunner(store, config).seed()
    other = config.model_copy(update={"campaign": "other"})
    ids_other = StageRunner(store, other).seed()
    assert all(i.startswith("other-") for i in ids_other)
    StageRunner(store, config).generate(1)
    assert store.pending_candidates("other") == [] or all(
        c.campaign == "other" for c in store.pending_candidates("other")
    )
    assert {c.campaign for c in store.pending_candidates("unit")} == {"unit"}


def test_generation_keeps_finding_new_candidates(store: CandidateStore, config: LoopConfig) -> None:
    """The per-round cap applies after de-duplication, so later rounds are not starved."""
    StageRunner(store, config).seed()
    sizes = [len(StageRunner(store, config).generate(r).new_ids) for r in (1, 2)]
    assert sizes[0] == config.candidates_per_round
    assert sizes[1] >= 1


def test_missing_reference_fails_the_round_without_storing(store: CandidateStore, config: LoopConfig) -> None:
    from core.errors import ConfigError

    li2s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.7), ["S", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    cfg = config.model_copy(update={"oracle": config.oracle.model_copy(update={"reference_source": "ase"})})
    ids, _ = StageRunner(store, cfg).register(0, [(li2s, {"source": "seed", "parent": "Li2S"})], limit=1)
    with pytest.raises(ConfigError, match="S"):  # ASE has no reference state for S and source is 'ase'
        StageRunner(store, cfg).evaluate(0, ids, seeds=True)
    assert store.evaluations.count_documents({}) == 0
    assert store.get_candidates(ids)[0].status == "generated"


def test_chunk_ids_gives_every_worker_a_share_and_respects_the_batch_size() -> None:
    ids = [f"c{i}" for i in range(10)]
    assert chunk_ids(ids, workers=2, batch_size=8) == [ids[0::2], ids[1::2]]
    assert chunk_ids(ids, workers=2, batch_size=3) == [ids[0::4], ids[1::4], ids[2::4], ids[3::4]]
    assert chunk_ids(ids[:1], workers=4, batch_size=8) == [["c0"]]
    assert chunk_ids([], workers=2, batch_size=8) == []


def test_transport_stage_runs_md_on_the_top_labels_once(store: CandidateStore, config: LoopConfig) -> None:
    cfg = config.model_copy(
        update={
            "oracle": config.oracle.model_copy(
                update={
                    "md": config.oracle.md.model_copy(
                        update={"enabled": True, "top_k": 1, "steps": 20, "equilibration_steps": 0, "min_length": 5.0}
                    )
                }
            )
        }
    )
    ids = StageRunner(store, cfg).seed()
    StageRunner(store, cfg).evaluate(0, ids, seeds=True)
    StageRunner(store, cfg).finish(0)
    out = StageRunner(store, cfg).transport(0)
    assert len(out.results) == 1
    (key,) = out.results
    doc = store.evaluations.find_one({"_id": key})
    assert doc["transport"]["status"] == "ok" and doc["transport"]["ion"] == "Li" and doc["transport"]["round"] == 0
    assert StageRunner(store, cfg).transport(1).results == {}  # done once, not again
    assert StageRunner(store, config).transport(1).results == {}  # disabled by default
