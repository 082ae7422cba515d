"""Session-wide test settings: offline, quiet, and every write under a temporary data home."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Set before any project or Prefect import: nothing downloads, nothing phones home.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="bd-test-home-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("BATTERY_DISCOVERY_HOME", str(_SESSION_HOME / "home"))
os.environ.setdefault("PREFECT_HOME", str(_SESSION_HOME / "prefect"))
# One torch/OpenMP thread in the session and the processes it starts (workers, servers, CLI runs), as the loop's
# runtime.num_threads does: two threads on a 2-core machine that also runs a Prefect server, a store and workers
# spin at every small op (a 3-member MEGNet fit on 320 perovskites took 1,033 s with 2 threads beside one busy
# process, 21 s with 1). A test that wants more threads sets them itself.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property-based tests: the same examples on every run and machine (no example database, no deadline on a loaded
# machine); each test module sets its own max_examples and health checks on top of this profile.
settings.register_profile("project", deadline=None, derandomize=True, database=None)
settings.load_profile("project")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def session_home() -> Path:
    """The data home shared by the session (reference-energy cache, embedded store, models)."""
    return Path(os.environ["BATTERY_DISCOVERY_HOME"])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (public data sets copied for offline use)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: CI clones the project with ../shared beside it")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _stop_session_store() -> object:
    """Stop the embedded store server that tests started under the session home."""
    yield
    from store.embedded import stop_embedded_server

    stop_embedded_server()


@pytest.fixture(scope="session")
def prefect_harness() -> object:
    """Run flows against a temporary Prefect server (started once per session, ~10-20 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``battery-discovery ARGS...`` in this process through its real entry point; returns the exit code."""
    import sys

    from battery_discovery.cli import main

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["battery-discovery", *args])
        try:
            main()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    return run


@pytest.fixture
def pool(tmp_path: Path, shared_data: Path) -> str:
    """60 perov_5 entries: all 12 gapped ones among the first 400 rows plus metals (an ingest spec)."""
    import pandas as pd

    df = pd.read_csv(shared_data / "perov_5" / "val.csv", nrows=400)
    sub = pd.concat([df[df.ind_gap > 0].head(12), df[df.ind_gap == 0].head(48)])
    path = tmp_path / "pool.csv"
    sub.to_csv(path, index=False)
    return f"perov5:{path}"
