"""Stability windows (Zhu, He & Mo 2015) from the offline MP reference phases, checked by hand and by pymatgen."""

from __future__ import annotations

import pandas as pd
import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element, Structure

from oracle.electrode import ElectrodeResult
from oracle.phases import PhaseSet, default_phase_set, find_phase_file
from oracle.window import HULL_OFFSET, stability_window


@pytest.fixture(scope="module")
def phases() -> PhaseSet:
    return default_phase_set(competing=False)


def _entries(phases: PhaseSet, formula: str, ion: str = "Li") -> list[PDEntry]:
    return phases.entries({*(el.symbol for el in Composition(formula).elements), ion})


def test_li2s_window_by_hand(phases: PhaseSet) -> None:
    """Li2S is stable against Li metal (low 0 V) and is oxidised to the Li-poorer phase it reports; the limit is
    that reaction's voltage: Li2S -> (1/y) LixSy + (2 - x/y) Li."""
    entries = _entries(phases, "Li2S")
    w = stability_window("Li2S", None, entries)
    assert w.low_V == 0.0 and w.reduction_products == ()
    (product,) = w.oxidation_products
    comp = Composition(product)
    x, y = comp["Li"], comp["S"]
    same = [e for e in entries if e.composition.reduced_composition == comp.reduced_composition]
    e_product = min(e.energy_per_atom for e in same) * comp.num_atoms  # eV per x Li + y S
    n_li = 2 - x / y
    mu_li = phases.mu["Li"]
    expected = (e_product / y + n_li * mu_li - 3 * w.energy_per_atom) / n_li
    assert w.high_V == pytest.approx(expected, abs=1e-6)
    assert 1.5 < w.high_V < 2.5  # Zhu, He & Mo: Li2S 0-2.01 V
    assert not w.thin and w.missing_ion_binaries == ()


@pytest.mark.parametrize("formula", ["LiFePO4", "LiCoO2", "Li4GeS4"])
def test_window_matches_pymatgen_element_profile(phases: PhaseSet, formula: str) -> None:
    """The facet projection gives the same limits as pymatgen's Li evolution profile (critical compositions)."""
    comp = Composition(formula)
    entries = _entries(phases, formula)
    w = stability_window(comp, None, entries)
    diagram = PhaseDiagram([*entries, PDEntry(comp, w.energy_per_atom * comp.num_atoms, name="target")])
    mu0 = diagram.el_refs[Element("Li")].energy_per_atom
    profile = diagram.get_element_profile(Element("Li"), comp)
    volts = [-(step["chempot"] - mu0) for step in profile]
    zero = next(i for i, step in enumerate(profile) if abs(step["evolution"]) < 1e-6)
    assert w.low_V == pytest.approx(volts[zero], abs=1e-6)
    assert w.high_V == pytest.approx(volts[zero + 1], abs=1e-6)
    below = {e.composition.reduced_formula for e in profile[zero - 1]["entries"]}
    assert set(w.reduction_products) == below - {"Li"}


def test_lgps_window_from_the_offline_phases(phases: PhaseSet) -> None:
    """Li10GeP2S12 (pymatgen's bundled structure is disordered, so its formula at the hull): an interval."""
    w = stability_window("Li10GeP2S12", None, _entries(phases, "Li10GeP2S12"))
    assert 0.0 <= w.low_V < w.high_V <= 5.0
    assert w.placed_at_hull and w.e_above_hull is None
    assert w.n_phases >= 5 and w.reduction_products and w.oxidation_products
    assert "Li4GeS4" in w.reduction_products  # the Ge end of its decomposition


def test_thin_system_says_so(phases: PhaseSet) -> None:
    """Li-P-O in the reference files holds Li3PO4, Li4P2O7 and P2O5 only (no Li2O, no Li3P: the hull completion adds
    them): the window is flagged thin."""
    w = stability_window("Li3PO4", None, _entries(phases, "Li3PO4"))
    assert w.thin and w.n_phases == 3
    assert "Li-O" in w.missing_ion_binaries and "Li-P" in w.missing_ion_binaries
    assert w.low_V == 0.0  # with no Li2O/Li3P to reduce to it looks stable against Li (Zhu et al.: 0.69 V)
    assert 3.9 < w.high_V < 4.5  # the oxidation to Li4P2O7 + O2 is there (Zhu et al.: 4.21 V)


