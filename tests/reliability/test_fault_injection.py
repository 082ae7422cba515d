"""Faults injected into a real run: ``battery-discovery run`` killed with SIGKILL in the middle of round 1's oracle,
then run again. Nothing finished is lost or redone, nothing is duplicated, rounds and counts stay consistent.

Real parts: the CLI in a subprocess (with its temporary Prefect server), the embedded store, CHGNet, MatGL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.faults]
REPO = Path(__file__).resolve().parents[2]
DATABASE, CAMPAIGN = "faults_kill9", "kill9"
CONFIG = {
    "campaign": CAMPAIGN,
    "rounds": 1,
    "batch_size": 3,
    "candidates_per_round": 8,
    "seeds": ["pymatgen:Li2O", "pymatgen:Li2O2"],
    "surrogate": {"n_members": 2, "epochs": 5, "num_threads": 1},
    "oracle": {"relax": {"fmax": 0.02, "max_steps": 150}, "batch_size": 1},
    "store_uri": "embedded",
    "database": DATABASE,
}
#: What a finished relaxation is: these fields must come back unchanged after the resume (the hull, properties and
#: window fields are recomputed at every round's end by design).
KEPT = ("energy_per_atom", "energy_total", "n_steps", "elapsed_s", "relaxed_structure", "energy_trajectory")


def _snapshot(store: Any) -> dict[str, Any]:
    evaluations = {d["_id"]: d for d in store.evaluations.find({"campaign": CAMPAIGN})}
    return {
        "candidates": sorted(d["_id"] for d in store.candidates.find({"campaign": CAMPAIGN}, {"_id": 1})),
        "evaluations": evaluations,
        "rounds": {d["round"]: d for d in store.rounds.find({"campaign": CAMPAIGN})},
    }


def test_sigkill_mid_oracle_then_resume(tmp_path: Path, session_home: Path) -> None:
    config = tmp_path / "kill9.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    cmd = [sys.executable, "-m", "battery_discovery.cli", "run", "-c", str(config)]
    env = {**os.environ, "BATTERY_DISCOVERY_HOME": str(session_home)}
    store = open_store("embedded", DATABASE)
    for name in ("candidates", "evaluations", "rounds", "models", "leases"):
        store.db[name].delete_many({})
    log = open(tmp_path / "first.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 900
    killed_mid_round = False
    while time.monotonic() < deadline and proc.poll() is None:
        done = store.evaluations.count_documents({"campaign": CAMPAIGN, "provenance.round": 1})
        if done >= 1:  # round 1's oracle has written its first result: kill everything, at once
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_mid_round = done < CONFIG["batch_size"]
            break
        time.sleep(0.1)
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-3000:]
    before = _snapshot(store)
    round1 = before["rounds"].get(1)
    assert round1 is not None and round1["status"] == "running" and round1["acquired"]  # the batch was recorded

    again = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    after = _snapshot(store)

    # nothing lost: every candidate and evaluation is still there; nothing duplicated: one evaluation per candidate
    assert set(before["candidates"]) <= set(after["candidates"])
    assert set(before["evaluations"]) <= set(after["evaluations"])
    per_candidate = [d["candidate_id"] for d in after["evaluations"].values()]
    assert len(per_candidate) == len(set(per_candidate))
    # nothing redone: finished relaxations come back unchanged, field by field
    for eid, doc in before["evaluations"].items():
        for field in KEPT:
            assert after["evaluations"][eid].get(field) == doc.get(field), (eid, field)
    # the round resumed its recorded batch and generated nothing more
    rounds = after["rounds"]
    assert [(r, rounds[r]["status"]) for r in sorted(rounds)] == [(0, "completed"), (1, "completed")]
    assert [e["candidate_id"] for e in rounds[1]["acquired"]] == [e["candidate_id"] for e in round1["acquired"]]
    assert rounds[1]["n_generated"] == store.count_generated(CAMPAIGN, 1)
    assert rounds[1]["n_evaluated"] + rounds[1]["n_failed"] == len(round1["acquired"])
    assert store.db["leases"].count_documents({}) == 0  # the killed run's lease was taken over, then released
    print(f"killed mid-round: {killed_mid_round}; evaluations kept {len(before['evaluations'])}")
