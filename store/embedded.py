"""An embedded MongoDB-compatible server (nx-27017: MongoDB wire protocol on SQLite).

One server per data directory ``home`` (default ``paths.subdir("store")``), shared by every process
(CLI, Prefect flow runs, dashboard). It runs as a detached process and outlives whoever started it.

Layout of ``home``:

- ``data/<database>.db``  SQLite files, one per logical database (nx-27017 "files" mode)
- ``server.json``         host, port, pid and data path of the running server
- ``server.lock``         ``flock`` that serialises start and stop across processes
- ``server.log``          the server's stdout/stderr (warnings and tracebacks only)
- ``server.pid``          nx-27017's own pid file (kept inside ``home``, not in /tmp)

Starting takes about 0.2 s on an idle machine (measured: 0.16-0.25 s; Python start-up plus imports of
nx-27017/neosqlite); reusing a running server (one ``ping``) about 4 ms; stopping about 0.05 s.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.errors import StoreUnavailableError
from core.validation import env_seconds

HOST = "127.0.0.1"
STATE_FILE = "server.json"
LOCK_FILE = "server.lock"
LOG_FILE = "server.log"
PID_FILE = "server.pid"
DATA_DIR = "data"

PING_TIMEOUT_MS = 1500
BUSY_PING_TIMEOUT_MS = 5000
START_ATTEMPTS = 3
STOP_TIMEOUT_S = 10.0

# Run nx-27017 in the foreground of the child process (the child itself is detached by
# start_new_session). Quiet its loggers, or the log grows without bound: nx_27017 logs every command
# at INFO, neosqlite a WARNING pair for every aggregation that falls back from SQL to Python, and
# asyncio a CancelledError traceback on every SIGTERM. Files are created user-only (umask 077). With
# BD_STORE_IDLE_S > 0 a watchdog thread stops the server once no client has been connected for that long
# (connections counted from /proc/net/tcp*, Linux; elsewhere it never stops by itself).
_LAUNCHER = (
    "import logging, os, signal, sys, threading, time\n"
    "os.umask(0o077)\n"
    "logging.getLogger('nx_27017').setLevel(logging.WARNING)\n"
    "logging.getLogger('neosqlite').setLevel(logging.ERROR)\n"
    "logging.getLogger('asyncio').setLevel(logging.CRITICAL)\n"
    "idle = float(os.environ.get('BD_STORE_IDLE_S') or 0)\n"
    "port = int(sys.argv[sys.argv.index('-p') + 1])\n"
    "def clients():\n"
    "    n = 0\n"
    "    for name in ('/proc/net/tcp', '/proc/net/tcp6'):\n"
    "        try:\n"
    "            rows = open(name).read().splitlines()[1:]\n"
    "        except OSError:\n"
    "            return None\n"
    "        n += sum(1 for r in rows if r.split()[3] == '01' and int(r.split()[1].rsplit(':', 1)[1], 16) == port)\n"
    "    return n\n"
    "def watch():\n"
    "    quiet = time.monotonic()\n"
    "    while True:\n"
    "        time.sleep(max(0.2, min(30.0, idle / 4)))\n"
    "        n = clients()\n"
    "        if n is None:\n"
    "            return\n"
    "        if n:\n"
    "            quiet = time.monotonic()\n"
    "        elif time.monotonic() - quiet > idle:\n"
    "            print(f'idle for {idle:g} s with no client: stopping', flush=True)\n"
    "            os.kill(os.getpid(), signal.SIGTERM)\n"
    "            return\n"
    "if idle > 0:\n"
    "    threading.Thread(target=watch, daemon=True).start()\n"
    "from nx_27017.nx_27017 import main\n"
    "sys.argv = ['nx-27017'] + sys.argv[1:]\n"
    "sys.exit(main())\n"
)
#: Seconds without any client after which the embedded server stops itself (0: never); the next command that needs
#: the store starts it again. Set with BATTERY_DISCOVERY_STORE_IDLE_S.
IDLE_ENV = "BATTERY_DISCOVERY_STORE_IDLE_S"
DEFAULT_IDLE_S = 1800.0


def idle_timeout_s() -> float:
    """The idle period after which the embedded server stops (s; 0 never), from BATTERY_DISCOVERY_STORE_IDLE_S."""
    return env_seconds(IDLE_ENV, DEFAULT_IDLE_S, "0: never stop")


# Popen handles of servers started by this process, so that they can be reaped (no zombies, no
# "subprocess still running" ResourceWarning). Keyed by pid.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _release_children() -> None:
    """At exit: a server still running outlives this process on purpose (it stops when idle), so its handle is
    dropped as detached; else Python warns "subprocess ... is still running" for a child it never waited for."""
    for child in _children.values():
        if child.poll() is None:
            child.returncode = 0  # detached on purpose: nothing for this process to reap
    _children.clear()


atexit.register(_release_children)


@dataclass(frozen=True, kw_only=True)
class EmbeddedServerInfo:
    """Where a running embedded server listens and keeps its data."""

    host: str
    port: int
    pid: int
    db_path: Path

    @property
    def uri(self) -> str:
        """MongoDB connection string, e.g. ``mongodb://127.0.0.1:40123/``."""
        return f"mongodb://{self.host}:{self.port}/"

    def to_json(self) -> dict[str, object]:
        """The ``server.json`` representation."""
        return {"host": self.host, "port": self.port, "pid": self.pid, "db_path": str(self.db_path)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> EmbeddedServerInfo:
        """Parse ``server.json`` content; raises KeyError/TypeError/ValueError if malformed."""
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),  # type: ignore[call-overload]
            pid=int(data["pid"]),  # type: ignore[call-overload]
            db_path=Path(str(data["db_path"])),
        )


