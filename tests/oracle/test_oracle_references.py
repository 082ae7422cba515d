"""Elemental references: disk/memory caching, formation-energy arithmetic, and real CHGNet values."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pymatgen.core import Composition, Structure

from core.errors import ConfigError
from oracle.references import (
    ElementalReferences,
    clear_memory_cache,
    default_mp_references_path,
    load_mp_reference_entries,
)
from oracle.relax import RelaxConfig, relax_structure

Rocksalt = Callable[..., Structure]


@pytest.fixture(autouse=True)
def _fresh_memory_cache() -> None:
    clear_memory_cache()


@pytest.mark.usefixtures("fake_potentials")
def test_references_cached_on_disk(tmp_path: Path) -> None:
    first = ElementalReferences("fake:const", cache_dir=tmp_path)
    assert first.energy_per_atom("Li") == pytest.approx(-1.5)
    assert first.energy_per_atom("F") == pytest.approx(-2.0)  # diatomic in a box
    assert first.energy_per_atom("Li") == pytest.approx(-1.5)  # memory hit
    assert first.n_computed == 2

    doc = json.loads(first.cache_file.read_text())
    assert first.cache_file.parent == tmp_path
    assert sorted(doc["elements"]) == ["F", "Li"]
    assert doc["potential"] == "fake:const" and doc["potential_version"] == "fake 1.0"
    assert doc["elements"]["F"]["source"].startswith("ase:diatom")

    clear_memory_cache()  # force the second instance to go to disk
    second = ElementalReferences("fake:const", cache_dir=tmp_path)
    assert second.energy_per_atom("F") == first.energy_per_atom("F")
    assert second.n_computed == 0

    assert first.cache_file.name == "fake_const__fake_1.0.json"
    other_settings = ElementalReferences("fake:const", cache_dir=tmp_path, box_size=12.0)
    other_settings.energy_per_atom("F")
    assert other_settings.n_computed == 1  # different settings are not served from the cache...
    assert other_settings.cache_file != first.cache_file  # ...and do not evict it
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(
        [first.cache_file.name, other_settings.cache_file.name]
    )
    clear_memory_cache()
    third = ElementalReferences("fake:const", cache_dir=tmp_path)
    third.energy_per_atom("F")
    assert third.n_computed == 0


def test_default_cache_dir_is_under_data_home(tmp_path: Path, fake_potentials: None) -> None:
    refs = ElementalReferences("fake:const")
    assert refs.cache_dir == tmp_path / "home" / "cache" / "references"


@pytest.mark.usefixtures("fake_potentials")
def test_formation_energy_arithmetic(tmp_path: Path) -> None:
    refs = ElementalReferences("fake:const", cache_dir=tmp_path)
    # Li2O with total energy 0.3 eV/atom below 2*mu_Li + mu_O = -3 - 4 = -7 eV.
    assert refs.formation_energy_per_atom(Composition("Li2O"), -7.9) == pytest.approx(-0.3)
    assert refs.formation_energy_per_atom("Li4O2", -15.8) == pytest.approx(-0.3)


@pytest.mark.usefixtures("fake_potentials")
def test_element_without_ase_reference_is_named(tmp_path: Path) -> None:
    refs = ElementalReferences("fake:const", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"reference state for S .*source='mp'"):
        refs.energy_per_atom("S")
    with pytest.raises(ConfigError, match="not an element"):
        refs.energy_per_atom("Xx")


@pytest.mark.usefixtures("fake_potentials")
def test_reference_config_must_use_same_potential(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be the same"):
        ElementalReferences("fake:const", cache_dir=tmp_path, config=RelaxConfig(potential="chgnet"))


@pytest.mark.usefixtures("fake_potentials")
def test_missing_mp_file_is_clear(tmp_path: Path) -> None:
    refs = ElementalReferences("fake:const", cache_dir=tmp_path, source="mp", mp_path=tmp_path / "x.json.gz")
    with pytest.raises(ConfigError, match=r"not found.*only the default cache location"):
        refs.energy_per_atom("Li")


def test_mp_file_is_fetched_into_the_default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from oracle import references

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mp" / references.MP_REFERENCES_FILE
    monkeypatch.delenv(references.ENV_MP_REFERENCES, raising=False)
    monkeypatch.setattr(references.paths, "project_root", lambda: None)  # no ../shared lookup
    monkeypatch.setattr(references, "MP_REFERENCES_URL", shared.as_uri())  # a local "download"
    target = references.default_mp_references_path()
    assert target == references.paths.data_home() / "cache" / "mp" / references.MP_REFERENCES_FILE
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="downloads are off"):
        references.load_mp_reference_entries()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    entries = references.load_mp_reference_entries()
    assert target.is_file() and entries["Li"]["entry_id"].startswith("mp-")
    with pytest.raises(ConfigError, match="cannot download"):
        references.fetch_mp_references(tmp_path / "bad.json.gz", url=(tmp_path / "missing").as_uri())


@pytest.mark.usefixtures("fake_potentials")
def test_mp_entries_with_structures_are_relaxed(tmp_path: Path, make_rocksalt: Rocksalt) -> None:
    lif = make_rocksalt(4.03)
    li_only = Structure(lif.lattice, ["Li"], [[0, 0, 0]])
    entry = {
        "@class": "ComputedStructureEntry",
        "energy": "-99.0",
        "composition": "{'Li': 1.0}",
        "entry_id": "mp-test",
        "structure": li_only.as_dict(),
    }
    path = tmp_path / "refs.json.gz"
    with gzip.open(path, "wt") as handle:
        json.dump({"Li": entry}, handle)
    assert load_mp_reference_entries(path)["Li"]["energy"] == -99.0  # string literals parsed
    refs = ElementalReferences("fake:const", cache_dir=tmp_path, source="mp", mp_path=path)
    reference = refs.reference("Li")
    assert reference.energy_per_atom == pytest.approx(-1.5)  # the potential's energy, not MP's
    assert reference.source == "mp:mp-test (relaxed)"


needs_mp_file = pytest.mark.skipif(not default_mp_references_path().is_file(), reason="shared MP reference file absent")


@needs_mp_file
@pytest.mark.usefixtures("fake_potentials")
def test_mp_file_dft_energies(tmp_path: Path) -> None:
    refs = ElementalReferences("fake:const", cache_dir=tmp_path, source="mp")
    li = refs.reference("Li")
    assert li.energy_per_atom == pytest.approx(-5.7267686 / 3)  # mp-1018134, 3-atom cell
    assert li.status == "dft" and li.source == "mp:mp-1018134-GGA (DFT energy)"
    assert refs.energy_per_atom("O") == pytest.approx(-39.57350969 / 8)  # fields stored as strings
    assert refs.n_computed == 0
    auto = ElementalReferences("fake:const", cache_dir=tmp_path, source="auto")
    assert auto.reference("Li").source == "ase:bcc"
    assert auto.reference("S").source == "mp:mp-96-GGA (DFT energy)"


# -- real CHGNet -----------------------------------------------------------------------------------
# Windows: Materials Project (MP2020-corrected GGA) formation energies are Li2O -2.07, LiF -3.20,
# NaCl -2.10 eV/atom (experiment -2.07, -3.19, -2.13). CHGNet was trained on those MP energies (MAE
# ~0.03 eV/atom) but our references are CHGNet's own relaxed bcc metals and diatomic molecules in a
# box, which CHGNet fits less well than crystals: measured Li2O -2.07, LiF -3.10, NaCl -2.10.
# ±0.3 eV/atom around MP absorbs the molecule-vs-molecular-solid reference offset (~0.1 eV/atom) yet
# catches sign errors, per-cell/per-atom mix-ups (factor 2-3) and wrong or missing references.


def _li2o() -> Structure:
    import pymatgen.util

    return Structure.from_file(Path(pymatgen.util.__file__).parent / "structures" / "Li2O.json")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "mp_value"), [("LiF", -3.20), ("NaCl", -2.10), ("Li2O", -2.07)])
def test_chgnet_formation_energies(name: str, mp_value: float, tmp_path: Path, make_rocksalt: Rocksalt) -> None:
    structure = {
        "LiF": lambda: make_rocksalt(4.03),
        "NaCl": lambda: make_rocksalt(5.64, "Na", "Cl"),
        "Li2O": _li2o,
    }[name]()
    refs = ElementalReferences("chgnet", cache_dir=tmp_path)
    result = relax_structure(structure, RelaxConfig(fmax=0.02), refs)
    assert result.status == "converged", result.reason
    assert result.formation_energy_per_atom is not None
    assert result.formation_energy_per_atom < 0
    assert mp_value - 0.3 < result.formation_energy_per_atom < mp_value + 0.3
    for element in structure.composition:
        reference = refs.reference(element)  # Species (Li+, O2-) are accepted
        assert reference.status == "converged" and reference.potential == "chgnet"
