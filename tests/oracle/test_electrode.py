"""Electrodes on real structures: working ion, removable ions, the charged state and the CHGNet voltage of LiFePO4."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Structure
from pymatgen.util.testing import MatSciTest

from oracle.electrode import REDOX_CEILING, ElectrodeResult, deintercalate, removable_ions, spread_subset, working_ion
from oracle.phases import default_phase_set, find_phase_file

FARADAY_MAH_PER_MOL = 96485.33212 / 3.6  # one electron per formula unit, mAh/mol


def mp20_structure(material_id: str) -> Structure:
    """A structure of the MP-20 validation file (MP relaxed, ICSD-derived)."""
    df = pd.read_csv(find_phase_file("mp_20"))
    return Structure.from_str(df[df.material_id == material_id].iloc[0].cif, fmt="cif")


def bundled(name: str) -> Structure:
    """One of pymatgen's bundled example structures."""
    return MatSciTest.get_structure(name)


def test_working_ion_of_li_na_both_and_neither() -> None:
    assert working_ion("LiFePO4") == "Li"
    assert working_ion(bundled("NaFePO4").composition) == "Na"
    assert working_ion("NaLiCoO2", "Na") == "Na"
    with pytest.raises(ValueError, match="both Li and Na"):
        working_ion("NaLiCoO2")
    with pytest.raises(ValueError, match="neither Li nor Na"):
        working_ion("MgO")
    with pytest.raises(ValueError, match="holds no Na"):
        working_ion("LiFePO4", "Na")


def test_removable_ions_are_limited_by_the_redox_of_the_other_cations() -> None:
    lfp = removable_ions("LiFePO4")
    assert lfp.n_removable == 1.0 and lfp.oxidation_states["Fe"] == 2.0 and lfp.reason == ""
    cell = removable_ions(bundled("LiFePO4").composition)  # per cell: Li4Fe4P4O16
    assert cell.n_ion == 4.0 and cell.n_removable == 4.0
    lmo = removable_ions("LiMn2O4")  # Mn3.5+ -> Mn4+: 2 x 0.5 e- = one Li
    assert lmo.oxidation_states["Mn"] == pytest.approx(3.5) and lmo.n_removable == pytest.approx(1.0)
    lvp = removable_ions("Li3V2(PO4)3")  # V3+ -> V5+: 4 e- of room, only 3 Li
    assert lvp.redox_capacity == pytest.approx(4.0) and lvp.n_removable == pytest.approx(3.0)
    lfo = removable_ions("Li2FeO2")  # Fe2+ -> Fe3+: one of the two Li
    assert lfo.n_ion == 2.0 and lfo.n_removable == pytest.approx(1.0)
    assert removable_ions("Li2FeO2", ceilings={**REDOX_CEILING, "Fe": 4}).n_removable == pytest.approx(2.0)


@pytest.mark.parametrize("formula", ["Li2O", "LiF", "Li10GeP2S12"])
def test_no_redox_active_cation_means_nothing_removable(formula: str) -> None:
    removal = removable_ions(formula)
    assert removal.n_removable == 0.0 and removal.n_ion > 0
    assert "no redox-active cation" in removal.reason
    with pytest.raises(ValueError, match="no redox-active cation"):
        deintercalate(bundled("Li2O"))


def test_cations_already_at_their_ceiling_say_so() -> None:
    removal = removable_ions("Li2MnO3")
    assert removal.n_removable == 0.0 and "Mn+4" in removal.reason and "ceiling" in removal.reason


def test_deintercalate_lifepo4_removes_every_li_and_keeps_the_rest() -> None:
    lfp = bundled("LiFePO4")
    fp = deintercalate(lfp)
    assert fp.composition == Composition("Fe4P4O16")
    assert np.allclose(fp.lattice.matrix, lfp.lattice.matrix)
    kept = [s for s in lfp if s.specie.symbol != "Li"]
    assert all(
        a.specie == b.specie and np.allclose(a.frac_coords, b.frac_coords) for a, b in zip(kept, fp, strict=True)
    )
    with pytest.raises(ValueError, match="holds 4"):
        deintercalate(lfp, n_remove=5)


