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


#: Rows of MP-20 val the session's default band-gap model learns from (the real default reads all 9,000: 250 s).
SMALL_GAP_ROWS = 400


@pytest.fixture(scope="session", autouse=True)
def _small_default_band_gap_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Loops with the default properties train the default band-gap model on first use (hurdle-gb on MP-20 val,
    250 s, once per data home). For a session that runs such loops (slow or e2e tests), train the same architecture
    and members on the first rows of that file into the default model's folder of the session home (about 30 s):
    every process of the session then registers it as the default, as it would a default trained before. The
    default's own training path is tested in tests/surrogates/test_descriptor_models.py."""
    if not any(item.get_closest_marker("slow") or item.get_closest_marker("e2e") for item in request.session.items):
        return
    import pandas as pd

    from store import open_store
    from surrogates import predictors
    from surrogates.config import EnsembleConfig
    from surrogates.property_models import train_and_register

    folder = predictors.default_model_dir("band_gap")
    if folder.is_dir():
        return
    subset = tmp_path_factory.mktemp("defaults") / "mp20-val-head.csv"
    pd.read_csv(SHARED_DATA / "mp_20_biternary" / "val.csv.gz", nrows=SMALL_GAP_ROWS).to_csv(subset, index=False)
    name, _ = predictors.DEFAULT_MODELS["band_gap"]
    train_and_register(
        open_store("mongomock://session-defaults", "session_defaults"),
        dataset=f"mp20:{subset}",
        property_name="band_gap",
        name=name,
        config=EnsembleConfig(n_members=predictors.DEFAULT_N_MEMBERS, seed=0),
        database="session_defaults",
        use_gnn=False,
        architecture=predictors.DEFAULT_ARCHITECTURES["band_gap"],
        directory=folder,
    )


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
