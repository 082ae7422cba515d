"""mp20 / mpts52 specs (MP structures from WyckoffTransformer) and the Liverpool conductivity database, on the
shared copies of the real files; nothing downloads (the ``no_network`` fixture records every attempt)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.api import _planners, load, parse_spec
from ingest.download import DownloadError
from ingest.records import DatasetError
from ingest.sources import liverpool, mp20


def _slice(src: Path, dest: Path, rows: slice) -> Path:
    """The rows ``rows`` of a real CSV(.gz), written gzipped to ``dest``."""
    df = pd.read_csv(src).iloc[rows]
    with gzip.open(dest, "wt") as fh:
        df.to_csv(fh, index=False)
    return dest


def test_specs_parse_and_resolve_to_the_cache_dir(shared: Path, no_network: list[str]) -> None:
    assert parse_spec("mp20:val") == ("mp20", "val")
    assert parse_spec("mpts52") == ("mpts52", "")
    assert parse_spec("obelix-liverpool") == ("obelix-liverpool", "")
    with pytest.raises(DatasetError, match="unknown data set spec"):
        parse_spec("mp21:val")
    plan = _planners()["mp20"]("val", shared)
    resolved = [f.resolve() for f in plan.files]  # the planner may resolve a symlinked ../shared
    assert resolved == [(shared / "mp_20_biternary" / "val.csv.gz").resolve()] and plan.name == "mp20-val"
    files = [f.resolve() for f in _planners()["mpts52"]("", shared).files]
    assert files == [(shared / "mpts_52" / "val.csv.gz").resolve()]
    assert no_network == []


def test_offline_download_is_one_clear_error(tmp_path: Path, home: Path, no_network: list[str]) -> None:
    with pytest.raises(DownloadError) as info:
        load("mp20:test", cache_dir=tmp_path / "empty")
    message = str(info.value)
    assert mp20.COMMIT in message and "data/mp_20_biternary/test.csv.gz" in message
    assert "--cache-dir" in message and len(message.splitlines()) == 1
    assert no_network == [mp20.url("mp20", "test")]
    assert not list((home / "data" / "raw").rglob("*.gz"))  # no partial file left behind
    with pytest.raises(DatasetError, match="splits train, val, test"):
        mp20.fetch("mp20", "dev")


def test_mp20_rows_labels_and_units(shared: Path, tmp_path: Path, home: Path) -> None:
    src = shared / "mp_20_biternary" / "val.csv.gz"
    path = _slice(src, tmp_path / "part.csv.gz", slice(0, 60))
    dataset = load(f"mp20:{path}").dataset
    raw = pd.read_csv(src).iloc[:60].set_index("material_id")
    assert dataset.name == "mp20-part" and len(dataset) + len(dataset.report.dropped_ids()) == 60
    assert set(dataset.properties) == {"formation_energy_per_atom", "band_gap", "e_above_hull"}
    assert dataset.properties["band_gap"].endswith("(eV)")
    assert dataset.properties["formation_energy_per_atom"].endswith("(eV/atom)")
    for record in dataset.records:
        row = raw.loc[record.id]
        assert record.labels["band_gap"] == pytest.approx(row["band_gap"])
        assert record.labels["e_above_hull"] == pytest.approx(row["e_above_hull"])
        assert record.formula == record.structure.composition.reduced_formula  # type: ignore[union-attr]
        assert record.meta["spacegroup_number"] == row["spacegroup.number"]
    assert np.all(dataset.targets("band_gap") >= 0)


def test_mpts52_maps_energy_above_hull(shared: Path, tmp_path: Path, home: Path) -> None:
    src = shared / "mpts_52" / "val.csv.gz"
    dataset = load(f"mpts52:{_slice(src, tmp_path / 'm.csv.gz', slice(0, 30))}").dataset
    raw = pd.read_csv(src).iloc[:30].set_index("material_id")
    assert set(dataset.properties) == {"formation_energy_per_atom", "e_above_hull"}
    record = dataset.records[0]
    assert record.labels["e_above_hull"] == pytest.approx(raw.loc[record.id, "energy_above_hull"])
    assert record.meta["year"] == raw.loc[record.id, "year"]


def test_missing_columns_are_reported(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"material_id": ["a"], "cif": ["x"]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="missing column"):
        load(f"mp20:{path}")


def test_liverpool_keeps_room_temperature_means(shared: Path, home: Path) -> None:
    dataset = load("liverpool", cache_dir=shared).dataset
    raw = pd.read_csv(shared / "obelix" / liverpool.FILE, encoding="utf-8-sig")
    lo, hi = liverpool.ROOM_T_C
    room = raw[(raw["temperature"] >= lo) & (raw["temperature"] <= hi)]
    assert sum(r.meta["n_measurements"] for r in dataset.records) == len(room)  # every room-T row is in a record
    assert all(lo <= t <= hi for r in dataset.records for t in r.meta["temperatures_C"])
    by_id = raw.set_index("ID")
    for record in dataset.records[:50]:
        logs = [np.log10(by_id.loc[i, "target"]) for i in record.meta["liverpool_ids"]]
        assert record.labels["log10_conductivity"] == pytest.approx(np.mean(logs))
    keys = [liverpool.composition_key(r.composition) for r in dataset.records]
    assert len(keys) == len(set(keys))  # one record per composition
    assert any("(Li2S)0.75" in r.meta["composition"] for r in dataset.records)  # glass formulas parse


def test_obelix_liverpool_keeps_the_test_split_unseen(shared: Path, home: Path) -> None:
    base = load("obelix", cache_dir=shared).dataset
    combined = load("obelix-liverpool", cache_dir=shared).dataset
    assert combined.splits["test"] == base.splits["test"]
    added = [r for r in combined.records if r.id.startswith("liverpool-")]
    assert len(combined) == len(base) + len(added) and len(added) > 100
    assert {r.id for r in added} <= set(combined.splits["train"])
    obelix_keys = {liverpool.composition_key(r.composition) for r in base.records}
    assert not any(liverpool.composition_key(r.composition) in obelix_keys for r in added)
    test_df = pd.read_csv(shared / "obelix" / "test.csv")
    linked = {int(v) for v in test_df["Liion ID"].dropna()}
    assert not any(set(r.meta["liverpool_ids"]) & linked for r in added)
