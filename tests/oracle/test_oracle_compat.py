"""Energies on the Materials Project scale: which potentials get MP2020 corrections, and their values."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from oracle.compat import correct_energy, hubbard_values, mp_compatible
from oracle.config import OracleConfig


def _rocksalt(a: str, b: str, x: float) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(x), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_raw_gga_energies_get_mp2020_anion_and_u_corrections() -> None:
    feo = _rocksalt("Fe", "O", 4.3)
    assert hubbard_values(feo) == {"Fe": 5.3}
    corrected = correct_energy(feo, -60.0, energy_scale="mp_raw")
    # MP2020: oxide -0.687 eV per O, Fe GGA+U -2.256 eV per Fe; 4 Fe + 4 O in 8 atoms
    assert corrected.correction_per_atom == pytest.approx(-(0.687 + 2.256) / 2, abs=1e-3)
    assert corrected.energy_per_atom == pytest.approx(-7.5 + corrected.correction_per_atom)
    assert corrected.scheme == "MP2020" and corrected.mp_compatible
    lif = correct_energy(_rocksalt("Li", "F", 4.03), -40.4, energy_scale="mp_raw")
    assert lif.correction_per_atom == pytest.approx(-0.462 / 2, abs=1e-3)  # fluoride correction per F


def test_corrected_potentials_are_left_alone_and_others_are_not_mp_compatible() -> None:
    feo = _rocksalt("Fe", "O", 4.3)
    chgnet = correct_energy(feo, -60.0, energy_scale="mp2020")
    assert chgnet.correction_per_atom == 0.0 and chgnet.energy_per_atom == -7.5 and chgnet.mp_compatible
    scan = correct_energy(feo, -60.0, energy_scale="other")
    assert scan.scheme == "none" and not scan.mp_compatible
    forced = correct_energy(feo, -60.0, energy_scale="other", correction="mp2020")
    assert forced.scheme == "MP2020"
    assert not mp_compatible("mp2020", "mp2020")  # correcting already-corrected energies double counts
    assert not mp_compatible("mp_raw", "none")


def test_reference_source_follows_the_energy_scale() -> None:
    assert OracleConfig().resolved_reference_source("mp2020") == "mp"
    assert OracleConfig().resolved_reference_source("mp_raw") == "mp"
    assert OracleConfig().resolved_reference_source("other") == "auto"
    assert OracleConfig(reference_source="ase").resolved_reference_source("mp2020") == "ase"
    assert OracleConfig(energy_correction="none").resolved_reference_source("mp_raw") == "auto"


@pytest.mark.slow
def test_chgnet_formation_energies_against_mp_references_match_experiment() -> None:
    """CHGNet learned MP2020-corrected energies: with MP's elemental references and no extra correction,
    formation energies land near experiment (LiF -3.19, NaCl -2.13, Li2O -2.07 eV/atom)."""
    from oracle.potentials import get_potential
    from oracle.references import ElementalReferences
    from oracle.relax import RelaxConfig, relax_structure

    assert get_potential("chgnet").energy_scale == "mp2020"
    refs = ElementalReferences("chgnet", source="mp")
    li2o = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]])
    for structure, expected in (
        (_rocksalt("Li", "F", 4.03), -3.19),
        (_rocksalt("Na", "Cl", 5.64), -2.13),
        (li2o, -2.07),
    ):
        result = relax_structure(structure.get_primitive_structure(), RelaxConfig(fmax=0.02), refs)
        assert result.formation_energy_per_atom == pytest.approx(expected, abs=0.1)
