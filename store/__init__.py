"""MongoDB store: the embedded server, connections, documents and the repository."""

from store.connection import EMBEDDED, connect
from store.repository import CandidateStore

_INDEXED: set[tuple[int, str]] = set()  # (client id, database) whose indexes were ensured


def open_store(uri: str = EMBEDDED, database: str = "battery_discovery", *, timeout_ms: int = 5000) -> CandidateStore:
    """Connect and return the repository with its indexes in place (ensured once per client).

    Cheap to call per task: ``connect`` caches clients per process and re-finds an embedded server
    that restarted on another port.
    """
    db = connect(uri, database, timeout_ms=timeout_ms)
    store = CandidateStore(db, reopen=lambda: connect(uri, database, timeout_ms=timeout_ms))
    key = (id(db.client), database)
    if key not in _INDEXED:
        store.ensure_indexes()
        _INDEXED.add(key)
    return store


__all__ = ["EMBEDDED", "CandidateStore", "connect", "open_store"]
