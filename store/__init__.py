"""MongoDB store: the embedded server, connections, documents and the repository."""

from store.connection import EMBEDDED, connect
from store.repository import CandidateStore


def open_store(uri: str = EMBEDDED, database: str = "battery_discovery") -> CandidateStore:
    """Connect and return the repository with its indexes in place."""
    store = CandidateStore(connect(uri, database))
    store.ensure_indexes()
    return store


__all__ = ["EMBEDDED", "CandidateStore", "connect", "open_store"]
