"""One run per campaign: the store lease refuses a second live run, renews itself, and is taken over when its
holder died. Runs on mongomock and on the embedded server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from store import open_store
from store.connection import close_all
from store.leases import CampaignBusyError, CampaignLease
from store.repository import CandidateStore


@pytest.fixture(params=["mongomock", pytest.param("embedded", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest) -> Iterator[CandidateStore]:
    uri = "mongomock://leases" if request.param == "mongomock" else "embedded"
    s = open_store(uri, "leases_test")
    s.db["leases"].delete_many({})
    yield s
    s.db["leases"].delete_many({})
    if request.param == "mongomock":
        close_all()


def test_a_second_live_run_is_refused(store: CandidateStore) -> None:
    with CampaignLease(store, "c") as first:
        with pytest.raises(CampaignBusyError, match=f"being run by {first.owner}"):
            CampaignLease(store, "c").acquire()
        with CampaignLease(store, "other"):  # another campaign is free
            pass
    with CampaignLease(store, "c"):  # released on exit
        pass
    assert store.db["leases"].count_documents({}) == 0


def test_heartbeat_keeps_it_and_expiry_frees_it(store: CandidateStore) -> None:
    with CampaignLease(store, "c", ttl_s=0.8):
        time.sleep(2.0)  # past the ttl: renewed meanwhile
        with pytest.raises(CampaignBusyError):
            CampaignLease(store, "c").acquire()
    stale = CampaignLease(store, "c", ttl_s=0.3)
    stale.acquire()  # no heartbeat: it expires
    time.sleep(0.5)
    taker = CampaignLease(store, "c")
    taker.acquire()
    assert not stale.renew() and stale.lost  # the old holder learns it lost the lease
    taker.release()


def test_a_killed_holder_on_this_host_is_taken_over_at_once(store: CandidateStore) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owner = f"{socket.gethostname()}:{dead.pid}:deadbeef"
    now = time.time()
    store.db["leases"].insert_one(
        {"_id": "campaign:c", "owner": owner, "expires_at": now + 600, "renewed_at": now, "campaign": "c"}
    )
    lease = CampaignLease(store, "c")
    lease.acquire()
    assert store.db["leases"].find_one({"_id": "campaign:c"})["owner"] == lease.owner
    lease.release()


def test_check_refuses_a_live_holder_and_takes_nothing(store: CandidateStore) -> None:
    CampaignLease(store, "c").check()  # free: nothing raised, nothing written
    assert store.db["leases"].count_documents({}) == 0
    with CampaignLease(store, "c") as first:
        with pytest.raises(CampaignBusyError, match=f"being run by {first.owner}"):
            CampaignLease(store, "c").check()
        first.check()  # its own holder passes
        assert store.db["leases"].find_one({})["owner"] == first.owner


def test_release_after_the_server_moved_reconnects(store: CandidateStore) -> None:
    """The store restarted (on another port) since the last heartbeat: the release reconnects, the lease is gone."""
    from pymongo.errors import AutoReconnect

    live = store.db

    class Gone:  # the old connection: every call fails as a dead server does
        def __getitem__(self, name: str) -> object:
            class Dead:
                def delete_one(self, *a: object, **k: object) -> None:
                    raise AutoReconnect("connection refused")

            return Dead()

    moved = CandidateStore(live, reopen=lambda: live)
    lease = CampaignLease(moved, "c")
    lease.acquire()
    moved.db = Gone()  # type: ignore[assignment]
    lease.release()
    assert store.db["leases"].count_documents({}) == 0
