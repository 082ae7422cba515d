"""Seeding a campaign from a data set (idempotent, on mongomock) and the ``battery-discovery data`` commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from ingest import Dataset, load_dataset, seed_store
from store import open_store
from store.connection import close_all
from store.repository import CandidateStore


def rocksalt(a: float, cation: str = "Li", anion: str = "F") -> Structure:
    """Primitive rock-salt cell (2 sites), built directly."""
    lattice = Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
    return Structure(lattice, [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture
def store() -> Iterator[CandidateStore]:
    s = open_store("mongomock://ingest", "t")
    yield s
    close_all()


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "salts"
    folder.mkdir()
    for name, (c, a, lat) in {"LiF": ("Li", "F", 4.03), "NaCl": ("Na", "Cl", 5.64), "KBr": ("K", "Br", 6.6)}.items():
        rocksalt(lat, c, a).to(filename=str(folder / f"{name}.cif"))
    (folder / "labels.csv").write_text("file,e_form\nLiF.cif,-3.1\nNaCl.cif,-2.1\nKBr.cif,-2.0\n")
    return folder


def _dataset(folder: Path) -> Dataset:
    return load_dataset(f"folder:{folder}")


def test_seed_store_is_idempotent(store: CandidateStore, labelled_folder: Path) -> None:
    ds = _dataset(labelled_folder)
    first = seed_store(ds, store, campaign="salts", limit=None)
    assert len(first.new_ids) == 3 and first.existing == 0 and first.n_records == 3
    docs = {d.formula: d for d in store.get_candidates(first.new_ids)}
    assert docs["LiF"].source == "dataset" and docs["LiF"].labels == {"e_form": -3.1}
    assert docs["LiF"].parent == "folder-salts:LiF.cif" and docs["LiF"].campaign == "salts"
    again = seed_store(ds, store, campaign="salts", limit=None)
    assert again.new_ids == [] and again.existing == 3
    assert store.counts()["candidates"] == 3


def test_seed_store_limit_and_campaigns_apart(store: CandidateStore, labelled_folder: Path) -> None:
    ds = _dataset(labelled_folder)
    assert len(seed_store(ds, store, campaign="one", limit=1).new_ids) == 1
    assert len(seed_store(ds, store, campaign="one", limit=5).new_ids) == 2
    assert len(seed_store(ds, store, campaign="two", limit=None).new_ids) == 3


def test_cli_data_load_with_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], labelled_folder: Path, cli: Callable[..., int]
) -> None:
    (labelled_folder / "broken.cif").write_text("data_x\n")
    assert cli("data", "load", f"folder:{labelled_folder}", "--report") == 0
    out = capsys.readouterr().out
    assert "folder-salts: 3 records" in out and "e_form" in out
    assert "cleaning: 4 rows read, 3 kept, 1 dropped" in out and "malformed_structure" in out and "broken.cif" in out


def test_cli_data_seed_twice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], labelled_folder: Path, cli: Callable[..., int]
) -> None:
    args = ("data", "seed", f"folder:{labelled_folder}", "--campaign", "cli-salts", "--store-uri", "mongomock://cli")
    assert cli(*args) == 0
    assert "3 new candidates" in capsys.readouterr().out
    assert cli(*args) == 0
    assert "0 new candidates" in capsys.readouterr().out and True
    close_all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("data", "fetch", "perov5", "--cache-dir", "{tmp}"), "cannot download https://raw.githubusercontent.com/"),
        (("data", "fetch", "obelix", "--cache-dir", "{tmp}"), "NRC-Mila/OBELiX/v1.2.0-data"),
        (("data", "fetch", "jarvis"), "cannot fetch 'jarvis'"),
        (("data", "load", "nope:x"), "unknown data set spec 'nope:x'"),
        (("data", "load", "csv:/no/such.csv"), "no file"),
        (("data", "load", "obelix:/no/such", "--partial-occupancy", "guess"), "invalid cleaning option"),
        (("data", "seed", "folder:{tmp}", "--campaign", "Bad Name", "--store-uri", "mongomock://cli"), "campaign"),
    ],
)
def test_cli_data_user_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
    cli: Callable[..., int],
) -> None:
    rocksalt(4.0).to(filename=str(tmp_path / "a.cif"))
    assert cli(*(a.format(tmp=tmp_path) for a in args)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err and "Traceback" not in err
    if args[1] == "fetch" and args[2] != "jarvis":
        assert "--cache-dir" in err


def test_cli_data_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    assert cli("data", "--help") == 0
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("load", "fetch", "seed"))
    assert cli("--help") == 0 and "data" in capsys.readouterr().out
