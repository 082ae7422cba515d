"""The CLI: help that teaches, one-line errors with exit 2, query and status on a store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def test_help_lists_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    assert cli("--help") == 0
    out = capsys.readouterr().out
    for command in ("run", "query", "status", "config", "store"):
        assert command in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--rounds", "-2"), "invalid config value for rounds"),
        (("run", "--seeds", "/no/such.cif"), "neither a file"),
        (("run", "--strategy", "magic"), "acquisition.strategy"),
        (
            ("run", "--store-uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"),
            "cannot reach MongoDB",
        ),
        (("query", "--elements", "Li,Xx", "--store-uri", "mongomock://cli"), "unknown element 'Xx'"),
        (("query", "--sort", "colour", "--store-uri", "mongomock://cli"), "cannot sort by"),
    ],
)
def test_user_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
    cli: Callable[..., int],
) -> None:
    assert cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("error:") and "\n" not in err and "Traceback" not in err


def test_malformed_seed_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, cli: Callable[..., int]
) -> None:
    bad = tmp_path / "bad.cif"
    bad.write_text("not a cif at all")
    assert cli("run", "--seeds", str(bad), "--store-uri", "mongomock://cli") == 2
    assert "bad.cif: cannot read a structure" in capsys.readouterr().err


def test_config_prints_every_knob(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    assert cli("config") == 0
    out = capsys.readouterr().out
    for key in ("rounds: 3", "strategy: ucb", "potential: chgnet", "store_uri: embedded", "n_members: 5"):
        assert key in out


def test_query_and_status_on_an_empty_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    assert cli("query", "--store-uri", "mongomock://cli-empty") == 0
    assert "0 evaluated candidates" in capsys.readouterr().out
    assert cli("status", "--store-uri", "mongomock://cli-empty") == 0
    assert "candidates 0" in capsys.readouterr().out
