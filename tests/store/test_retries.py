"""A lost connection is retried with backoff and a reconnect, for a bounded time; then one clear error."""

from __future__ import annotations

from typing import Any

import mongomock
import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from core.errors import ConfigError, StoreUnavailableError
from store.documents import RoundDoc
from store.repository import CandidateStore, retry_budget_s


class FlakyCollection:
    """A collection whose first ``failures`` calls of ``replace_one``/``insert_one`` raise ``error``."""

    def __init__(self, real: Any, failures: int, error: Exception) -> None:
        self.real, self.failures, self.error, self.calls = real, failures, error, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name not in ("replace_one", "insert_one"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.failures > 0:
                self.failures -= 1
                raise self.error
            return attr(*args, **kwargs)

        return call


class FlakyStore(CandidateStore):
    """A store whose ``rounds`` collection fails first; a reconnect keeps that collection (counting reconnects)."""

    def __init__(self, failures: int, error: Exception) -> None:
        db = mongomock.MongoClient()["retries"]
        self.flaky = FlakyCollection(db["rounds"], failures, error)
        self.reopened = 0
        super().__init__(db, reopen=self._again)

    def _again(self) -> Any:
        self.reopened += 1
        return self.db

    def _bind(self, db: Any) -> None:
        super()._bind(db)
        self.rounds = self.flaky  # type: ignore[assignment]


def test_lost_connection_is_retried_with_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATTERY_DISCOVERY_STORE_RETRY_S", "10")
    monkeypatch.setattr("store.repository.time.sleep", lambda s: None)
    store = FlakyStore(2, AutoReconnect("connection refused"))
    store.save_round(RoundDoc(_id="c:0", campaign="c", round=0))
    assert store.flaky.calls == 2 + 2 and store.reopened == 2  # two lost, then replace_one (no match) + insert_one
    assert store.rounds.count_documents({}) == 1  # written once, after the store came back


def test_retries_stop_at_the_budget_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATTERY_DISCOVERY_STORE_RETRY_S", "2")
    clock = {"t": 0.0}
    monkeypatch.setattr("store.repository.time.monotonic", lambda: clock["t"])
    monkeypatch.setattr("store.repository.time.sleep", lambda s: clock.__setitem__("t", clock["t"] + s))
    store = FlakyStore(10**6, AutoReconnect("localhost:1: [Errno 111] Connection refused, Timeout: 5s, Topology"))
    with pytest.raises(StoreUnavailableError) as info:
        store.save_round(RoundDoc(_id="c:0", campaign="c", round=0))
    message = str(info.value)
    assert "\n" not in message and "Timeout" not in message and "save_round" in message and "3 attempts" in message
    assert store.flaky.calls == 3 and clock["t"] == pytest.approx(1.5)  # waits 0.5 + 1 s; a 2 s wait would pass 2 s


def test_other_database_errors_are_not_retried() -> None:
    store = FlakyStore(1, OperationFailure("not authorized"))
    with pytest.raises(StoreUnavailableError, match="store error in save_round: not authorized"):
        store.save_round(RoundDoc(_id="c:0", campaign="c", round=0))
    assert store.flaky.calls == 1 and store.reopened == 0


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_bad_retry_budget_is_a_config_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("BATTERY_DISCOVERY_STORE_RETRY_S", value)
    with pytest.raises(ConfigError, match="BATTERY_DISCOVERY_STORE_RETRY_S"):
        retry_budget_s()


def test_open_store_retries_a_store_it_reached_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store reached before and gone now is retried (a lost connection); one never reached fails at once."""
    import store as store_pkg

    monkeypatch.setenv("BATTERY_DISCOVERY_STORE_RETRY_S", "10")
    monkeypatch.setattr("store.repository.time.sleep", lambda s: None)
    attempts: list[int] = []
    db = mongomock.MongoClient()["opened"]

    def connect(uri: str, database: str, *, timeout_ms: int = 5000) -> Any:
        attempts.append(1)
        if len(attempts) in (2, 3):  # the server went away after the first connection, back at the fourth
            raise StoreUnavailableError("cannot reach MongoDB at mongodb://h:1/: connection refused")
        return db

    monkeypatch.setattr(store_pkg, "connect", connect)
    monkeypatch.setattr(store_pkg, "_OPENED", set())
    store_pkg.open_store("mongodb://h:1/", "opened")
    store_pkg.open_store("mongodb://h:1/", "opened")  # lost twice, retried, reached
    assert len(attempts) == 4

    def never(uri: str, database: str, *, timeout_ms: int = 5000) -> Any:
        attempts.append(1)
        raise StoreUnavailableError("cannot reach MongoDB at mongodb://typo:1/: connection refused")

    monkeypatch.setattr(store_pkg, "connect", never)
    with pytest.raises(StoreUnavailableError, match="cannot reach MongoDB at mongodb://typo"):
        store_pkg.open_store("mongodb://typo:1/", "opened")
    assert len(attempts) == 5  # not retried
    monkeypatch.setenv("BATTERY_DISCOVERY_STORE_RETRY_S", "0")
    with pytest.raises(StoreUnavailableError, match="store connection lost in open_store: cannot reach"):
        store_pkg.open_store("mongodb://h:1/", "opened")  # reached before; no budget: one attempt, one line
