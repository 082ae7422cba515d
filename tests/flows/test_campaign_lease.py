"""Two runs of one campaign never work at once: the second stops before doing anything, naming the first."""

from __future__ import annotations

import pytest

from flows.discovery_loop import discovery_loop
from store import open_store
from store.leases import CampaignBusyError, CampaignLease

pytestmark = pytest.mark.slow


def test_a_second_run_of_a_campaign_stops_at_once(prefect_harness: None) -> None:
    store = open_store("mongomock://busy-flow", "busy")
    lease = CampaignLease(store, "busy")
    with lease, pytest.raises(CampaignBusyError, match=f"being run by {lease.owner}"):
        discovery_loop(campaign="busy", store_uri="mongomock://busy-flow", database="busy", rounds=0)
    assert store.rounds.count_documents({}) == 0 and store.candidates.count_documents({}) == 0  # nothing ran
