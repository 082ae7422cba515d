"""The store killed mid-round, and a second run of a campaign already running.

- The embedded store is SIGKILLed in the middle of round 1's oracle: the run's store calls retry with backoff,
  reconnecting, which starts the server again on its data; the run finishes by itself, nothing lost or redone.
  Meanwhile a second ``run`` of the same campaign stops at once, naming the first, having done nothing.
- A MongoDB server (a separate nx-27017 process on a fixed port) that stays away: the run gives up after the retry
  budget with one line that says a re-run resumes; the server comes back (same port, same data), the re-run
  finishes the campaign with nothing lost, redone or duplicated.

Real parts: the CLI in subprocesses (each with its temporary Prefect server), nx-27017 servers, CHGNet, MatGL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from store.embedded import _launch, embedded_server_status, ensure_embedded_server, stop_embedded_server

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def _traceback_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith("Traceback"))


def test_embedded_store_killed_mid_round_and_a_second_run(cli_campaign) -> None:  # type: ignore[no-untyped-def]
    campaign = cli_campaign("storekill", "faults_storekill", batch_size=6)  # 5 relaxations after the first result
    proc, log = campaign.start()
    store = campaign.store()
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and not store.db["leases"].count_documents({}):
        time.sleep(0.2)
    assert proc.poll() is None, log.read_text()[-3000:]

    # a second run of the same campaign while the first holds it: stops before any work, naming the first
    owner = store.db["leases"].find_one({})["owner"]
    second = campaign.run(timeout_s=300)
    assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
    assert "is being run by" in second.stderr and "re-run to resume" in second.stderr
    assert _traceback_lines(second.stdout + second.stderr) == 0
    assert proc.poll() is None  # the first still runs (its lease held the whole time)
    assert "of campaign 'storekill'" not in second.stderr + second.stdout  # it started no round
    assert store.db["leases"].find_one({})["owner"] == owner

    assert campaign.wait_for_evaluations(proc, 1) >= 1, log.read_text()[-3000:]
    # freeze the run at once (its process group: the CLI and its Prefect server; the store runs in its own session),
    # so the snapshot and the kill happen mid-round however slowly this test's own steps run on a busy machine
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        assert proc.poll() is None, "the run finished before the store could be killed mid-round"
        before = campaign.snapshot()
        server = embedded_server_status()
        assert server is not None
        os.kill(server.pid, signal.SIGKILL)  # the store dies in the middle of round 1's oracle
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=900) == 0, log.read_text()[-4000:]

    text = log.read_text()
    assert "store connection lost" in text  # the run noticed, retried and went on
    restarted = embedded_server_status()
    assert restarted is not None and restarted.pid != server.pid
    campaign.assert_resumed(before, campaign.snapshot())


def test_store_that_stays_away_then_resume(cli_campaign, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "mongo"
    server = ensure_embedded_server(home)  # our stand-in for a MongoDB server elsewhere: a URI, no restarts by us
    try:
        campaign = cli_campaign("storeaway", "faults_storeaway", store_uri=server.uri)
        campaign.env["BATTERY_DISCOVERY_STORE_RETRY_S"] = "10"
        proc, log = campaign.start()
        assert campaign.wait_for_evaluations(proc, 1) >= 1, log.read_text()[-3000:]
        before = campaign.snapshot()
        os.kill(server.pid, signal.SIGKILL)
        t0 = time.monotonic()
        assert proc.wait(timeout=600) == 2, log.read_text()[-4000:]
        gave_up_s = time.monotonic() - t0
        text = log.read_text()
        last = text.strip().splitlines()[-1]
        assert last.startswith("error: store connection lost in"), last
        assert "run the same command again to resume" in last
        print(f"gave up after {gave_up_s:.0f} s; {len(text.splitlines())} lines, {_traceback_lines(text)} tracebacks")
        assert _traceback_lines(text) == 0, text[-6000:]  # the one line, not Prefect's tracebacks before it

        back = _launch(home, server.port, 30)  # the server comes back on its data
        assert back is not None
        server = back
        again = campaign.run()
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        campaign.assert_resumed(before, campaign.snapshot())
    finally:
        with contextlib.suppress(ProcessLookupError):  # the relaunched server is not in the state file
            os.kill(server.pid, signal.SIGTERM)
        stop_embedded_server(home)