# --------------------------------------------------------------------------------------------- helpers


def _home(home: Path | None) -> Path:
    try:
        path = Path(home).expanduser().resolve() if home is not None else paths.subdir("store")
        path.mkdir(parents=True, exist_ok=True)
        _user_only(path)
    except OSError as exc:
        raise StoreUnavailableError(f"cannot use the store directory {home or 'store'}: {exc}") from None
    return path


def _user_only(home: Path) -> None:
    """The store's folder and files are readable by their owner only (the server has no authentication: its files
    are the data)."""
    home.chmod(0o700)
    for path in home.rglob("*"):
        if path.is_symlink():
            continue
        try:
            path.chmod(0o700 if path.is_dir() else 0o600)
        except FileNotFoundError:
            continue  # removed meanwhile, e.g. the pid file of a server that is stopping


@contextlib.contextmanager
def _locked(home: Path, timeout_s: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``home/server.lock`` (waits up to ``timeout_s`` seconds)."""
    lock_path = home / LOCK_FILE
    with open(lock_path, "a+") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreUnavailableError(
                        f"timed out after {timeout_s:.0f} s waiting for the store lock {lock_path}"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read_state(home: Path) -> EmbeddedServerInfo | None:
    try:
        return EmbeddedServerInfo.from_json(json.loads((home / STATE_FILE).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(home: Path, info: EmbeddedServerInfo) -> None:
    tmp = home / f"{STATE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n")
    tmp.replace(home / STATE_FILE)


def _clear_state(home: Path) -> None:
    for name in (STATE_FILE, PID_FILE):
        with contextlib.suppress(FileNotFoundError):
            (home / name).unlink()


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has died and waits to be reaped (Linux ``/proc``; False elsewhere or when it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _reap(timeout_s: float = 5.0) -> None:
    """Reap the servers this process started that have exited. A killed server shows as a zombie while its threads
    are still being torn down, when it cannot be reaped yet: it is waited for (up to ``timeout_s`` s each)."""
    for pid, child in list(_children.items()):
        if child.poll() is None and _zombie(pid):
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=timeout_s)
        if child.returncode is not None:
            _children.pop(pid, None)


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) process; reaps it if this process started it."""
    if pid <= 0:
        return False
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie of another parent still accepts signal 0
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_our_server(info: EmbeddedServerInfo) -> bool:
    """Guard against pid reuse: is ``info.pid`` an nx-27017 process serving ``info.db_path``?

    True if it cannot be checked (no /proc).
    """
    try:
        cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes()
    except OSError:
        return not Path("/proc/self").exists()
    return b"nx_27017" in cmdline and os.fsencode(str(info.db_path)) in cmdline


def _ping(host: str, port: int, timeout_ms: int = PING_TIMEOUT_MS) -> bool:
    """True if a MongoDB-compatible server answers ``ping`` at host:port."""
    import pymongo
    from pymongo.errors import PyMongoError

    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        host,
        port,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        directConnection=True,
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _alive_and_answering(info: EmbeddedServerInfo) -> bool:
    return _pid_alive(info.pid) and _ping(info.host, info.port)


def _launch(home: Path, port: int, timeout_s: float) -> EmbeddedServerInfo | None:
    """Start one server on ``port``; return it once it answers ``ping``, or None if it failed."""
    data_dir = home / DATA_DIR
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = home / LOG_FILE
    _reap()  # a server of ours that died is a zombie until reaped: nx-27017 would take its pid file for a live server
    cmd = [
        sys.executable,
        "-c",
        _LAUNCHER,
        "--data-dir",
        str(data_dir),
        "--host",
        HOST,
        "-p",
        str(port),
        "--pid-file",
        str(home / PID_FILE),
        "--log-file",
        os.devnull,
    ]
    with open(log_path, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting nx-27017 on {HOST}:{port}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, "BD_STORE_IDLE_S": str(idle_timeout_s())},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=home,
            start_new_session=True,
            close_fds=True,
        )
    _children[proc.pid] = proc
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _children.pop(proc.pid, None)
            return None
        if _port_open(HOST, port) and _ping(HOST, port, timeout_ms=1000) and proc.poll() is None:
            return EmbeddedServerInfo(host=HOST, port=port, pid=proc.pid, db_path=data_dir)
        time.sleep(0.05)
    _terminate(proc.pid)  # too slow: do not leave a half-started server behind
    return None