def test_an_energy_above_the_hull_is_placed_on_it_and_one_below_widens_the_window(phases: PhaseSet) -> None:
    entries = _entries(phases, "LiFePO4")
    at = stability_window("LiFePO4", None, entries)
    hull = at.energy_per_atom + HULL_OFFSET
    above = stability_window("LiFePO4", hull + 0.05, entries)
    assert above.placed_at_hull and above.e_above_hull == pytest.approx(0.05)
    assert (above.low_V, above.high_V) == pytest.approx((at.low_V, at.high_V))
    below = stability_window("LiFePO4", hull - 0.05, entries)
    assert not below.placed_at_hull and below.e_above_hull == pytest.approx(-0.05)
    assert below.low_V < at.low_V and below.high_V > at.high_V
    # 0.05 eV/atom x 7 atoms per LiFePO4 on the one-Li oxidation to FePO4: 0.35 V higher
    assert below.high_V - at.high_V == pytest.approx(7 * (0.05 - HULL_OFFSET), abs=1e-6)


def test_oxidation_limit_of_lifepo4_is_its_electrode_voltage(phases: PhaseSet) -> None:
    """LiFePO4's oxidation limit (to FePO4), FePO4's reduction limit and the MP-energy voltage coincide."""
    entries = _entries(phases, "LiFePO4")
    lfp = stability_window("LiFePO4", None, entries)
    fp = stability_window("FePO4", None, entries, ion="Li")
    assert lfp.oxidation_products == ("FePO4",) and fp.reduction_products == ("LiFePO4",)
    assert fp.high_V is None and fp.oxidation_products == ()  # holds no Li: nothing to release
    energies = {
        f: min(p.energy_per_atom for p in phases.compounds if p.formula == f) * Composition(f).num_atoms
        for f in ("LiFePO4", "FePO4")
    }
    voltage = ElectrodeResult.from_energies(
        "LiFePO4", energies["LiFePO4"], "FePO4", energies["FePO4"], phases.mu["Li"]
    ).average_voltage
    assert lfp.high_V == pytest.approx(voltage, abs=0.01) and fp.low_V == pytest.approx(voltage, abs=0.01)


def test_window_inputs_are_checked(phases: PhaseSet) -> None:
    with pytest.raises(ValueError, match="pass ion"):
        stability_window("MgO", None, phases.entries({"Mg", "O", "Li"}))
    with pytest.raises(ValueError, match="no elemental reference entry for Li"):
        stability_window("LiCoO2", None, [e for e in _entries(phases, "LiCoO2") if e.name != "element:Li"])
    na = stability_window("NaFePO4", None, _entries(phases, "NaFePO4", "Na"))
    assert na.ion == "Na" and na.low_V < na.high_V


@pytest.mark.slow
def test_window_at_the_chgnet_energy_of_li3po4(phases: PhaseSet) -> None:
    """Li3PO4 (MP-20 mp-13725) relaxed by CHGNet: within 0.1 eV/atom of the MP hull, a window with high > low."""
    from oracle.relax import RelaxConfig, relax_structure

    df = pd.read_csv(find_phase_file("mp_20"))
    structure = Structure.from_str(df[df.material_id == "mp-13725"].iloc[0].cif, fmt="cif")
    result = relax_structure(structure, RelaxConfig(fmax=0.1, max_steps=200))
    assert result.status == "converged" and result.energy_per_atom is not None
    w = stability_window("Li3PO4", result.energy_per_atom, _entries(phases, "Li3PO4"))
    assert w.e_above_hull is not None and abs(w.e_above_hull) < 0.1
    assert w.high_V is not None and 0.0 <= w.low_V < w.high_V < 6.0 and w.thin


def test_a_hull_point_inside_a_full_facet_has_a_one_point_window(phases: PhaseSet) -> None:
    """Li3PS4 is not among the offline phases: its hull point lies inside the Li2S-P2S3-P2S7 facet, where all
    three coexist at one Li potential, so the window at the hull is a point. LiCoO2 (also absent) sits on the
    CoO-Li3Co2O5 tie line: its hull point keeps an interval."""
    point = stability_window("Li3PS4", None, _entries(phases, "Li3PS4"))
    assert point.degenerate and len(point.hull_decomposition) == 3
    assert point.high_V - point.low_V < 0.01
    line = stability_window("LiCoO2", None, _entries(phases, "LiCoO2"))
    assert not line.degenerate and line.hull_decomposition == ("CoO", "Li3Co2O5")
    assert line.high_V - line.low_V > 0.1
    own = stability_window("LiFePO4", None, _entries(phases, "LiFePO4"))
    assert own.hull_decomposition == ("LiFePO4",) and not own.degenerate
