"""Molecular dynamics: units of the Nernst-Einstein estimate, failures, and a short real run."""

from __future__ import annotations

import math

import pytest
from pymatgen.core import Lattice, Structure

from oracle.md import CAVEAT, MDConfig, nernst_einstein, pick_ion, run_md, supercell_repeats
from oracle.testing import ToyPotential


def _li2o() -> Structure:
    cell = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]])
    return cell.get_primitive_structure()


def test_nernst_einstein_by_hand() -> None:
    # 10 ions in 1000 Å^3 = 1e22 cm^-3; D = 1e-5 cm^2/s at 300 K:
    # sigma = 1e22 * (1.602e-19)^2 * 1e-5 / (1.381e-23 * 300) = 2.567e-21 / 4.142e-21 = 0.6197 S/cm
    assert nernst_einstein(1e-5, 10, 1000.0, 300.0) == pytest.approx(0.61975, rel=1e-4)
    assert nernst_einstein(0.0, 10, 1000.0, 300.0) == 0.0


def test_supercell_and_ion_choice() -> None:
    assert supercell_repeats((3.26, 3.26, 3.26), 8.0) == (3, 3, 3)
    assert supercell_repeats((10.0, 4.0, 8.0), 8.0) == (1, 2, 1)
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert pick_ion(_li2o(), "auto") == "Li" and pick_ion(nacl, "auto") == "Na"
    assert pick_ion(nacl, "Li") is None


def test_md_without_a_mobile_ion_fails_with_a_reason() -> None:
    mgo = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    result = run_md(mgo, MDConfig(enabled=True, steps=20, equilibration_steps=0), ToyPotential())
    assert result.status == "failed" and result.reason == "no Li or Na to follow"


def test_toy_md_run_records_settings_and_a_finite_estimate() -> None:
    config = MDConfig(enabled=True, steps=60, equilibration_steps=10, sample_every=5, min_length=6.0, temperature_K=600)
    result = run_md(_li2o(), config, ToyPotential())
    assert result.status == "ok", result.reason
    assert result.ion == "Li" and result.n_atoms == 3 * 8 and result.n_ions == 16  # 2x2x2 primitive cells
    assert result.diffusivity_cm2_s is not None and result.diffusivity_cm2_s >= 0
    assert result.msd_final_A2 is not None and result.msd_final_A2 > 0  # the ions moved
    assert result.conductivity_S_cm == pytest.approx(
        nernst_einstein(result.diffusivity_cm2_s, 16, result.volume_A3, 600), rel=1e-9
    )
    assert result.caveat == CAVEAT and result.steps == 60 and result.timestep_fs == 2.0
    with pytest.raises(ValueError):
        MDConfig(steps=5)


@pytest.mark.slow
def test_chgnet_md_smoke() -> None:
    from oracle.potentials import get_potential

    config = MDConfig(enabled=True, steps=40, equilibration_steps=10, sample_every=5, min_length=5.0)
    result = run_md(_li2o(), config, get_potential("chgnet"))
    assert result.status == "ok", result.reason
    assert result.mean_temperature_K is not None and 300 < result.mean_temperature_K < 2500
    assert result.log10_conductivity is None or math.isfinite(result.log10_conductivity)
