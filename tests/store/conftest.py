"""Store backends for the store tests: mongomock, the embedded nx-27017 server, and a real MongoDB when
``BATTERY_DISCOVERY_TEST_MONGO_URI`` is set.

- ``db`` (parametrize it indirectly with :func:`backend_params`): an empty database on one backend, dropped after
  the test.
- The embedded server is the project's own (``store.embedded``), started once per session in a temporary data home
  (about 0.3 s) and stopped at the end.
- ``test_repository.py`` and ``test_browse.py`` run on every backend too: their ``store`` fixtures call
  ``open_store("mongomock://...", name)``, which the autouse ``store_backend`` fixture points at a fresh database of
  the server for the ``nx-27017`` and ``mongodb`` runs (those are marked ``slow``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
from pymongo.database import Database

MONGO_URI_ENV = "BATTERY_DISCOVERY_TEST_MONGO_URI"
MOCK, EMBEDDED, MONGODB = "mongomock", "nx-27017", "mongodb"
BACKENDS = (MOCK, EMBEDDED, MONGODB)
#: Test modules whose ``open_store("mongomock://...")`` fixtures also run on the servers.
ALSO_EMBEDDED = ("test_repository", "test_browse")

_names = itertools.count()


def backend_params(**deviations: str) -> list[Any]:
    """The backends as ``pytest.param``s for an indirect ``db`` (or ``store_backend``) parametrization.

    ``deviations``: backend name (``nx_27017``, ``mongomock``, ``mongodb``) -> why that backend is known to differ
    from MongoDB here; that case is marked ``xfail(strict=True)``, so it fails the day the backend is fixed.
    Servers are ``slow``; ``mongodb`` is skipped unless ``BATTERY_DISCOVERY_TEST_MONGO_URI`` is set.
    """
    known = {k.replace("_", "-"): v for k, v in deviations.items()}
    unknown = set(known) - set(BACKENDS)
    if unknown:
        raise ValueError(f"unknown backends {sorted(unknown)}; use {BACKENDS}")
    params = []
    for name in BACKENDS:
        marks: list[Any] = []
        if name != MOCK:
            marks.append(pytest.mark.slow)
        if name == MONGODB:
            marks.append(pytest.mark.skipif(not os.environ.get(MONGO_URI_ENV), reason=f"{MONGO_URI_ENV} is not set"))
        if name in known:
            marks.append(pytest.mark.xfail(strict=True, reason=f"{name} deviates: {known[name]}"))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(scope="session")
def embedded_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of an nx-27017 server started by ``store.embedded`` in a temporary data home (session-wide)."""
    from store.embedded import ensure_embedded_server, stop_embedded_server

    home = Path(tmp_path_factory.mktemp("store-contract-home"))
    info = ensure_embedded_server(home)
    yield info.uri
    stop_embedded_server(home)


def server_uri(request: pytest.FixtureRequest, backend: str) -> str:
    """The URI of ``backend`` (a server): the session's embedded server or ``$BATTERY_DISCOVERY_TEST_MONGO_URI``."""
    if backend == EMBEDDED:
        return str(request.getfixturevalue("embedded_uri"))
    uri = os.environ.get(MONGO_URI_ENV, "")
    if not uri:
        pytest.skip(f"{MONGO_URI_ENV} is not set")
    return uri


def fresh_name(prefix: str = "contract") -> str:
    """A database name no other test of this session uses."""
    return f"{prefix}_{os.getpid()}_{next(_names)}"


@pytest.fixture
def db(request: pytest.FixtureRequest) -> Iterator[Database[dict[str, Any]]]:
    """An empty database on the backend named by the indirect parameter (default mongomock), dropped afterwards."""
    backend = getattr(request, "param", MOCK)
    name = fresh_name()
    if backend == MOCK:
        import mongomock

        client: Any = mongomock.MongoClient()
    else:
        client = pymongo.MongoClient(server_uri(request, backend), serverSelectionTimeoutMS=10_000)
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the modules of :data:`ALSO_EMBEDDED` on every backend (a real MongoDB only when its URI is set)."""
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module in ALSO_EMBEDDED and "store_backend" in metafunc.fixturenames:
        metafunc.parametrize("store_backend", backend_params(), indirect=True)


@pytest.fixture(autouse=True)
def _fresh_browse_projection(monkeypatch: pytest.MonkeyPatch) -> None:
    """mongomock adds ``'_id': 1`` to the projection dict it is given, in place, and ``store.browse`` keeps its
    projection in a module constant: without a fresh copy per test, a later test on a server would send the mutated
    projection (which nx-27017 reads as "only the _id", see the contract)."""
    from store import browse

    monkeypatch.setattr(browse, "_PROJECTION", {k: v for k, v in browse._PROJECTION.items() if k != "_id"})


@pytest.fixture(autouse=True)
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The backend of this test (mongomock unless parametrized): on a server, the module's ``open_store`` of a
    ``mongomock://`` URI opens a fresh database of that server instead (dropped afterwards)."""
    backend = getattr(request, "param", MOCK)
    if backend == MOCK:
        yield backend
        return
    import store as store_package

    uri = server_uri(request, backend)
    opened: list[str] = []

    def open_on_server(where: str = "embedded", database: str = "battery_discovery", **kwargs: Any) -> Any:
        if not where.startswith("mongomock://"):
            return store_package.open_store(where, database, **kwargs)
        opened.append(fresh_name(database))
        return store_package.open_store(uri, opened[-1], **kwargs)

    monkeypatch.setattr(request.module, "open_store", open_on_server)
    yield backend
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
        for name in opened:
            client.drop_database(name)
