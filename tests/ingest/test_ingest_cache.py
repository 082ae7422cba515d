"""The processed cache is reused, and rebuilt when an input or a cleaning setting changes; splits are fixed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from ingest import CleaningConfig, Dataset, DatasetError, load_dataset, processed_dir, raw_dir, split_ids
from ingest.api import load


def rocksalt(a: float, cation: str = "Li", anion: str = "F") -> Structure:
    """Primitive rock-salt cell (2 sites), built directly."""
    lattice = Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
    return Structure(lattice, [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _write(path: Path, energies: list[float]) -> None:
    structures = [rocksalt(4.0 + 0.3 * i, c, a) for i, (c, a) in enumerate([("Li", "F"), ("Na", "Cl"), ("K", "Br")])]
    pd.DataFrame({"id": ["a", "b", "c"], "cif": [s.to(fmt="cif") for s in structures], "e": energies}).to_csv(
        path, index=False
    )


def test_cache_reused_then_invalidated_by_content_and_settings(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write(path, [-3.0, -2.0, -1.0])
    first = load(f"csv:{path}")
    assert not first.reused and first.cache_path.is_file()
    assert first.cache_path.parent == processed_dir() == home / "data" / "processed"
    assert first.cache_path.name.startswith("csv-t-") and first.cache_path.suffix == ".pkl"
    again = load(f"csv:{path}")
    assert again.reused and again.cache_path == first.cache_path
    assert again.dataset.data_hash == first.dataset.data_hash

    _write(path, [-3.0, -2.0, -1.5])  # same size, new content
    changed = load(f"csv:{path}")
    assert not changed.reused and changed.cache_path != first.cache_path
    assert changed.dataset.data_hash != first.dataset.data_hash and changed.dataset.targets("e")[2] == -1.5

    other = load(f"csv:{path}", cleaning=CleaningConfig(deduplicate=False))
    assert not other.reused and other.cache_path != changed.cache_path
    assert other.dataset.data_hash == changed.dataset.data_hash  # same content, other settings
    assert len(list(processed_dir().glob("csv-t-*.pkl"))) == 3


def test_corrupt_cache_file_is_rebuilt(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write(path, [-3.0, -2.0, -1.0])
    first = load(f"csv:{path}")
    first.cache_path.write_bytes(b"not a pickle")
    second = load(f"csv:{path}")
    assert not second.reused and second.dataset.data_hash == first.dataset.data_hash


def test_raw_and_processed_are_apart(home: Path, tmp_path: Path) -> None:
    assert raw_dir("perov_5") == home / "data" / "raw" / "perov_5"
    assert raw_dir("perov_5", tmp_path) == tmp_path.resolve() / "perov_5"
    assert processed_dir() == home / "data" / "processed"


def _dataset(tmp_path: Path) -> Dataset:
    for i in range(10):
        rocksalt(3.8 + 0.2 * i).to(filename=str(tmp_path / f"s{i}.cif"))
    return load_dataset(f"folder:{tmp_path}", cleaning=CleaningConfig(deduplicate=False))


def test_split_ids_fixed_seed(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    split = split_ids(ds, seed=3, test_fraction=0.3)
    assert split == split_ids(ds, seed=3, test_fraction=0.3)
    assert len(split["test"]) == 3 and len(split["train"]) == 7
    assert sorted(split["train"] + split["test"]) == sorted(ds.ids)
    assert split != split_ids(ds, seed=4, test_fraction=0.3)
    with pytest.raises(DatasetError, match="test_fraction"):
        split_ids(ds, test_fraction=1.0)


def test_official_split_only_when_asked(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    official = Dataset(
        name=ds.name,
        records=ds.records,
        properties=ds.properties,
        report=ds.report,
        data_hash=ds.data_hash,
        splits={"train": ds.ids[:8], "test": ds.ids[8:]},
    )
    assert split_ids(official, official=True) == {"train": ds.ids[:8], "test": ds.ids[8:]}
    assert len(split_ids(official, test_fraction=0.5)["test"]) == 5
    assert split_ids(ds, official=True) == split_ids(ds)  # no official split: the random one
