"""Store connection: mongomock, unreachable/unknown URIs, and the embedded nx-27017 server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest
from pymongo.errors import DuplicateKeyError

from core.errors import StoreUnavailableError
from store import connection
from store.connection import connect, redact_uri
from store.embedded import (
    EmbeddedServerInfo,
    embedded_server_status,
    ensure_embedded_server,
    stop_embedded_server,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own data home and an empty client cache."""
    monkeypatch.setenv("BATTERY_DISCOVERY_HOME", str(tmp_path))
    connection.close_all()
    yield tmp_path
    connection.close_all()


def _server_pids(home: Path) -> list[int]:
    """Pids of live processes whose command line mentions ``home`` (our servers)."""
    needle = str(home).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in cmdline and b"nx_27017" in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.fixture()
def store_home(tmp_path: Path) -> Iterator[Path]:
    """The embedded server's data dir; every server started there is stopped afterwards."""
    home = tmp_path / "store"
    yield home
    stop_embedded_server(home)
    for pid in _server_pids(home):  # safety net: never leave an orphan server behind
        os.kill(pid, signal.SIGKILL)
    assert _server_pids(home) == []


def _subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, BATTERY_DISCOVERY_HOME=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


# ------------------------------------------------------------------------------------------ fast tests


def test_mongomock_round_trip_shares_data_per_uri() -> None:
    db = connect("mongomock://unit", "bd_test")
    db.items.insert_one({"_id": "a", "e_form": -1.25})
    db.items.create_index("e_form")

    again = connect("mongomock://unit", "bd_test")
    assert again.items.find_one({"_id": "a"}) == {"_id": "a", "e_form": -1.25}
    assert connect("mongomock://other", "bd_test").items.count_documents({}) == 0


def test_unreachable_mongodb_fails_fast_with_one_redacted_line() -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        connect("mongodb://alice:s3cret@127.0.0.1:1/", timeout_ms=300)
    elapsed = time.monotonic() - start

    message = str(info.value)
    assert elapsed < 5.0
    assert "\n" not in message
    assert "s3cret" not in message
    assert message.startswith("cannot reach MongoDB at mongodb://alice:***@127.0.0.1:1/: ")
    assert len(message) < 400


@pytest.mark.parametrize("uri", ["postgres://localhost/db", "embeded", ""])
def test_unknown_scheme_raises(uri: str) -> None:
    with pytest.raises(StoreUnavailableError, match="unknown store URI scheme"):
        connect(uri)


def test_redact_uri() -> None:
    assert redact_uri("mongodb+srv://u:p%40ss@host.example/db") == "mongodb+srv://u:***@host.example/db"
    assert redact_uri("mongodb://host:27017/") == "mongodb://host:27017/"
    # passwords holding '/', ':' or an unescaped '@' are redacted whole
    assert redact_uri("mongodb://u:se/cr:et@host:27017/db") == "mongodb://u:***@host:27017/db"
    assert redact_uri("mongodb://u:se@cret@host/db?authSource=admin") == "mongodb://u:***@host/db?authSource=admin"


def test_status_is_none_without_server(store_home: Path) -> None:
    assert embedded_server_status(store_home) is None
    assert stop_embedded_server(store_home) is False


# ------------------------------------------------------------------------------------ embedded server


