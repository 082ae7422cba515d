"""A full disk, for real: the file being written is a symlink to ``/dev/full`` (every write fails with ENOSPC).

- A round's model cannot be saved: the run stops with the OS error, the store holds the round's evaluations and
  no half-saved model; with space again, the re-run trains and registers the model without relabelling anything.
- A command whose output cannot be written says so in one line (exit 2), not a traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from flows.discovery_loop import discovery_loop
from loop.config import LoopConfig
from loop.plan import build_plan
from oracle.testing import register_toy_potential, unregister_toy_potential
from store import open_store
from surrogates.registry import load_ensembles, model_dir

pytestmark = [pytest.mark.slow, pytest.mark.faults]
DEV_FULL = Path("/dev/full")
PARAMS: dict[str, Any] = {
    "campaign": "diskfull",
    "rounds": 0,
    "seeds": ("pymatgen:Li2O", "pymatgen:Li2O2"),
    "surrogate": {"n_members": 2, "epochs": 3, "num_threads": 1},
    "oracle": {"relax": {"potential": "toy", "fmax": 0.1, "max_steps": 30}, "refine": {"potential": None}},
    "properties": (),
    "store_uri": "embedded",
    "database": "faults_disk",
}


@pytest.fixture
def toy() -> Any:
    register_toy_potential()
    yield
    unregister_toy_potential()


@pytest.fixture(autouse=True)
def _needs_dev_full() -> None:
    if not DEV_FULL.exists():
        pytest.skip("no /dev/full on this system")


def test_model_save_on_a_full_disk_then_resume(prefect_harness: None, toy: None) -> None:
    store = open_store("embedded", "faults_disk")
    for name in ("candidates", "evaluations", "rounds", "models", "leases"):
        store.db[name].delete_many({})
    folder = model_dir("faults_disk", "diskfull-r0")
    folder.mkdir(parents=True, exist_ok=True)
    full = folder / ".ensemble.json.tmp"  # the file the ensemble's metadata is written to, last
    full.unlink(missing_ok=True)
    full.symlink_to(DEV_FULL)

    with pytest.raises(OSError) as info:
        discovery_loop(**PARAMS)
    assert info.value.errno == errno.ENOSPC
    round0 = store.get_round("diskfull", 0)
    assert round0 is not None and round0.status != "completed"
    evaluations = {d["_id"]: d for d in store.evaluations.find({"campaign": "diskfull"})}
    assert len(evaluations) == 2  # labelled before the disk filled: kept
    assert store.get_model("diskfull-r0") is None  # nothing half-saved is registered
    assert not (folder / "ensemble.json").exists()

    full.unlink()  # space again
    assert discovery_loop(**PARAMS)["rounds_run"] == [0]
    again = {d["_id"]: d for d in store.evaluations.find({"campaign": "diskfull"})}
    assert again.keys() == evaluations.keys()
    for eid, doc in evaluations.items():  # not relabelled: every field set then is as it was (the round's end
        # fills in the hull fields, left empty when the disk filled)
        changed = {k for k, v in doc.items() if v not in (None, {}, []) and again[eid].get(k) != v}
        assert not changed, (eid, {k: (doc.get(k), again[eid].get(k)) for k in changed})
    model = store.get_model("diskfull-r0")
    plan = build_plan(LoopConfig.model_validate(PARAMS))
    assert model is not None and load_ensembles(model, plan.context(store, 0).targets)
    assert store.get_round("diskfull", 0).status == "completed"  # type: ignore[union-attr]


def test_cli_output_on_a_full_disk_is_one_line(cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "generated"
    out.mkdir()
    (out / "generated.csv").symlink_to(DEV_FULL)
    code = cli("generate", "--generator", "ion-exchange", "--n", "2", "--parents", "pymatgen:Li2O", "--out", str(out))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "disk full" in err and "Traceback" not in err
    assert os.path.islink(out / "generated.csv")