def _terminate(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM ``pid``, wait up to ``timeout_s`` s, then SIGKILL."""
    if not _pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)  # in case it was stopped (SIGTSTP/SIGSTOP)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------- public API


def running_servers() -> list[dict[str, str]]:
    """Every embedded store server of this user on this machine (any data home): pid, port and data folder, from the
    process table (Linux ``/proc``; empty elsewhere)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.stat().st_uid != os.getuid():
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if len(args) > 2 and args[1] == "-c" and "nx_27017.nx_27017 import main" in args[2] and "--data-dir" in args:
            found.append(
                {
                    "pid": proc.name,
                    "port": args[args.index("-p") + 1] if "-p" in args else "?",
                    "data": args[args.index("--data-dir") + 1],
                }
            )
    return sorted(found, key=lambda d: int(d["pid"]))


def embedded_server_status(home: Path | None = None) -> EmbeddedServerInfo | None:
    """The running server for data dir ``home`` if it answers ``ping``; None otherwise (never starts one)."""
    info = _read_state(_home(home))
    return info if info is not None and _alive_and_answering(info) else None


def ensure_embedded_server(home: Path | None = None, *, start_timeout_s: float = 30.0) -> EmbeddedServerInfo:
    """Return a running server for data dir ``home`` (default: paths.subdir("store")); start one if needed.

    Safe to call from several processes at once: exactly one server is started per ``home``.
    ``start_timeout_s`` bounds each start attempt (seconds); raises StoreUnavailableError on failure.
    """
    home_dir = _home(home)
    info = _read_state(home_dir)
    if info is not None and _alive_and_answering(info):
        return info
    with _locked(home_dir, timeout_s=start_timeout_s * (START_ATTEMPTS + 1)):
        info = _read_state(home_dir)  # another process may have started it while we waited
        if info is not None and _alive_and_answering(info):
            return info
        if info is not None and _pid_alive(info.pid) and _is_our_server(info):
            # Alive but silent: maybe just busy (all worker threads in long queries). Give it a longer
            # chance before treating it as hung and replacing it.
            if _ping(info.host, info.port, timeout_ms=BUSY_PING_TIMEOUT_MS):
                return info
            _terminate(info.pid)
        _clear_state(home_dir)
        for _ in range(START_ATTEMPTS):
            started = _launch(home_dir, _free_port(HOST), start_timeout_s)
            if started is not None:
                _write_state(home_dir, started)
                _user_only(home_dir)
                return started
    raise StoreUnavailableError(
        f"the embedded MongoDB server (nx-27017) did not start after {START_ATTEMPTS} attempts; "
        f"see {home_dir / LOG_FILE}"
    )


def stop_embedded_server(home: Path | None = None) -> bool:
    """Stop the server for data dir ``home``; True if one was running. Data files are kept."""
    home_dir = _home(home)
    with _locked(home_dir, timeout_s=STOP_TIMEOUT_S * 6):
        info = _read_state(home_dir)
        stopped = False
        if info is not None and _pid_alive(info.pid) and _is_our_server(info):
            _terminate(info.pid)
            stopped = True
        _clear_state(home_dir)
        return stopped