@pytest.mark.slow
def test_embedded_server_lifecycle(store_home: Path, tmp_path: Path) -> None:
    t0 = time.monotonic()
    info = ensure_embedded_server(store_home)
    start_s = time.monotonic() - t0
    assert start_s < 30.0
    assert info.host == "127.0.0.1" and info.port > 0
    assert info.uri == f"mongodb://127.0.0.1:{info.port}/"
    state = json.loads((store_home / "server.json").read_text())
    assert EmbeddedServerInfo.from_json(state) == info
    assert embedded_server_status(store_home) == info

    pymongo.MongoClient(info.uri, serverSelectionTimeoutMS=3000)["perm"]["x"].insert_one({"a": 1})
    ensure_embedded_server(store_home)  # reusing the server checks permissions again
    loose = [p for p in [store_home, *store_home.rglob("*")] if p.stat().st_mode & 0o077]
    assert loose == [], f"readable by others: {loose}"  # the data has no other protection

    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(info.uri, serverSelectionTimeoutMS=3000)
    try:
        coll = client["bd_test"]["candidates"]
        chems = ["Na", "Li", "Na", "Li", "Na"]
        docs = [{"_id": f"c{i}", "formula": f"Li{i}O", "chem": c, "e": -0.5 * i} for i, c in enumerate(chems)]
        coll.insert_many(docs)
        coll.create_index("formula", unique=True)
        with pytest.raises(DuplicateKeyError):
            coll.insert_one({"_id": "dup", "formula": "Li1O"})
        new = {"formula": "Na9O", "chem": "Na", "e": -3.0}
        res = coll.update_one({"_id": "c9"}, {"$set": new}, upsert=True)
        assert res.upserted_id == "c9"
        coll.update_one({"_id": "c9"}, {"$set": {"e": -4.5}}, upsert=True)
        assert coll.find_one({"_id": "c9"}) == {"_id": "c9", "formula": "Na9O", "chem": "Na", "e": -4.5}
        assert [d["_id"] for d in coll.find({"e": {"$lt": -1.2}}).sort("e", 1).limit(2)] == ["c9", "c4"]
        group = {"$group": {"_id": "$chem", "n": {"$sum": 1}, "best": {"$min": "$e"}}}
        groups = list(coll.aggregate([group, {"$sort": {"_id": 1}}]))
        assert groups == [{"_id": "Li", "n": 2, "best": -1.5}, {"_id": "Na", "n": 4, "best": -4.5}]

        again = ensure_embedded_server(store_home)
        assert (again.port, again.pid) == (info.port, info.pid)

        # another process (connect("embedded") via BATTERY_DISCOVERY_HOME) sees the same data
        code = (
            "from store.connection import connect\n"
            "db = connect('embedded', 'bd_test')\n"
            "print(db.candidates.count_documents({}), db.candidates.find_one({'_id': 'c9'})['e'])\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=_subprocess_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert out.stdout.split() == ["6", "-4.5"]
    finally:
        client.close()

    assert stop_embedded_server(store_home) is True
    assert embedded_server_status(store_home) is None
    assert not (store_home / "server.json").exists()
    assert _server_pids(store_home) == []

    # a fresh server (new pid) on the same data dir still has the data
    restarted = ensure_embedded_server(store_home)
    assert restarted.pid != info.pid
    db = connect(restarted.uri, "bd_test")
    assert db.candidates.count_documents({}) == 6
    assert db.candidates.find_one({"_id": "c9"}, {"_id": 0, "e": 1}) == {"e": -4.5}
    with pytest.raises(DuplicateKeyError):  # the unique index survived too
        db.candidates.insert_one({"_id": "dup", "formula": "Li1O"})


@pytest.mark.slow
def test_embedded_replaces_stale_state(store_home: Path) -> None:
    store_home.mkdir(parents=True)
    dead = {"host": "127.0.0.1", "port": 1, "pid": 2**22 + 12345, "db_path": str(store_home / "data")}
    (store_home / "server.json").write_text(json.dumps(dead))
    assert embedded_server_status(store_home) is None
    info = ensure_embedded_server(store_home)
    assert info.port != 1
    assert embedded_server_status(store_home) == info


@pytest.mark.slow
def test_a_server_of_ours_killed_starts_again_on_its_port(store_home: Path) -> None:
    """Killed with SIGKILL by anyone, our server is a zombie until reaped; starting it again on its port must not
    take that zombie for a live server (nx-27017 checks its pid file)."""
    from store.embedded import _launch, _zombie

    info = ensure_embedded_server(store_home)
    connect("embedded", "k")["docs"].insert_one({"_id": 1})
    os.kill(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not _zombie(info.pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # dead, not reaped: a zombie
    back = _launch(store_home, info.port, 30)
    assert back is not None, (store_home / "server.log").read_text()[-2000:]
    assert back.port == info.port and back.pid != info.pid
    connection.close_all()
    with pymongo.MongoClient(back.uri, serverSelectionTimeoutMS=5000) as client:
        assert client["k"]["docs"].find_one({"_id": 1}) == {"_id": 1}  # on its data
    os.kill(back.pid, signal.SIGTERM)


@pytest.mark.slow
def test_concurrent_ensure_starts_exactly_one_server(store_home: Path, tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from store.embedded import ensure_embedded_server\n"
        "print(json.dumps(ensure_embedded_server(Path(sys.argv[1])).to_json()))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(store_home)],
            env=_subprocess_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        results.append(json.loads(out))

    assert len({(r["pid"], r["port"]) for r in results}) == 1
    assert _server_pids(store_home) == [results[0]["pid"]]
    # the server outlives the processes that started it
    status = embedded_server_status(store_home)
    assert status is not None and status.pid == results[0]["pid"]


def test_env_uri_keeps_the_password_out_of_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    from store.connection import has_password, resolve_uri

    monkeypatch.setenv("BD_TEST_URI", "mongomock://env-uri")
    assert resolve_uri("env:BD_TEST_URI") == "mongomock://env-uri"
    db = connect("env:BD_TEST_URI", "bd_test")
    db.items.insert_one({"x": 1})
    assert connect("mongomock://env-uri", "bd_test").items.count_documents({}) == 1
    monkeypatch.delenv("BD_TEST_URI")
    with pytest.raises(StoreUnavailableError, match="BD_TEST_URI is not set"):
        connect("env:BD_TEST_URI", "bd_test")
    assert has_password("mongodb://u:p@h/") and not has_password("mongodb://h/") and not has_password("embedded")


def test_round_documents_never_hold_a_password() -> None:
    from types import SimpleNamespace

    from loop.stages.bookkeeping import begin_round
    from store import open_store

    store = open_store("mongomock://round-redact", "t")
    ctx = SimpleNamespace(store=store, campaign="c", round_index=0)
    doc = begin_round(ctx, {"store_uri": "mongodb://me:pa/ss@db.example:27017/x", "rounds": 1})  # type: ignore[arg-type]
    assert doc.config["store_uri"] == "mongodb://me:***@db.example:27017/x"
    assert "pa/ss" not in str(store.rounds.find_one({"_id": "c:0"}))


@pytest.mark.slow
def test_embedded_server_stops_when_idle(store_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With BATTERY_DISCOVERY_STORE_IDLE_S=1 the server outlives a connected client, then stops once none is left."""
    from store.embedded import running_servers

    monkeypatch.setenv("BATTERY_DISCOVERY_STORE_IDLE_S", "1")
    info = ensure_embedded_server(store_home)
    assert any(s["pid"] == str(info.pid) for s in running_servers())
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(info.uri, serverSelectionTimeoutMS=3000)
    client.admin.command("ping")
    time.sleep(2.5)  # idle period passed, but a client is connected
    assert embedded_server_status(store_home) == info
    client.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _server_pids(store_home):
        time.sleep(0.2)
    assert _server_pids(store_home) == []
    again = ensure_embedded_server(store_home)  # the next user starts it again, data kept
    assert again.pid != info.pid


@pytest.mark.slow
def test_credentials_against_the_embedded_store_are_one_redacted_line(store_home: Path) -> None:
    info = ensure_embedded_server(store_home)
    escaped = f"mongodb://me:s3cr%2Fet@127.0.0.1:{info.port}/"
    with pytest.raises(StoreUnavailableError, match="cannot log in") as err:
        connect(escaped, "bd_test", timeout_ms=2000)
    assert "s3cr" not in str(err.value) and "\n" not in str(err.value)
    unescaped = f"mongodb://me:s3cr/et@127.0.0.1:{info.port}/"  # not a valid URI: still one redacted line
    with pytest.raises(StoreUnavailableError) as err:
        connect(unescaped, "bd_test", timeout_ms=2000)
    assert "s3cr" not in str(err.value) and "\n" not in str(err.value)
