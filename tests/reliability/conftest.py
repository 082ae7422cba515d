"""A small campaign run by the real CLI in a subprocess (its own temporary Prefect server, CHGNet, MatGL), and
the checks every fault test makes on the store before and after: nothing lost, redone or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from store import open_store
from store.repository import CandidateStore

REPO = Path(__file__).resolve().parents[2]
#: What a finished relaxation is: these fields must come back unchanged after a resume (the hull, properties and
#: window fields are recomputed at every round's end by design).
KEPT = ("energy_per_atom", "energy_total", "n_steps", "elapsed_s", "relaxed_structure", "energy_trajectory")
COLLECTIONS = ("candidates", "evaluations", "rounds", "models", "leases")


def base_config(campaign: str, database: str, store_uri: str = "embedded") -> dict[str, Any]:
    """Two rounds (seeds, then one acquired batch of 3 relaxed one at a time), small models."""
    return {
        "campaign": campaign,
        "rounds": 1,
        "batch_size": 3,
        "candidates_per_round": 8,
        "seeds": ["pymatgen:Li2O", "pymatgen:Li2O2"],
        "surrogate": {"n_members": 2, "epochs": 5, "num_threads": 1},
        "oracle": {
            "relax": {"fmax": 0.02, "max_steps": 150},
            "batch_size": 1,
            "completion": {"max_structures": 0},
        },  # orchestration, not the hull: completion is tested in tests/oracle and tests/loop
        "store_uri": store_uri,
        "database": database,
    }


@dataclass
class CliCampaign:
    """``battery-discovery run -c <config>`` of one campaign, as a user runs it."""

    config: dict[str, Any]
    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    runs: int = 0

    @property
    def name(self) -> str:
        return str(self.config["campaign"])

    @property
    def command(self) -> list[str]:
        path = self.folder / f"{self.name}.yaml"
        path.write_text(yaml.safe_dump(self.config))
        return [sys.executable, "-m", "battery_discovery.cli", "run", "-c", str(path)]

    def store(self) -> CandidateStore:
        """A fresh connection (the server may have restarted on another port)."""
        return open_store(str(self.config["store_uri"]), str(self.config["database"]))

    def clear(self) -> None:
        store = self.store()
        for name in COLLECTIONS:
            store.db[name].delete_many({})

    def start(self) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a run in its own process group; returns it and its log file (stdout and stderr)."""
        self.runs += 1
        log_path = self.folder / f"{self.name}-run{self.runs}.log"
        log = open(log_path, "wb")  # noqa: SIM115  # the child writes it; closed when the test ends
        proc = subprocess.Popen(
            self.command,
            env={**os.environ, **self.env},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return proc, log_path

    def run(self, timeout_s: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command, env={**os.environ, **self.env}, cwd=REPO, capture_output=True, text=True, timeout=timeout_s
        )

    def wait_for_evaluations(self, proc: subprocess.Popen[bytes], n: int, round_index: int = 1) -> int:
        """Poll until round ``round_index`` has ``n`` evaluations in the store (or the run ended); returns the count."""
        store = self.store()
        deadline = time.monotonic() + 900
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            done = store.evaluations.count_documents({"campaign": self.name, "provenance.round": round_index})
            if done >= n:
                break
            time.sleep(0.1)
        return done

    def snapshot(self) -> dict[str, Any]:
        store = self.store()
        return {
            "candidates": sorted(d["_id"] for d in store.candidates.find({"campaign": self.name}, {"_id": 1})),
            "evaluations": {d["_id"]: d for d in store.evaluations.find({"campaign": self.name})},
            "rounds": {d["round"]: d for d in store.rounds.find({"campaign": self.name})},
        }

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the run and every process it started, at once."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def assert_resumed(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Nothing lost, redone or duplicated; rounds complete with their recorded batch and counts."""
        assert set(before["candidates"]) <= set(after["candidates"])
        assert set(before["evaluations"]) <= set(after["evaluations"])
        per_candidate = [d["candidate_id"] for d in after["evaluations"].values()]
        assert len(per_candidate) == len(set(per_candidate)), "a candidate was evaluated twice"
        for eid, doc in before["evaluations"].items():
            for name in KEPT:
                assert after["evaluations"][eid].get(name) == doc.get(name), (eid, name)
        rounds = after["rounds"]
        assert [(r, rounds[r]["status"]) for r in sorted(rounds)] == [(0, "completed"), (1, "completed")]
        first = before["rounds"].get(1)
        if first is not None and first.get("acquired"):
            assert [e["candidate_id"] for e in rounds[1]["acquired"]] == [e["candidate_id"] for e in first["acquired"]]
        store = self.store()
        assert rounds[1]["n_generated"] == store.count_generated(self.name, 1)
        assert rounds[1]["n_evaluated"] + rounds[1]["n_failed"] == len(rounds[1]["acquired"])
        assert store.db["leases"].count_documents({}) == 0  # released at the end


@pytest.fixture
def cli_campaign(tmp_path: Path, session_home: Path):  # type: ignore[no-untyped-def]
    """Make a :class:`CliCampaign` (``cli_campaign(name, database, store_uri=..., **overrides)``), store cleared."""

    def make(name: str, database: str, store_uri: str = "embedded", **overrides: Any) -> CliCampaign:
        campaign = CliCampaign(
            {**base_config(name, database, store_uri), **overrides},
            tmp_path,
            env={"BATTERY_DISCOVERY_HOME": str(session_home)},
        )
        campaign.clear()
        return campaign

    return make
