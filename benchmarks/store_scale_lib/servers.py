"""The servers benchmarks/store_scale.py measures: the embedded nx-27017, a secantusdb daemon, or any URI."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server this benchmark measures: its URI, and how to stop it if it was started here."""

    def __init__(self, name: str, uri: str, stop: Callable[[], None] | None = None) -> None:
        self.name, self.uri, self._stop = name, uri, stop

    def stop(self) -> None:
        """Stop the server if this benchmark started it (data kept)."""
        if self._stop is not None:
            self._stop()


def start_nx(home: Path) -> Server:
    """The project's embedded server (nx-27017) for data home ``home``, started by ``store.embedded``."""
    from store.embedded import ensure_embedded_server, stop_embedded_server

    info = ensure_embedded_server(home)
    return Server("nx-27017", info.uri, lambda: stop_embedded_server(home))


def start_secantus(home: Path) -> Server:
    """A secantusdb daemon (WiredTiger) on data folder ``home``, started here; needs ``secantusdb`` installed."""
    try:
        import secantus  # noqa: F401
    except ImportError:
        raise SystemExit("secantusdb is not installed: .venv/bin/pip install secantusdb==0.7.0b3") from None
    import pymongo

    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    cmd = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--storage-path", str(home / "data"), "--log-level", "WARNING"]
    log = open(home / "server.log", "ab")  # noqa: SIM115 (closed by stop)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"secantusdb exited with {proc.returncode}; see {home / 'server.log'}")
        try:
            with pymongo.MongoClient(uri, serverSelectionTimeoutMS=500, directConnection=True) as client:
                client.admin.command("ping")
            break
        except pymongo.errors.PyMongoError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("secantusdb did not answer within 120 s") from None
            time.sleep(0.2)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    return Server("secantusdb", uri, stop)
