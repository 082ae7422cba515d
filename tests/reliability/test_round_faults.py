"""Faults inside a real flow run (Prefect test server, embedded store, MEGNet ensembles, the toy potential):

- an oracle answering NaN for every structure holding Na: those evaluations are stored as failed with the reason,
  no NaN reaches any stored number, the rounds complete and the model trains on the finite labels only;
- the round's model files corrupted after the round finished: re-running the round names the file and trains again;
  the next round's predict names the unusable model and picks at random instead of failing;
- a model document pointing at a crafted pickle: refused before unpickling by the loop and by ``predict``, nothing
  runs.
"""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pymatgen.core import Lattice, Structure

from flows.discovery_loop import discovery_loop, discovery_round
from loop.config import LoopConfig
from loop.plan import build_plan
from loop.stages.predict import predict_stage
from oracle.testing import register_toy_potential, unregister_toy_potential
from store import open_store
from store.documents import ModelDoc
from surrogates.descriptor_surrogate import DESCRIPTOR_FILE
from surrogates.registry import load_ensembles

pytestmark = [pytest.mark.slow, pytest.mark.faults]
REPO = Path(__file__).resolve().parents[2]


def _config(seed_file: Path) -> dict[str, Any]:
    return {
        "campaign": "roundfaults",
        "rounds": 1,
        "batch_size": 3,
        "candidates_per_round": 8,
        "seeds": ("pymatgen:Li2O", "pymatgen:Li2O2", str(seed_file)),
        "surrogate": {"n_members": 2, "epochs": 5, "num_threads": 1},
        "oracle": {"relax": {"potential": "toy:nan-Na", "fmax": 0.1, "max_steps": 30}, "refine": {"potential": None}},
        "properties": (),
        "store_uri": "embedded",
        "database": "faults_rounds",
    }


def _numbers(value: Any) -> list[float]:
    """Every float in a document (nested dicts and lists)."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return []


class Payload:
    """Unpickling this creates the file ``marker``: the test fails if the file ever exists."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.marker, "w"))


@pytest.fixture
def toy() -> Any:
    register_toy_potential()
    yield
    unregister_toy_potential()


def test_nan_oracle_corrupt_and_crafted_models(prefect_harness: None, toy: None, tmp_path: Path) -> None:
    na2o = Structure(Lattice.cubic(5.55), ["Na"] * 8 + ["O"] * 4, _antifluorite())
    seed_file = tmp_path / "Na2O.cif"
    na2o.to(filename=str(seed_file))
    params = _config(seed_file)
    store = open_store("embedded", "faults_rounds")
    for name in ("candidates", "evaluations", "rounds", "models", "leases"):
        store.db[name].delete_many({})

    result = discovery_loop(**params)
    assert result["rounds_run"] == [0, 1]
    evaluations = list(store.evaluations.find({"campaign": "roundfaults"}))
    with_na = [e for e in evaluations if "Na" in e["elements"]]
    without = [e for e in evaluations if "Na" not in e["elements"]]
    assert with_na and without  # the Na2O seed at least, and Li2O
    assert all(e["status"] == "failed" and "NaN" in e["reason"] for e in with_na), [e["reason"] for e in with_na]
    assert all(e["status"] != "failed" for e in without)
    for collection in ("candidates", "evaluations", "rounds", "models"):
        for doc in store.db[collection].find({"campaign": "roundfaults"}):
            bad = [x for x in _numbers(doc) if not math.isfinite(x)]
            assert not bad, (collection, doc["_id"], bad)
    rounds = {r.round: r for r in store.list_rounds("roundfaults")}
    assert [rounds[r].status for r in (0, 1)] == ["completed", "completed"]
    model0 = store.get_model("roundfaults-r0")
    assert model0 is not None and model0.n_train == sum(1 for e in without if e["provenance"]["round"] == 0)

    # the round's model files corrupted after the round: re-running the round names the file and trains again
    model1 = store.get_model("roundfaults-r1")
    assert model1 is not None
    members = sorted(Path(model1.path).rglob("*.pt"))
    assert members
    members[0].write_bytes(b"not a model")
    config = LoopConfig.model_validate(params)
    plan = build_plan(config)
    targets = plan.context(store, 1).targets
    before = {d["_id"]: d for d in store.evaluations.find({"campaign": "roundfaults"})}
    again = discovery_round(config=config, round_index=1)
    assert again["trained_model"] == "roundfaults-r1"
    assert load_ensembles(store.get_model("roundfaults-r1"), targets)  # readable again
    after = {d["_id"]: d for d in store.evaluations.find({"campaign": "roundfaults"})}
    assert after.keys() == before.keys()  # no evaluation added or redone by the re-run
    for eid, doc in before.items():
        assert {k: v for k, v in after[eid].items() if k != "updated_at"} == {
            k: v for k, v in doc.items() if k != "updated_at"
        }, eid

    # the newest model unusable when the next round predicts: named, and the batch is picked at random
    members = sorted(Path(store.get_model("roundfaults-r1").path).rglob("*.pt"))
    members[-1].write_bytes(b"\x00" * 16)
    prediction = predict_stage(plan.context(store, 2), fixed_pool=False)
    assert prediction.members == [] and prediction.model_problem
    assert "roundfaults-r1" in prediction.model_problem and members[-1].parent.name in prediction.model_problem

    # a model document pointing at a crafted pickle: refused, nothing runs (loop and CLI)
    marker = tmp_path / "executed"
    crafted = tmp_path / "crafted"
    crafted.mkdir()
    (crafted / targets[0]).mkdir()
    (crafted / targets[0] / DESCRIPTOR_FILE).write_bytes(pickle.dumps(Payload(marker)))
    meta = {"architecture": "chgnet-gb", "property_name": targets[0], "version": "roundfaults-r5", "config": {}}
    (crafted / targets[0] / "ensemble.json").write_text(json.dumps(meta))
    (crafted / "model.json").write_text("{}")
    (crafted / "baseline.pkl").write_bytes(pickle.dumps(Payload(marker)))
    store.register_model(
        ModelDoc(
            _id="roundfaults-r5",
            campaign="roundfaults",
            round=5,
            property_name="formation_energy_per_atom",
            architecture="descriptor",
            n_members=1,
            path=str(crafted),
            n_train=1,
        )
    )
    prediction = predict_stage(plan.context(store, 6), fixed_pool=False)
    assert prediction.members == [] and "signature" in (prediction.model_problem or "")
    store.register_model(
        ModelDoc(
            _id="crafted-v1",
            campaign="models:crafted",
            round=1,
            property_name="band_gap",
            architecture="descriptor",
            n_members=1,
            path=str(crafted),
            n_train=1,
            name="crafted",
            version=1,
        )
    )
    cli = subprocess.run(
        [sys.executable, "-m", "battery_discovery.cli", "predict", "--model", "crafted-v1", "--input", str(seed_file),
         "--out", str(tmp_path / "p.csv"), "--database", "faults_rounds"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert cli.returncode == 2, cli.stdout[-2000:] + cli.stderr[-2000:]
    assert "signature" in cli.stderr and "Traceback" not in cli.stderr
    assert not marker.exists() and not (tmp_path / "p.csv").exists()


def _antifluorite() -> list[list[float]]:
    """Fractional coordinates of Na2O's antifluorite cell: Na on the 8c sites, then O on the fcc sites."""
    na = [[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)]
    o = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return na + o
