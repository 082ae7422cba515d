"""Seeds: bundled structures load; bad files give one clear SeedError."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from core.errors import SeedError
from generation.seeds import DEFAULT_SEEDS, load_seeds


def test_default_seeds_are_the_bundled_li_na_structures() -> None:
    seeds = load_seeds(["pymatgen:default"])
    assert [s.name for s in seeds] == [f"pymatgen:{n}" for n in DEFAULT_SEEDS]
    formulas = {s.structure.composition.reduced_formula for s in seeds}
    assert formulas == {"Li2O", "Li2O2", "LiFePO4", "NaFePO4", "Li3V2(PO4)3"}
    assert all(s.structure.is_ordered and not s.structure.site_properties for s in seeds)


def test_cif_file_and_folder(tmp_path: Path) -> None:
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    nacl.to(filename=str(tmp_path / "NaCl.cif"))
    (tmp_path / "notes.txt").write_text("ignored")
    seeds = load_seeds([str(tmp_path)])
    assert len(seeds) == 1 and seeds[0].structure.composition.reduced_formula == "NaCl"
    assert len(load_seeds([str(tmp_path / "NaCl.cif")])[0].structure) == 8


def test_malformed_cif(tmp_path: Path) -> None:
    bad = tmp_path / "broken.cif"
    bad.write_text("data_broken\n_cell_length_a 3.0\nthis is not a cif loop\n")
    with pytest.raises(SeedError, match=r"broken\.cif: cannot read a structure"):
        load_seeds([str(bad)])


def test_unknown_element_in_cif(tmp_path: Path) -> None:
    cif = tmp_path / "Xx.cif"
    cif.write_text(
        "data_x\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n_cell_angle_alpha 90\n"
        "_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'P 1'\n"
        "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
        "_atom_site_fract_z\nXx1 Xx 0 0 0\nLi1 Li 0.5 0.5 0.5\n"
    )
    with pytest.raises(SeedError, match="Xx"):
        load_seeds([str(cif)])


def test_partial_occupancy_is_refused_with_advice() -> None:
    with pytest.raises(SeedError, match="partial occupancies"):
        load_seeds(["pymatgen:Li10GeP2S12"])


def test_unknown_bundled_name_lists_what_exists() -> None:
    with pytest.raises(SeedError, match=r"available: .*Li2O"):
        load_seeds(["pymatgen:NoSuchThing"])


def test_missing_path() -> None:
    with pytest.raises(SeedError, match="neither a file"):
        load_seeds(["/no/such/file.cif"])


def test_atoms_on_top_of_each_other(tmp_path: Path) -> None:
    s = Structure(Lattice.cubic(4.0), ["Li", "Li"], [[0, 0, 0], [0.01, 0, 0]])
    s.to(filename=str(tmp_path / "clash.json"))
    with pytest.raises(SeedError, match="closer than"):
        load_seeds([str(tmp_path / "clash.json")])


def test_a_sliver_cell_seed_is_refused_before_any_relaxation(tmp_path: Path) -> None:
    """A 1e9 x 1e-9 x 5 Å cell has a plausible volume per atom; its neighbour list would exhaust memory."""
    path = tmp_path / "sliver.json"
    Structure(Lattice.from_parameters(1e9, 1e-9, 5, 90, 90, 90), ["Li"], [[0, 0, 0]]).to(filename=str(path))
    with pytest.raises(SeedError, match=r"thin: each atom nearer than 0\.5 Å"):
        load_seeds([str(path)])
