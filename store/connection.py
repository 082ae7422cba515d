"""Open the MongoDB database the project stores everything in.

``connect("embedded")`` (the default) starts/reuses the embedded nx-27017 server under the data home;
``connect("mongodb://...")`` talks to a real MongoDB; ``connect("mongomock://")`` gives an in-process
mongomock database (unit tests only).
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

import pymongo
from pymongo.database import Database
from pymongo.errors import PyMongoError

from core.errors import ConfigError, StoreUnavailableError
from store.embedded import ensure_embedded_server

EMBEDDED = "embedded"
DEFAULT_DATABASE = "battery_discovery"
MONGOMOCK_SCHEME = "mongomock://"
_MAX_REASON_CHARS = 200

_lock = threading.Lock()
# MongoClients keyed by (pid, uri): a client created before fork() is not reused in the child.
_clients: dict[tuple[int, str], pymongo.MongoClient[dict[str, Any]]] = {}
# mongomock clients keyed by uri: one shared in-memory "server" per uri per process.
_mock_clients: dict[str, Any] = {}

# the password runs to the last '@' of the URI: passwords with '/', ':' or '@' in them are redacted whole
_PASSWORD_RE = re.compile(r"^(?P<scheme>mongodb(?:\+srv)?://)(?P<user>[^:@/]*):(?P<password>.*)@(?P<rest>[^@]*)$", re.S)


def redact_uri(uri: str) -> str:
    """``uri`` with the password (if any) replaced by ``***``."""
    return _PASSWORD_RE.sub(lambda m: f"{m['scheme']}{m['user']}:***@{m['rest']}", uri, count=1)


def _short_reason(exc: BaseException, uri: str) -> str:
    """First line of a pymongo error, without the topology dump, at most ~200 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.split(", Timeout:")[0].split(", Topology Description:")[0]
    text = text.replace(uri, redact_uri(uri))
    if len(text) > _MAX_REASON_CHARS:
        text = text[: _MAX_REASON_CHARS - 3] + "..."
    return f"{type(exc).__name__}: {text}"


def _unreachable(uri: str, exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(f"cannot reach MongoDB at {redact_uri(uri)}: {_short_reason(exc, uri)}")


def _mongo_client(uri: str, timeout_ms: int, *, ping: bool = True) -> pymongo.MongoClient[dict[str, Any]]:
    """A cached MongoClient for ``uri``, pinged (if ``ping``); raises StoreUnavailableError if unreachable."""
    key = (os.getpid(), uri)
    with _lock:
        client = _clients.get(key)
    fresh = client is None
    if client is None:
        try:
            client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
        except (PyMongoError, ValueError) as exc:  # malformed URI (a password with '/' unescaped), no dnspython, ...
            raise _unreachable(uri, exc) from None
    if ping or fresh:
        try:
            client.admin.command("ping")
        except PyMongoError as exc:
            if fresh:
                client.close()
            raise _unreachable(uri, exc) from None
        except (KeyError, TypeError, ValueError) as exc:  # pymongo's SCRAM handshake against a server without auth
            if fresh:
                client.close()
            raise StoreUnavailableError(
                f"cannot log in to {redact_uri(uri)} ({type(exc).__name__} in the authentication handshake): the "
                "server does not seem to support authentication (the embedded store has none: drop user:password)"
            ) from None
    if not fresh:
        return client
    with _lock:
        existing = _clients.setdefault(key, client)
    if existing is not client:
        client.close()
    return existing


def _mongomock_database(uri: str, database: str) -> Database[dict[str, Any]]:
    try:
        import mongomock
    except ImportError:
        raise StoreUnavailableError(
            "mongomock:// needs the 'mongomock' package (a test dependency: pip install mongomock)"
        ) from None
    with _lock:
        client = _mock_clients.get(uri)
        if client is None:
            client = _mock_clients[uri] = mongomock.MongoClient()
    return client[database]  # type: ignore[no-any-return]


ENV_SCHEME = "env:"
_DATABASE_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")  # as LoopConfig.database: no paths, dots or spaces
#: The variable ``battery-discovery run`` keeps a credentialed URI in (flow parameters then say ``env:<it>``).
URI_VARIABLE = "BATTERY_DISCOVERY_STORE_URI"


def has_password(uri: str) -> bool:
    """Whether ``uri`` carries a password (``mongodb://user:password@...``)."""
    return redact_uri(uri) != uri


def resolve_uri(uri: str) -> str:
    """``env:NAME`` -> the value of environment variable NAME (so a password need not travel as a parameter, nor
    be stored in round documents); any other URI as given. Raises StoreUnavailableError when NAME is unset."""
    uri = uri.strip()
    if not uri.startswith(ENV_SCHEME):
        return uri
    name = uri[len(ENV_SCHEME) :]
    value = os.environ.get(name, "").strip()
    if not value:
        raise StoreUnavailableError(f"store URI {uri!r}: environment variable {name} is not set")
    if value.startswith(ENV_SCHEME):
        raise StoreUnavailableError(f"store URI {uri!r}: {name} holds another env: reference")
    return value


def connect(
    uri: str = EMBEDDED, database: str = DEFAULT_DATABASE, *, timeout_ms: int = 5000
) -> Database[dict[str, Any]]:
    """Open ``database`` on the store at ``uri``.

    ``uri``: ``"embedded"`` (start/reuse the local nx-27017 server), ``mongodb://...`` or
    ``mongodb+srv://...`` (a real MongoDB; pinged within ``timeout_ms`` milliseconds), or
    ``mongomock://<anything>`` (in-process mock; same uri -> same data within one process).
    ``env:NAME`` reads the URI from environment variable NAME (see :func:`resolve_uri`).
    Raises StoreUnavailableError (one line, password redacted) if the store cannot be reached.
    """
    if not _DATABASE_RE.fullmatch(database or ""):
        raise ConfigError(f"database name {database!r}: use 1-63 letters, digits, '_' or '-'")
    uri = resolve_uri(uri)
    if uri == EMBEDDED:
        info = ensure_embedded_server()  # pings the server already
        return _mongo_client(info.uri, timeout_ms, ping=False)[database]
    if uri.startswith(("mongodb://", "mongodb+srv://")):
        return _mongo_client(uri, timeout_ms)[database]
    if uri.startswith(MONGOMOCK_SCHEME):
        return _mongomock_database(uri, database)
    scheme = uri.split("://", 1)[0] + "://" if "://" in uri else repr(redact_uri(uri))
    raise StoreUnavailableError(
        f"unknown store URI scheme {scheme}; use 'embedded', mongodb://..., env:NAME or mongomock://"
    )


def close_clients() -> None:
    """Close every cached MongoClient of this process (a command's exit); mongomock data stays."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


def close_all() -> None:
    """Close every cached MongoClient of this process and forget mongomock data (for tests)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
        _mock_clients.clear()
    for client in clients:
        client.close()
