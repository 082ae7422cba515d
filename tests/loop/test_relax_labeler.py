"""The ``relax`` labeler records what made each label: potential, version, checkpoint hash, second tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loop.config import LoopConfig
from loop.testing import StageRunner
from oracle.potentials import CHGNetPotential, file_sha256
from store import open_store
from store.connection import close_all
from store.repository import CandidateStore


@pytest.fixture
def store() -> Iterator[CandidateStore]:
    yield open_store("mongomock://provenance", "provenance")
    close_all()


@pytest.mark.slow
def test_an_evaluation_names_its_potentials_and_their_checkpoint_hashes(store: CandidateStore) -> None:
    config = LoopConfig(
        campaign="prov",
        rounds=1,
        batch_size=1,
        seeds=("pymatgen:Li2O",),
        oracle={"refine": {"potential": "chgnet:0.2.0"}},
        properties=(),
        store_uri="mongomock://provenance",
        database="provenance",
    )
    runner = StageRunner(store, config)
    ids = runner.seed()
    runner.record_batch(0, ids)
    runner.evaluate(0, ids, seeds=True)
    [evaluation] = store.labelled("prov", config.oracle.key())
    assert evaluation.oracle_key == config.oracle.key()
    assert evaluation.oracle_key.startswith("chgnet+chgnet:0.2.0|")
    assert evaluation.potential == "chgnet" and evaluation.potential_version.startswith("chgnet ")
    assert evaluation.checkpoint_sha256 == file_sha256(CHGNetPotential.checkpoint_path("0.3.0"))
    refine = evaluation.refine
    assert refine is not None and refine["potential"] == "chgnet:0.2.0" and refine["max_steps"] == 0
    assert refine["checkpoint_sha256"] == file_sha256(CHGNetPotential.checkpoint_path("0.2.0"))
    assert refine["checkpoint_sha256"] != evaluation.checkpoint_sha256
    # the label is the second tier's energy of the first tier's structure
    assert evaluation.energy_per_atom == pytest.approx(refine["energy_per_atom"])
    assert refine["first_energy_per_atom"] != pytest.approx(refine["energy_per_atom"], abs=1e-6)
    assert evaluation.provenance.oracle == "chgnet+chgnet:0.2.0"
