"""Faults injected into a real run: ``battery-discovery run`` killed with SIGKILL in the middle of round 1's oracle,
then run again. Nothing finished is lost or redone, nothing is duplicated, rounds and counts stay consistent.

Real parts: the CLI in a subprocess (with its temporary Prefect server), the embedded store, CHGNet, MatGL.
"""

from __future__ import annotations

import signal

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def test_sigkill_mid_oracle_then_resume(cli_campaign) -> None:  # type: ignore[no-untyped-def]
    campaign = cli_campaign("kill9", "faults_kill9")
    proc, log = campaign.start()
    done = campaign.wait_for_evaluations(proc, 1)
    assert proc.poll() is None, log.read_text()[-3000:]
    campaign.kill(proc)  # round 1's oracle has written its first result: kill everything, at once
    assert proc.returncode == -signal.SIGKILL
    before = campaign.snapshot()
    round1 = before["rounds"].get(1)
    assert round1 is not None and round1["status"] == "running" and round1["acquired"]  # the batch was recorded

    again = campaign.run()
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    campaign.assert_resumed(before, campaign.snapshot())
    print(f"killed after {done} of round 1's evaluations; evaluations kept {len(before['evaluations'])}")