def test_partial_removal_is_deterministic_and_well_spread() -> None:
    lfp = bundled("LiFePO4")
    li = [i for i, s in enumerate(lfp) if s.specie.symbol == "Li"]
    picked = spread_subset(lfp, li, 2)
    assert picked == spread_subset(lfp, li, 2) and picked[0] == li[0]
    farthest = max(lfp.get_distance(li[0], j) for j in li[1:])
    assert lfp.get_distance(*picked) == pytest.approx(farthest)  # the second pick is the farthest from the first
    half = deintercalate(lfp, n_remove=2)
    assert half.composition == Composition("Li2Fe4P4O16")


def test_redox_limited_deintercalation_takes_a_subset() -> None:
    lfo = mp20_structure(next(iter(_ids("Li2FeO2"))))
    n_li = round(lfo.composition["Li"])
    charged = deintercalate(lfo)
    assert charged.composition["Li"] == pytest.approx(n_li / 2)  # Fe2+ -> Fe3+ frees half the Li
    with pytest.raises(ValueError, match="redox capacity"):
        deintercalate(lfo, n_remove=n_li)


def _ids(formula: str) -> list[str]:
    df = pd.read_csv(find_phase_file("mp_20"))
    return sorted(df[df.pretty_formula == formula].material_id)


def _mp_energy(formula: str) -> float:
    """Lowest MP total energy of one formula unit of ``formula`` in the offline phase set (eV)."""
    phases = [p for p in default_phase_set(competing=False).compounds if p.formula == formula]
    return min(p.energy_per_atom for p in phases) * Composition(formula).num_atoms


def test_voltage_capacity_and_energy_density_from_mp_energies() -> None:
    mu_li = default_phase_set(competing=False).mu["Li"]
    e_lfp, e_fp = _mp_energy("LiFePO4"), _mp_energy("FePO4")
    result = ElectrodeResult.from_energies(
        "LiFePO4", e_lfp, "FePO4", e_fp, mu_li, discharged_volume=75.0, charged_volume=70.0
    )
    assert result.average_voltage == pytest.approx(e_fp + mu_li - e_lfp)  # one Li per FePO4, in eV = V
    assert result.capacity_mAh_g == pytest.approx(FARADAY_MAH_PER_MOL / Composition("LiFePO4").weight)
    assert result.capacity_mAh_g == pytest.approx(169.9, abs=0.1)  # per gram of LiFePO4 (the discharged state)
    assert result.energy_density_Wh_kg == pytest.approx(result.capacity_mAh_g * result.average_voltage)
    assert result.volume_change == pytest.approx(70.0 / 75.0 - 1)
    assert result.n_removed == pytest.approx(1.0) and result.framework_formula == "FePO4"
    cells = ElectrodeResult.from_energies("Li4Fe4P4O16", 4 * e_lfp, "Fe2P2O8", 2 * e_fp, mu_li)
    assert cells.average_voltage == pytest.approx(result.average_voltage)  # the basis does not matter
    assert cells.volume_change is None and cells.energy_density_Wh_L is None


def test_electrode_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="not ion-poorer"):
        ElectrodeResult.from_energies("LiFePO4", -52.0, "Li2Fe2P2O8", -104.0, -1.9)
    with pytest.raises(ValueError, match="framework"):
        ElectrodeResult.from_energies("LiFePO4", -52.0, "FePO3", -40.0, -1.9)
    with pytest.raises(ValueError, match="non-finite"):
        ElectrodeResult.from_energies("LiFePO4", math.nan, "FePO4", -40.0, -1.9)


@pytest.mark.slow
def test_chgnet_voltage_of_lifepo4(tmp_path: Path) -> None:
    """LiFePO4 -> FePO4 relaxed by CHGNet: experiment 3.45 V, GGA+U about 3.5 V. CHGNet's MPtrj errors of a few
    tens of meV/atom over the 28/24-atom cells allow some 0.5 V either way: the band is 2.8-4.2 V."""
    from oracle.potentials import get_potential
    from oracle.relax import RelaxConfig, relax_many

    assert get_potential("chgnet").energy_scale == "mp2020"  # the scale of the MP metal reference
    lfp = bundled("LiFePO4")
    discharged, charged = relax_many([lfp, deintercalate(lfp)], RelaxConfig(fmax=0.1, max_steps=200), batch_size=2)
    assert discharged.status == charged.status == "converged"
    result = ElectrodeResult.from_relaxations(discharged, charged, default_phase_set(competing=False).mu["Li"])
    assert 2.8 < result.average_voltage < 4.2, result
    assert result.capacity_mAh_g == pytest.approx(169.9, abs=0.1)
    assert -0.10 < result.volume_change < -0.01  # experiment: FePO4 is 6.5 % smaller
