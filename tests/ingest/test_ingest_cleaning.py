"""Cleaning: broken rows are dropped with a reason, changes are reported, nothing disappears silently."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from ingest import CleaningConfig, Dataset, load_dataset
from ingest.cleaning import order_deterministic


def rocksalt(a: float, cation: str = "Li", anion: str = "F") -> Structure:
    """Primitive rock-salt cell (2 sites), built directly."""
    lattice = Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
    return Structure(lattice, [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def li_vacancy_cell() -> Structure:
    """A conventional rock-salt LiF cell (8 sites) whose Li sites are half occupied."""
    conv = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    conv.replace_species({"Li": {"Li": 0.5}})
    return conv


def _csv(tmp_path: Path, rows: list[tuple[str, str, float]]) -> str:
    path = tmp_path / "rows.csv"
    pd.DataFrame(rows, columns=["id", "cif", "e"]).to_csv(path, index=False)
    return f"csv:{path}"


def _broken_rows() -> list[tuple[str, str, float]]:
    lif = rocksalt(4.03).to(fmt="cif")
    xx = rocksalt(5.64, "Na", "Cl").to(fmt="cif").replace("Na", "Xx")
    return [
        ("good", lif, -3.0),
        ("malformed", "data_bad\n_cell_length_a 4.0\nloop_\n_atom_site_label\n", -1.0),
        ("partial", li_vacancy_cell().to(fmt="cif"), -2.0),
        ("unknown", xx, -1.5),
        ("nan", rocksalt(6.6, "K", "Br").to(fmt="cif"), float("nan")),
        ("absurd", rocksalt(5.4, "Na", "F").to(fmt="cif"), 1.0e6),
        ("copy", lif, -3.01),
        ("conflict", lif, -1.0),
    ]


def _issues(ds: Dataset) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    for i in ds.report.issues:
        out.setdefault(i.record_id, []).append((i.kind, i.action, i.message))
    return out


def test_every_broken_row_is_reported_with_a_reason(tmp_path: Path) -> None:
    ds = load_dataset(_csv(tmp_path, _broken_rows()), cleaning=CleaningConfig(label_bounds={"e": (-50.0, 50.0)}))
    issues = _issues(ds)
    assert ds.ids == ["good", "partial"]
    assert issues["malformed"][0][:2] == ("malformed_structure", "dropped")
    assert "CIF does not parse" in issues["malformed"][0][2]
    assert issues["unknown"] == [("unknown_element", "dropped", "unknown element(s) Xx0+")]
    assert issues["nan"] == [
        ("nan_label", "modified", "e is missing or not a number; label removed"),
        ("no_labels", "dropped", "no valid label left"),
    ]
    assert (
        issues["absurd"][0][:2] == ("label_out_of_bounds", "modified")
        and "e=1e+06 outside [-50.0, 50.0]" in (issues["absurd"][0][2])
    )
    assert issues["copy"] == [("duplicate", "dropped", "same structure as good and labels agree")]
    kind, action, message = issues["conflict"][0]
    assert (
        (kind, action) == ("conflicting_duplicate", "dropped")
        and "good: e=-3" in message
        and "conflict: e=-1" in (message)
    )
    assert issues["partial"][0][:2] == ("partial_occupancy", "modified")
    assert issues["partial"][0][2] == "partially occupied (LiF2); ordered deterministically"
    assert ds.records[1].composition.formula == "Li2 F4" and ds.records[1].structure.is_ordered
    report = ds.report
    assert report.n_input == 8 and report.n_kept == 2 and report.n_dropped == 6 and report.n_ordered == 1
    assert set(ds.ids) | report.dropped_ids() == {r[0] for r in _broken_rows()}  # nothing silently dropped
    assert report.counts()["duplicate:dropped"] == 1 and "8 rows read, 2 kept, 6 dropped" in report.summary()


@pytest.mark.parametrize(
    ("policy", "expected_ids", "ordered"),
    [("skip", ["good"], None), ("keep", ["good", "partial"], False), ("order", ["good", "partial"], True)],
)
def test_partial_occupancy_policies(tmp_path: Path, policy: str, expected_ids: list[str], ordered: bool | None) -> None:
    rows = [r for r in _broken_rows() if r[0] in ("good", "partial")]
    ds = load_dataset(_csv(tmp_path, rows), cleaning=CleaningConfig(partial_occupancy=policy))  # type: ignore[arg-type]
    assert ds.ids == expected_ids
    (issue,) = ds.report.by_kind("partial_occupancy")
    assert issue.action == {"skip": "dropped", "keep": "kept", "order": "modified"}[policy]
    if ordered is not None:
        assert ds.records[1].structure.is_ordered is ordered


def test_deterministic_ordering_keeps_an_exact_composition() -> None:
    conv = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.0), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    conv.replace_species({"Li": {"Li": 0.5, "Na": 0.5}})
    ordered = order_deterministic(conv)
    assert ordered.is_ordered and ordered.composition.reduced_formula == "NaLiCl2" and len(ordered) == 8
    assert order_deterministic(conv) == ordered  # reproducible


def test_ewald_ordering_of_a_small_cell(tmp_path: Path) -> None:
    conv = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.0), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    conv.replace_species({"Li": {"Li": 0.5, "Na": 0.5}})
    ds = load_dataset(_csv(tmp_path, [("mixed", conv.to(fmt="cif"), -2.0)]), cleaning=CleaningConfig(ordering="ewald"))
    (record,) = ds.records
    assert record.structure.is_ordered and record.formula == "NaLiCl2"
    assert "ordered by Ewald energy" in ds.report.issues[0].message


def test_conflict_policies(tmp_path: Path) -> None:
    lif = rocksalt(4.03).to(fmt="cif")
    spec = _csv(tmp_path, [("a", lif, -3.0), ("b", lif, -1.0)])
    mean = load_dataset(spec, cleaning=CleaningConfig(conflicts="mean"))
    assert mean.ids == ["a"] and mean.targets("e").tolist() == [-2.0]
    assert [(i.record_id, i.action) for i in mean.report.issues] == [("a", "modified"), ("b", "dropped")]
    none = load_dataset(spec, cleaning=CleaningConfig(conflicts="drop_all"))
    assert none.ids == [] and none.report.dropped_ids() == {"a", "b"}
    kept = load_dataset(spec, cleaning=CleaningConfig(deduplicate=False))
    assert kept.ids == ["a", "b"]


def test_volume_scaled_copies_are_distinct_unless_asked(tmp_path: Path) -> None:
    spec = _csv(tmp_path, [("a", rocksalt(4.0).to(fmt="cif"), -3.0), ("b", rocksalt(5.2).to(fmt="cif"), -2.9)])
    assert load_dataset(spec).ids == ["a", "b"]
    assert load_dataset(spec, cleaning=CleaningConfig(match_scale=True)).ids == ["a"]


def test_overlapping_sites_are_dropped(tmp_path: Path) -> None:
    crowded = Structure(Lattice.cubic(4.0), ["Li", "Li", "F"], [[0, 0, 0], [0.05, 0, 0], [0.5, 0.5, 0.5]])
    ds = load_dataset(_csv(tmp_path, [("crowded", crowded.to(fmt="cif"), -1.0)]))
    (issue,) = ds.report.issues
    assert issue.kind == "overlapping_sites" and "0.20 Å apart" in issue.message and ds.ids == []
    assert load_dataset(
        _csv(tmp_path, [("crowded", crowded.to(fmt="cif"), -1.0)]), cleaning=CleaningConfig(min_distance=0)
    ).ids == ["crowded"]


def test_censored_labels_can_be_dropped(shared: Path, tmp_path: Path) -> None:
    folder = tmp_path / "obelix"
    folder.mkdir()
    for name in ("train.csv", "test.csv", "all.csv"):
        shutil.copy(shared / "obelix" / name, folder / name)
    ds = load_dataset(f"obelix:{folder}", cleaning=CleaningConfig(censored_labels="drop"))
    assert len(ds.report.by_kind("censored_label")) == 37 and len(ds.report.by_kind("no_labels")) == 37
    assert len(ds) == 599 - 37 and ds.report.n_dropped == 37
    assert len(ds.splits["train"]) + len(ds.splits["test"]) == 562


def test_cleaning_config_rejects_unknown_knobs() -> None:
    with pytest.raises(ValueError, match="partial_occupancy"):
        CleaningConfig(partial_occupancy="guess")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="extra"):
        CleaningConfig(colour="red")  # type: ignore[call-arg]
