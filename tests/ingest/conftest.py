"""Fixtures of the ingest tests: the shared public data, a private data home, small structures."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared() -> Path:
    """``../shared/data`` beside the checkout (CI has it)."""
    assert SHARED.is_dir(), f"{SHARED} is missing: CI clones the project with ../shared beside it"
    return SHARED


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data home for tests that look at the processed cache."""
    path = tmp_path / "home"
    monkeypatch.setenv("BATTERY_DISCOVERY_HOME", str(path))
    return path


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every download attempt fails at once, as on the offline CI machines, and is recorded."""
    attempts: list[str] = []

    def offline(url: object, *args: object, **kwargs: object) -> object:
        attempts.append(str(getattr(url, "full_url", url)))
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    yield attempts
