"""Fixtures of the dashboard's browser tests: a store seeded by a small real loop, the dashboard served by its own
command in a subprocess, and headless Debian chromium driven by Selenium (installed by ``make test``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
DATABASE = "dash_loop"
CAMPAIGN = "dash"

#: The loop that seeds the store: round 0 labels two seeds, one round of discovery on real CHGNet and models.
LOOP = {
    "campaign": CAMPAIGN,
    "rounds": 1,
    "batch_size": 3,
    "candidates_per_round": 10,
    "seeds": ("pymatgen:Li2O", "pymatgen:Li2O2"),
    "surrogate": {"n_members": 2, "epochs": 5, "num_threads": 1},
    # pages, not the hull: computed phases on the phase diagram are tested in test_data.py
    "oracle": {"relax": {"fmax": 0.2, "max_steps": 40}, "completion": {"max_structures": 0}},
    "store_uri": "embedded",
    "database": DATABASE,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def seeded_store(prefect_harness: None, session_home: Path) -> str:
    """The database of a 1-round loop (campaign 'dash') on the embedded store; returns its name."""
    from flows.discovery_loop import discovery_loop
    from store import open_store

    discovery_loop(**dict(LOOP))  # resumes (runs nothing) when the data home already holds it
    rounds = open_store("embedded", DATABASE).list_rounds(CAMPAIGN)
    assert [(r.round, r.status) for r in rounds] == [(0, "completed"), (1, "completed")]
    return DATABASE


@pytest.fixture(scope="session")
def serve(session_home: Path) -> Iterator[Callable[..., str]]:
    """``serve(database=..., store_uri=...)`` starts ``battery-discovery dashboard`` on a free port and returns its
    address; every server is stopped at the end of the session."""
    processes: list[subprocess.Popen[bytes]] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def start(database: str = DATABASE, store_uri: str = "embedded") -> str:
        port = free_port()
        log = open(ARTIFACTS / f"server-{database}-{port}.log", "wb")  # noqa: SIM115 (closed with the process)
        cmd = [sys.executable, "-m", "battery_discovery.cli", "dashboard", "--port", str(port)]
        cmd += ["--database", database, "--store-uri", store_uri]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), cwd=REPO)
        processes.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"dashboard exited with {proc.returncode}: see {log.name}")
            try:
                with urllib.request.urlopen(url + "/", timeout=2):
                    return url
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"dashboard did not answer within 120 s: see {log.name}")

    yield start
    for proc in processes:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def browser(downloads: Path) -> Iterator[object]:
    """Headless Debian chromium driven by Selenium (dashboard.testing)."""
    from dashboard.testing import headless_chromium

    try:
        driver = headless_chromium(downloads=downloads)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    yield driver
    driver.quit()


@pytest.fixture
def screenshot() -> Callable[[object, str], Path]:
    """``screenshot(driver, name)`` saves the window as test-artifacts/dashboard/<name>.png."""

    def save(driver: object, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        driver.save_screenshot(str(path))  # type: ignore[attr-defined]
        return path

    return save


@pytest.fixture
def closed_port() -> int:
    """A local port nobody listens on (a store that is down)."""
    return free_port()
