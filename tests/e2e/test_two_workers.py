"""Two Prefect workers on one work pool run two campaigns side by side against one store, and the Prefect server
is restarted while both flow runs are in the middle of their rounds: each finishes, or (when it was opening an API
client at that moment) fails and its re-run resumes; each campaign complete and consistent.
Real parts: `prefect server start`, `prefect worker start` x 2, the deployment from prefect.yaml."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from store import open_store

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.faults]
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DATABASE = "e2e_pair"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class Server:
    """`prefect server start` on a fixed port and home, restartable."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.5)
        pytest.fail("prefect server did not answer /api/health within 120 s")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


def _params(campaign: str) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "rounds": 1,
        "batch_size": 2,
        "candidates_per_round": 6,
        "seeds": ["pymatgen:Li2O", "pymatgen:Li2O2"],
        "properties": [],
        "surrogate": {"n_members": 2, "epochs": 3, "num_threads": 1},
        "oracle": {
            "relax": {"fmax": 0.05, "max_steps": 100},
            "batch_size": 1,
            "completion": {"max_structures": 0},
        },  # orchestration, not the hull: completion is tested in tests/oracle and tests/loop
        "database": DATABASE,
    }


def _api(method: str, url: str, json: dict[str, Any] | None = None, timeout_s: float = 120) -> Any:
    """One Prefect API call, repeated while the server is unreachable or answers 5xx (its SQLite database can be
    locked for a moment while two workers and a deployment write to it on a busy machine); a 4xx fails the test
    with the server's answer. Calls that create something carry an idempotency key, so a repeat creates nothing."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.request(method, url, json=json, timeout=30)
        except httpx.HTTPError as exc:
            last = repr(exc)
        else:
            if response.status_code < 500:
                assert response.is_success, f"{method} {url} -> {response.status_code}: {response.text[:2000]}"
                return response.json()
            last = f"{response.status_code}: {response.text[:2000]}"
        time.sleep(1)
    pytest.fail(f"{method} {url} did not succeed within {timeout_s} s; last answer {last}")


def _create_run(api: str, deployment_id: str, campaign: str, name: str) -> str:
    body = {"parameters": _params(campaign), "name": name, "idempotency_key": name}
    return str(_api("POST", f"{api}/deployments/{deployment_id}/create_flow_run", body)["id"])


def _state(api: str, run_id: str) -> str:
    return str(_api("GET", f"{api}/flow_runs/{run_id}")["state_type"])


def _wait_until_final(api: str, runs: dict[str, str], timeout_s: float = 900) -> dict[str, str]:
    """Poll the flow runs until each is in a final state (or the time is up); their states."""
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {c: _state(api, r) for c, r in runs.items()}
        if all(s in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for s in states.values()):
            break
        time.sleep(2)
    return states


def test_two_workers_two_campaigns_and_a_server_restart(tmp_path: Path, session_home: Path) -> None:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "BATTERY_DISCOVERY_HOME": str(session_home),
    }
    store = open_store("embedded", DATABASE)
    for name in ("candidates", "evaluations", "rounds", "models", "leases"):
        store.db[name].delete_many({})
    server = Server(env, port, tmp_path / "server.log")
    server.start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for args in (["work-pool", "create", "local", "--type", "process"], ["--no-prompt", "deploy", "--all"]):
            done = subprocess.run([str(BIN / "prefect"), *args], env=env, cwd=REPO, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        for name in ("w1", "w2"):  # one flow run at a time each: the two runs land on different workers
            cmd = [str(BIN / "prefect"), "worker", "start", "--pool", "local", "--name", name, "--limit", "1"]
            with open(tmp_path / f"{name}.log", "wb") as log:
                workers.append(
                    subprocess.Popen(
                        cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        deployment = _api("GET", f"{api}/deployments/name/discovery-loop/local")
        runs = {campaign: _create_run(api, deployment["id"], campaign, campaign) for campaign in ("pair-a", "pair-b")}
        # a flow run in the middle of its rounds (and the other not finished): restart the Prefect server under them.
        # (Waiting for both to be mid-round is a race on 2 cores: one worker's flow process may start 20 s later.)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            now = {c: _state(api, r) for c, r in runs.items()}
            if not any(s in ("COMPLETED", "FAILED", "CRASHED") for s in now.values()) and any(
                s == "RUNNING" and store.evaluations.count_documents({"campaign": c}) >= 1 for c, s in now.items()
            ):
                break
            time.sleep(0.5)
        else:
            pytest.fail({c: _state(api, r) for c, r in runs.items()})
        server.stop()
        time.sleep(5)
        server.start()
        states = _wait_until_final(api, runs)
        # A flow run that opened a new API client while the server was down fails (Prefect's client retries a
        # refused connection only once it has connected): its re-run with the same parameters resumes from the store.
        first_logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("w1", "w2")}
        lost = {c for c, state in states.items() if state != "COMPLETED"}
        kept = {c: {d["_id"]: d for d in store.evaluations.find({"campaign": c})} for c in lost}
        reruns = {c: _create_run(api, deployment["id"], c, f"{c}-rerun") for c in sorted(lost)}
        rerun_states = _wait_until_final(api, reruns)
        logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("w1", "w2")}
        assert set(states.values()) <= {"COMPLETED", "FAILED", "CRASHED"}, (states, logs)
        assert all(state == "COMPLETED" for state in rerun_states.values()), (states, rerun_states, logs)
        for c, before in kept.items():  # the re-run redid nothing the lost run had finished
            after = {d["_id"]: d for d in store.evaluations.find({"campaign": c})}
            assert all(after.get(k) == doc for k, doc in before.items()), c
        print(f"after the restart: {states}; re-run: {rerun_states or 'none needed'}")
    finally:
        for worker in workers:
            _stop(worker)
        server.stop()

    # each worker ran one of the two flow runs
    # (a worker that lost the race for a run logs its id too, then "Aborted submission": count what each started)
    ran = {
        name: {c for c in runs if f"Flow run '{c}' submitted to infrastructure" in text}
        for name, text in first_logs.items()
    }
    assert sorted(map(sorted, ran.values())) == [["pair-a"], ["pair-b"]], ran
    # both campaigns complete and consistent in the one store
    for campaign in runs:
        rounds = {d["round"]: d["status"] for d in store.rounds.find({"campaign": campaign})}
        assert rounds == {0: "completed", 1: "completed"}, (campaign, rounds)
        evaluated = [d["candidate_id"] for d in store.evaluations.find({"campaign": campaign})]
        assert len(evaluated) == len(set(evaluated)) >= 3
        assert all(c.startswith(f"{campaign}-") for c in evaluated)
    assert store.db["leases"].count_documents({}) == 0
