"""One run per campaign at a time: a lease in the store with a heartbeat, taken over when it expires.

Two runs of one campaign would relax the same candidates and train into the same model folder. The first run takes
the campaign's lease (``leases`` collection, ``_id = 'campaign:<name>'``); a heartbeat thread extends it every
``ttl_s / 4`` seconds. A second run finds a live lease and stops with a message naming the holder; once the holder
has died (no heartbeat for ``ttl_s``, or at once when it ran on this host and its process is gone, as after a
``kill -9``), the next run takes the lease over. Every change is a single-document
compare-and-set (``update_one`` filtered on the owner and expiry seen), so two takers never both win. Times are
epoch seconds (numbers: the embedded server's ``$set`` mangles datetimes).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from types import TracebackType
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from core.errors import ConfigError
from store.repository import CandidateStore

DEFAULT_TTL_S = 120.0


class CampaignBusyError(ConfigError):
    """Another live run holds the campaign."""


def _dead_here(owner: str) -> bool:
    """Whether the lease's owner ran on this host in a process that no longer exists (killed: take over now)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class CampaignLease:
    """``with CampaignLease(store, campaign): ...`` holds the campaign for the block (and renews it meanwhile)."""

    def __init__(self, store: CandidateStore, campaign: str, *, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.store = store
        self.campaign, self.ttl_s = campaign, float(ttl_s)
        self.key = f"campaign:{campaign}"
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False  # set when a renewal found the lease taken by another run

    @property
    def collection(self) -> Collection:
        """The ``leases`` collection of the store's current connection (it may reconnect to a restarted server)."""
        return self.store.db["leases"]

    def _doc(self, now: float) -> dict[str, Any]:
        return {"owner": self.owner, "expires_at": now + self.ttl_s, "renewed_at": now, "campaign": self.campaign}

    def check(self) -> None:
        """Raise CampaignBusyError when another live run holds the campaign (takes nothing: a pre-flight check, so a
        command can refuse before it starts an orchestrator)."""
        held = self.collection.find_one({"_id": self.key})
        if held is not None:
            self._refuse_if_live(held, time.time())

    def _refuse_if_live(self, held: dict[str, Any], now: float) -> None:
        expires = float(held.get("expires_at") or 0.0)
        if held.get("owner") != self.owner and expires > now and not _dead_here(str(held.get("owner", ""))):
            raise CampaignBusyError(
                f"campaign {self.campaign!r} is being run by {held.get('owner')} (last heartbeat "
                f"{now - float(held.get('renewed_at') or now):.0f} s ago): wait for it to finish, or for "
                f"{expires - now:.0f} s after it stopped, then re-run to resume"
            )

    def acquire(self) -> None:
        """Take the lease, or raise CampaignBusyError naming the live holder."""
        now = time.time()
        try:
            self.collection.insert_one({"_id": self.key, **self._doc(now)})
            return
        except DuplicateKeyError:
            pass
        held = self.collection.find_one({"_id": self.key}) or {}
        if held.get("owner") == self.owner:
            return
        self._refuse_if_live(held, now)
        # expired: take it over, unless another run did so first
        taken = self.collection.update_one(
            {"_id": self.key, "owner": held.get("owner"), "expires_at": held.get("expires_at")},
            {"$set": self._doc(now)},
        )
        if taken.matched_count != 1:
            raise CampaignBusyError(f"campaign {self.campaign!r}: another run took over its lease just now")

    def renew(self) -> bool:
        """Extend the lease; False (and ``lost``) when another run holds it now."""
        result = self.collection.update_one({"_id": self.key, "owner": self.owner}, {"$set": self._doc(time.time())})
        if result.matched_count != 1:
            self.lost = True
        return not self.lost

    def release(self) -> None:
        """Give the lease back (only ours). A connection lost since the last heartbeat (an embedded server that
        restarted, perhaps on another port) is opened again once before giving up."""
        try:
            self.collection.delete_one({"_id": self.key, "owner": self.owner})
        except PyMongoError:
            self.store.reconnect()
            self.collection.delete_one({"_id": self.key, "owner": self.owner})

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                if not self.renew():
                    return
            except Exception:  # the store is away: reconnect, try at the next beat (the lease may expire meanwhile)
                self.store.reconnect()

    def __enter__(self) -> CampaignLease:
        self.acquire()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.campaign}", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):  # the store is away: the lease expires by itself
            self.release()
