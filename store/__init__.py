"""MongoDB store: the embedded server, connections, documents and the repository."""

from core.errors import StoreUnavailableError
from store.connection import EMBEDDED, connect
from store.repository import CandidateStore, retrying

_INDEXED: set[tuple[int, str]] = set()  # (client id, database) whose indexes were ensured
_OPENED: set[tuple[str, str]] = set()  # (uri, database) this process has reached before


def open_store(uri: str = EMBEDDED, database: str = "battery_discovery", *, timeout_ms: int = 5000) -> CandidateStore:
    """Connect and return the repository with its indexes in place (ensured once per client).

    Cheap to call per task: ``connect`` caches clients per process and re-finds an embedded server
    that restarted on another port. A store this process reached before and cannot reach now (a lost connection,
    not a typo in the URI) is retried as any other store call (``BATTERY_DISCOVERY_STORE_RETRY_S``); a store never
    reached fails at once.
    """
    if (uri, database) in _OPENED:
        db = retrying(
            "open_store", lambda: connect(uri, database, timeout_ms=timeout_ms), lost=(StoreUnavailableError,)
        )
    else:
        db = connect(uri, database, timeout_ms=timeout_ms)
        _OPENED.add((uri, database))
    store = CandidateStore(db, reopen=lambda: connect(uri, database, timeout_ms=timeout_ms))
    key = (id(db.client), database)
    if key not in _INDEXED:
        store.ensure_indexes()
        _INDEXED.add(key)
    return store


__all__ = ["EMBEDDED", "CandidateStore", "connect", "open_store"]
