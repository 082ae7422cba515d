"""End to end: Prefect server, work pool, deployment from prefect.yaml, worker, deployment run,
then the round artifacts through the Prefect API and the results through `battery-discovery query`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Iterator[dict[str, str]]:
    """A real `prefect server start` on a free port, with its own PREFECT_HOME."""
    port = _free_port()
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path_factory.mktemp("prefect-home")),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_WORKER_QUERY_SECONDS="2",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        BATTERY_DISCOVERY_HOME=str(session_home),
    )
    log = open(tmp_path_factory.mktemp("logs") / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "prefect server exited; see its log"
            time.sleep(1)
        else:
            pytest.fail("prefect server did not answer /api/health within 120 s")
        yield env
    finally:
        _stop(server)
        log.close()


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_deployment_run_end_to_end(prefect_env: dict[str, str], tmp_path: Path) -> None:
    env = prefect_env
    prefect = str(BIN / "prefect")
    _run([prefect, "work-pool", "create", "local", "--type", "process"], env)
    deployed = _run([prefect, "--no-prompt", "deploy", "--all"], env)
    assert "discovery-loop/local" in deployed.stdout

    worker_log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [prefect, "worker", "start", "--pool", "local"],
        env=env,
        cwd=tmp_path,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    params = {
        "campaign": "e2e",
        "batch_size": 1,
        "candidates_per_round": 5,
        "seeds": ["pymatgen:Li2O", "pymatgen:Li2O2"],  # two labels: round 1 has a model to predict with
        "surrogate": {"n_members": 2, "epochs": 3, "num_threads": 1},
        "oracle": {
            "relax": {"fmax": 0.2, "max_steps": 30},
            "completion": {"max_structures": 0},
        },  # orchestration, not the hull: completion is tested in tests/oracle and tests/loop
        "database": "e2e",
    }
    try:
        run = subprocess.run(
            [
                prefect,
                "deployment",
                "run",
                "discovery-loop/local",
                "--param",
                "rounds=1",
                "--params",
                json.dumps(params),
                "--watch",
                "--watch-timeout",
                "600",
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=700,
        )
    finally:
        _stop(worker)
        worker_log.close()
    assert run.returncode == 0, (
        f"deployment run failed:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}\n"
        f"worker log:\n{(tmp_path / 'worker.log').read_text()[-4000:]}"
    )

    api = env["PREFECT_API_URL"]
    flow_runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 50}, timeout=30).json()
    names = {fr["name"]: fr["state_type"] for fr in flow_runs}
    assert names.get("round-0") == "COMPLETED" and names.get("round-1") == "COMPLETED", names
    assert names.get("e2e") == "COMPLETED", names  # the loop's flow run is named after its campaign
    keys = ["e2e-round-0-batch", "e2e-round-1-batch", "e2e-round-1-summary", "e2e-campaign-summary"]
    artifacts = httpx.post(
        f"{api}/artifacts/filter", json={"artifacts": {"key": {"any_": keys}}, "limit": 50}, timeout=30
    ).json()
    by_key = {a["key"]: a for a in artifacts}
    assert set(keys) <= set(by_key), sorted(by_key)
    batch = by_key["e2e-round-1-batch"]
    assert batch["type"] == "table"
    rows = json.loads(batch["data"]) if isinstance(batch["data"], str) else batch["data"]
    assert len(rows) == 1 and rows[0]["oracle_status"] in {"converged", "unconverged", "failed"}
    assert {"predicted_mean_eV_per_atom", "predicted_std_eV_per_atom", "acquisition_value"} <= set(rows[0])
    # the battery campaign: stability against MP phases, band gap and conductivity with their uncertainty
    assert {"e_above_hull_mean", "band_gap_mean", "band_gap_std", "log10_conductivity_mean"} <= set(rows[0])
    assert "round 1" in by_key["e2e-round-1-summary"]["data"]

    query = _run([str(BIN / "battery-discovery"), "query", "--elements", "Li,O", "--database", "e2e", "--json"], env)
    found = [json.loads(line) for line in query.stdout.splitlines() if line.startswith("{")]
    li2o = [d for d in found if d["formula"] == "Li2O"]
    assert li2o and -2.4 < li2o[0]["formation_energy_per_atom"] < -1.8
    assert all(d["campaign"] == "e2e" for d in found)
    assert li2o[0]["e_above_hull"] is not None and li2o[0]["band_gap_mean"] is not None
