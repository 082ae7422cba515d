"""Every source loads with real values: perov_5 and OBELiX from ../shared/data, Matbench and MP from fixtures."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write as ase_write
from pymatgen.core import Lattice, Structure

from ingest import CleaningConfig, Dataset, DatasetError, load_dataset, split_ids
from ingest.api import load
from ingest.sources import matbench, mp

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def rocksalt(a: float, cation: str = "Li", anion: str = "F") -> Structure:
    """Primitive rock-salt cell (2 sites), built directly."""
    lattice = Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
    return Structure(lattice, [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


RAW_OBELIX = CleaningConfig(partial_occupancy="keep", deduplicate=False, min_distance=0)


@pytest.fixture(scope="session")
def perov5_val(shared: Path) -> Dataset:
    return load_dataset("perov5:val", cache_dir=shared)


def test_perov5_val_counts_and_units(perov5_val: Dataset) -> None:
    ds = perov5_val
    assert ds.name == "perov5-val"
    assert len(ds) == 3787 and ds.report.n_input == 3787 and ds.report.n_dropped == 0 and not ds.report.issues
    gaps = ds.targets("ind_gap")
    assert gaps.dtype == np.float64 and int((gaps > 0).sum()) == 143 and int((gaps >= 2).sum()) == 47
    heat = ds.targets("heat_all")
    assert int(((gaps >= 1.5) & (heat <= 0.5)).sum()) == 39
    assert "eV/atom" in ds.properties["heat_all"] and "(eV)" in ds.properties["ind_gap"]
    assert sum("Li" in r.composition for r in ds.records) == 161
    assert len(set(ds.ids)) == 3787 and ds.splits == {}
    structures = ds.structures()
    assert len(structures) == 3787 and all(len(s) == 5 for s in structures[:50])
    assert ds.records[0].formula == ds.records[0].structure.composition.reduced_formula
    assert len(ds.data_hash) == 64


def test_perov5_local_file_spec(shared: Path, tmp_path: Path) -> None:
    import pandas as pd

    df = pd.read_csv(shared / "perov_5" / "val.csv").head(12)
    path = tmp_path / "mini.csv"
    df.to_csv(path, index=False)
    ds = load_dataset(f"perov5:{path}")
    assert ds.name == "perov5-mini" and len(ds) == 12
    assert ds.ids == [str(i) for i in df["material_id"]]
    np.testing.assert_allclose(ds.targets("heat_all"), df["heat_all"].to_numpy())


def test_perov5_download_offline_names_url_and_cache(tmp_path: Path, no_network: list[str]) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("perov5:test", cache_dir=tmp_path / "raw")
    message = str(err.value)
    assert "https://raw.githubusercontent.com/txie-93/cdvae/main/data/perov_5/test.csv" in message
    assert "--cache-dir" in message and str(tmp_path / "raw" / "perov_5" / "test.csv") in message
    assert "\n" not in message and no_network  # it tried, and failed at once
    assert not (tmp_path / "raw" / "perov_5" / "test.csv").exists()  # no partial file left behind


def test_obelix_official_split_and_labels_without_cifs(shared: Path, tmp_path: Path) -> None:
    folder = tmp_path / "obelix"
    folder.mkdir()
    for name in ("train.csv", "test.csv", "all.csv"):
        shutil.copy(shared / "obelix" / name, folder / name)
    ds = load_dataset(f"obelix:{folder}", cleaning=RAW_OBELIX)
    assert len(ds) == 599 and ds.report.n_dropped == 0
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 478, "test": 121}
    assert not set(ds.splits["train"]) & set(ds.splits["test"])
    assert all(r.structure is None for r in ds.records)  # no CIF archive: compositions only
    y = ds.targets("log10_conductivity")
    assert np.isfinite(y).all() and y.min() > -20 and y.max() < 2
    censored = ds.report.by_kind("censored_label")
    assert len(censored) == 37 and "using -10" in censored[0].message
    assert "log10 S/cm" in ds.properties["log10_conductivity"]
    first = next(r for r in ds.records if r.id == "jqc")
    assert first.formula == "Li7BiO6" and first.labels["log10_conductivity"] == pytest.approx(np.log10(1.58489e-06))
    assert split_ids(ds, official=True) == ds.splits
    assert split_ids(ds) != ds.splits and len(split_ids(ds)["test"]) == 120  # random unless asked
    with pytest.raises(DatasetError, match="have no structure"):
        ds.structures()


@pytest.mark.slow
def test_obelix_with_cifs_default_cleaning(shared: Path) -> None:
    ds = load_dataset(f"obelix:{shared / 'obelix'}")
    report = ds.report
    assert report.n_input == 599 and report.n_kept + report.n_dropped == 599 and report.n_kept == len(ds)
    assert len(report.by_kind("partial_occupancy")) == 321 - 72  # only 72 CIFs are fully ordered
    with_structure = [r for r in ds.records if r.structure is not None]
    assert len(ds) - len(with_structure) == 278 == report.n_composition_only
    assert all(r.structure.is_ordered for r in with_structure)
    assert set(ds.splits["train"]) | set(ds.splits["test"]) == set(ds.ids)
    assert {i.record_id for i in report.issues if i.action == "dropped"} == set(report.dropped_ids())
    assert ds.with_structures().structures()


def test_matbench_from_cached_file_and_matminer_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_fetch(name: str, folder: Path) -> None:  # stands in for matminer's download
        calls.append(name)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / f"{name}.json.gz", folder / f"{name}.json.gz")

    monkeypatch.setattr(matbench, "fetch_with_matminer", fake_fetch)
    ds = load_dataset("matbench:mp_gap", cache_dir=tmp_path)
    assert calls == ["matbench_mp_gap"] and ds.name == "matbench_mp_gap"
    assert len(ds) == 5 and ds.properties["gap_pbe"].endswith("(eV)")
    assert ds.ids[0] == "mb-gap-00000"
    assert dict(zip([r.formula for r in ds.records], ds.targets("gap_pbe"), strict=True))["LiF"] == 8.7
    load_dataset("matbench:matbench_mp_gap", cache_dir=tmp_path)
    assert calls == ["matbench_mp_gap"]  # cached: no second fetch
    expt = load_dataset("matbench:expt_gap", cache_dir=tmp_path)
    assert [r.structure for r in expt.records] == [None] * 3 and expt.targets("gap_expt").tolist() == [13.6, 8.5, 1.1]


def test_matbench_without_matminer_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matminer(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("matminer"):
            raise ImportError("No module named 'matminer'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matminer)
    with pytest.raises(DatasetError, match=r"optional 'data' extra"):
        load_dataset("matbench:mp_gap", cache_dir=tmp_path)


def test_mp_query_recorded_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = json.loads((FIXTURES / "mp_summary_Li-O.json").read_text())
    queries: list[dict[str, object]] = []

    def fake_search(criteria: dict[str, object], fields: list[str]) -> list[dict[str, object]]:
        queries.append(criteria)
        assert "structure" in fields
        return docs

    monkeypatch.setattr(mp, "search", fake_search)
    ds = load_dataset("mp:Li-O", cache_dir=tmp_path)
    assert queries == [{"chemsys": "Li-O"}]
    assert ds.ids == ["mp-fixture-0", "mp-fixture-4"] and [r.formula for r in ds.records] == ["Li2O", "Li"]
    assert ds.targets("formation_energy_per_atom").tolist() == [-2.07, 0.0]
    assert "eV/atom" in ds.properties["energy_above_hull"]
    load_dataset("mp:Li-O", cache_dir=tmp_path)
    assert len(queries) == 1  # the stored answer is reused
    assert list((tmp_path / "mp").glob("*.json.gz"))


def test_mp_query_parsing_and_missing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mp.parse_query("mp-1,mp-2") == {"material_ids": ["mp-1", "mp-2"]}
    assert mp.parse_query("Li-Fe-P-O") == {"chemsys": "Li-Fe-P-O"}
    assert mp.parse_query("LiFePO4") == {"formula": "LiFePO4"}
    assert mp.parse_query("elements=Li,O&is_stable=true&band_gap=0.5,3") == {
        "elements": ["Li", "O"],
        "is_stable": True,
        "band_gap": (0.5, 3.0),
    }
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(DatasetError, match=r"MP_API_KEY"):
        load_dataset("mp:Li-O", cache_dir=tmp_path)


def test_folder_of_cif_poscar_json_with_labels(tmp_path: Path) -> None:
    folder = tmp_path / "structs"
    folder.mkdir()
    rocksalt(4.03).to(filename=str(folder / "LiF.cif"))
    rocksalt(5.64, "Na", "Cl").to(filename=str(folder / "NaCl_POSCAR"), fmt="poscar")
    (folder / "KBr.json").write_text(
        json.dumps({"structure": rocksalt(6.6, "K", "Br").as_dict(), "labels": {"band_gap": 5.0}})
    )
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a 3\n")
    (folder / "labels.csv").write_text("file,band_gap\nLiF.cif,8.7\nNaCl_POSCAR,5.0\n")
    ds = load_dataset(f"folder:{folder}")
    assert sorted(ds.ids) == ["KBr.json", "LiF.cif", "NaCl_POSCAR"]
    assert dict(zip(ds.ids, ds.targets("band_gap"), strict=True)) == {
        "KBr.json": 5.0,
        "LiF.cif": 8.7,
        "NaCl_POSCAR": 5.0,
    }
    (issue,) = ds.report.issues
    assert issue.record_id == "broken.cif" and issue.kind == "malformed_structure" and issue.action == "dropped"
    assert "broken.cif does not parse" in issue.message


def test_unlabelled_folder_keeps_structures(tmp_path: Path) -> None:
    rocksalt(4.03).to(filename=str(tmp_path / "a.cif"))
    ds = load_dataset(f"folder:{tmp_path}")
    assert len(ds) == 1 and ds.properties == {} and ds.records[0].labels == {}


def test_extxyz_labels_from_info(tmp_path: Path) -> None:
    frames = []
    for i, a in enumerate((4.0, 5.0, 6.2)):  # > 20 % apart: not duplicates
        atoms = rocksalt(a).to_ase_atoms()
        atoms.info.update({"id": f"frame-{i}", "band_gap": 8.0 + i, "note": "text is not a label"})
        frames.append(atoms)
    molecule = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    molecule.info["band_gap"] = 10.0
    frames.append(molecule)
    path = tmp_path / "set.extxyz"
    ase_write(path, frames, format="extxyz")
    ds = load_dataset(f"extxyz:{path}")
    assert ds.ids == ["frame-0", "frame-1", "frame-2"]
    assert ds.targets("band_gap").tolist() == [8.0, 9.0, 10.0] and "note" not in ds.properties
    (issue,) = ds.report.issues
    assert issue.kind == "malformed_structure" and "no periodic 3D cell" in issue.message


def test_csv_with_cif_column_and_structures_roundtrip(tmp_path: Path) -> None:
    import pandas as pd

    structures = [rocksalt(4.03), rocksalt(5.64, "Na", "Cl")]
    pd.DataFrame({"id": ["a", "b"], "cif": [s.to(fmt="cif") for s in structures], "e": [-3.0, -2.0]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    ds = load_dataset(f"csv:{tmp_path / 't.csv'}")
    assert ds.ids == ["a", "b"] and ds.targets("e").tolist() == [-3.0, -2.0]
    assert all(isinstance(s, Structure) for s in ds.structures())
    assert ds.structures()[1].composition.reduced_formula == "NaCl"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope:x", "unknown data set spec 'nope:x'"),
        ("folder", "unknown data set spec"),
        ("csv:/no/such.csv", "no file"),
        ("folder:/no/such/dir", "no directory"),
        ("perov5:holdout", "neither a split"),
        ("matbench:", "needs a data set name"),
        ("mp:", "needs a query"),
    ],
)
def test_bad_specs_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_load_result_says_where_the_cache_is(home: Path, tmp_path: Path) -> None:
    rocksalt(4.03).to(filename=str(tmp_path / "a.cif"))
    first = load(f"folder:{tmp_path}")
    assert first.cache_path.parent == home / "data" / "processed" and not first.reused


def _fake_modules(monkeypatch: pytest.MonkeyPatch, **modules: object) -> None:
    """Install stand-ins for optional client packages (whether or not they are installed)."""
    import types

    for name, attrs in modules.items():
        module = types.ModuleType(name.replace("__", "."))
        for key, value in dict(attrs).items():  # type: ignore[call-overload]
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, name.replace("__", "."), module)


def test_mp_client_code_with_a_stand_in_rester(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = json.loads((FIXTURES / "mp_summary_Li-O.json").read_text())
    seen: dict[str, object] = {}

    class Doc:
        def __init__(self, data: dict[str, object]) -> None:
            self.data = {**data, "structure": Structure.from_dict(data["structure"])}  # type: ignore[arg-type]

        def model_dump(self) -> dict[str, object]:
            return self.data

    class Summary:
        def search(self, **kwargs: object) -> list[Doc]:
            seen.update(kwargs)
            return [Doc(d) for d in docs]

    class FakeRester:
        def __init__(self, api_key: str, mute_progress_bars: bool) -> None:
            seen["api_key"] = api_key
            self.materials = type("M", (), {"summary": Summary()})()

        def __enter__(self) -> FakeRester:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    _fake_modules(monkeypatch, mp_api={}, mp_api__client={"MPRester": FakeRester})
    monkeypatch.setenv("MP_API_KEY", "k" * 32)
    ds = load_dataset("mp:elements=Li,O&is_stable=true", cache_dir=tmp_path)
    assert seen["elements"] == ["Li", "O"] and seen["is_stable"] is True and seen["api_key"] == "k" * 32
    assert "structure" in seen["fields"]  # type: ignore[operator]
    assert ds.ids == ["mp-fixture-0", "mp-fixture-4"] and ds.records[0].structure.composition.reduced_formula == "Li2O"


def test_matbench_client_code_with_a_stand_in_matminer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []

    def fake_load(name: str, data_home: str, download_if_missing: bool) -> None:
        calls.append((name, data_home))
        shutil.copy(FIXTURES / f"{name}.json.gz", Path(data_home) / f"{name}.json.gz")

    _fake_modules(monkeypatch, matminer={}, matminer__datasets={"load_dataset": fake_load})
    ds = load_dataset("matbench:mp_gap", cache_dir=tmp_path)
    assert calls == [("matbench_mp_gap", str(tmp_path / "matbench"))] and len(ds) == 5


def test_a_cif_pymatgen_gives_up_on_names_the_cause() -> None:
    """pymatgen raises only "no structures"; the reason carries the warning that says why."""
    from ingest.sources.base import parse_structure_text

    rows = "Li1 Li 0 0 0 2.0\nF1 F 0.5 0.5 0.5 1\n"
    cell = "".join(f"_cell_length_{k} 4\n" for k in "abc") + "".join(
        f"_cell_angle_{k} 90\n" for k in ("alpha", "beta", "gamma")
    )
    text = (
        "data_x\n" + cell + "_symmetry_space_group_name_H-M 'P 1'\nloop_\n_atom_site_label\n_atom_site_type_symbol\n"
        "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n_atom_site_occupancy\n" + rows
    )
    structure, problem = parse_structure_text(text)
    assert structure is None and problem is not None
    assert problem[1].endswith("(Occupancy 2.0 exceeded tolerance.)") and "\n" not in problem[1]
