"""A store URI with a password, end to end: ``battery-discovery run`` against a MongoDB server that requires
SCRAM-SHA-256 authentication (a SecantusDB server, run as a separate process), then the dashboard over it.
The password appears nowhere: not in the output, the store's documents, the Prefect database, any file of the data
home, nor the dashboard's pages.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pymongo
import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.faults]
REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "alice", "s3cr/t:p@ss-Zq7"
# pieces of six characters or more: a shorter one turns up by chance in the bytes of a pickled forest or a database
NEEDLES = (PASSWORD, quote(PASSWORD, safe=""), "s3cr/t", "s3cr%2Ft", "p@ss-Zq7", "ss-Zq7")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(port: int, storage: Path, *auth: str) -> subprocess.Popen[bytes]:
    exe = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    cmd = [exe, "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(storage), "--log-level", "ERROR"]
    proc = subprocess.Popen([*cmd, *auth], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("secantusd-py did not start")


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[str]:
    """A MongoDB server with authentication on, user ``alice``; yields the credentialed URI."""
    if not (shutil.which("secantusd-py") or Path(sys.executable).with_name("secantusd-py").exists()):
        pytest.fail("secantusdb (a dev dependency) is not installed: make setup installs it")
    port, storage = _free_port(), tmp_path / "secantus"
    proc = _start(port, storage)
    with pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=10000) as client:
        client.admin.command("createUser", USER, pwd=PASSWORD, roles=["root"])
    proc.terminate()
    proc.wait(timeout=30)
    proc = _start(port, storage, "--auth")
    try:
        anonymous = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=5000)
        with anonymous, pytest.raises(pymongo.errors.OperationFailure):  # authentication is really required
            anonymous["x"].list_collection_names()
        yield f"mongodb://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/?authSource=admin"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _leaks(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


def test_password_appears_nowhere(auth_server: str, tmp_path: Path, session_home: Path) -> None:
    prefect_home = tmp_path / "prefect"
    env = {
        **os.environ,
        "BATTERY_DISCOVERY_HOME": str(session_home),
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_API_URL": "",
    }
    config = tmp_path / "secret.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "campaign": "secret",
                "rounds": 1,
                "batch_size": 2,
                "candidates_per_round": 6,
                "seeds": ["pymatgen:Li2O", "pymatgen:Li2O2"],
                "properties": [],
                "surrogate": {"n_members": 2, "epochs": 3, "num_threads": 1},
                "oracle": {
                    "relax": {"fmax": 0.1, "max_steps": 60},
                    "completion": {"max_structures": 0},
                },  # orchestration, not the hull: completion is tested in tests/oracle and tests/loop
                "database": "secret_db",
            }
        )
    )
    cmd = [sys.executable, "-m", "battery_discovery.cli", "run", "-c", str(config), "--store-uri", auth_server]
    run = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert not _leaks(run.stdout + run.stderr)

    # the store: every document of every collection of the campaign's database
    with pymongo.MongoClient(auth_server.replace("%2F", "%2f"), serverSelectionTimeoutMS=5000) as client:
        db = client["secret_db"]
        assert db["rounds"].count_documents({"campaign": "secret", "status": "completed"}) == 2
        for name in db.list_collection_names():
            for doc in db[name].find():
                assert not _leaks(repr(doc)), (name, doc.get("_id"))

    # the Prefect database (flow run parameters, logs, artifacts) and every file of the data home
    files = [p for root in (prefect_home, session_home) for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in prefect_home.rglob("*"))
    for path in files:
        data = path.read_bytes()
        assert not any(n.encode() in data for n in NEEDLES), path

    # the dashboard over the same store
    port = _free_port()
    dash = subprocess.Popen(
        [sys.executable, "-m", "battery_discovery.cli", "dashboard", "--port", str(port), "--store-uri", auth_server,
         "--database", "secret_db"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        pages = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not pages:
            try:
                for path in ("/", "/_dash-layout", "/candidates"):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                        pages.append(response.read().decode())
            except OSError:
                pages = []
                time.sleep(0.5)
        assert pages, "the dashboard did not answer"
        assert "127.0.0.1" in pages[1]  # the layout names the store, redacted
        assert not any(_leaks(p) for p in pages)
    finally:
        dash.terminate()
        out = dash.communicate(timeout=30)[0].decode()
    assert not _leaks(out)
