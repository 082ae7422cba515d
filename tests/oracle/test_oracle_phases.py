"""Reference phases from the MP-20 / MPTS-52 files: energies on MP's scale, hulls per chemical system."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from core.errors import ConfigError
from oracle.phases import PhaseSet, ReferencePhase, default_phase_set, read_phase_file


@pytest.fixture(scope="module")
def phases(shared_data) -> PhaseSet:
    return default_phase_set()


def _energy(phase_set: PhaseSet, formula: str, e_form: float) -> float:
    comp = Composition(formula).fractional_composition
    return e_form + sum(float(x) * phase_set.mu[el.symbol] for el, x in comp.items())


def test_the_three_files_are_read_with_sources(phases):
    sources = {p.source for p in phases.compounds}
    assert sources == {"mp_20", "mp_20_test", "mpts_52"}
    assert len(phases) > 18_000
    assert all(len(p.elements) >= 2 for p in phases.compounds)
    test_split = [p for p in phases.compounds if p.source == "mp_20_test"]
    assert len(test_split) > 6_000 and not any({"Li", "Na"} & set(p.elements) for p in test_split)
    assert {"K2O", "Fe2O3", "P2O5"} <= {p.formula for p in test_split}
    assert all(p.e_above_hull is not None and p.e_above_hull >= 0 for p in phases.compounds)  # MP's, from the files


def test_structures_are_read_lazily_from_the_files(phases):
    k2o = next(p for p in phases.compounds if p.formula == "K2O" and p.e_above_hull == 0)
    structure = phases.structure(k2o.entry_id)
    assert structure.composition.reduced_formula == "K2O"
    assert phases.structure("mp-nonexistent") is None


def test_mp_phases_are_no_higher_than_mp_says(phases, shared_data):
    """Against a subset of MP's phases a phase can only sit lower than on MP's own hull: phases on MP's hull
    land at 0, the others at most at MP's value (sampled, seeded)."""
    df = pd.read_csv(shared_data / "mp_20_biternary" / "val.csv.gz").sample(150, random_state=0)
    ours, theirs = [], []
    for formula, e_form, e_hull in zip(df.pretty_formula, df.formation_energy_per_atom, df.e_above_hull, strict=True):
        ours.append(phases.stability(formula, _energy(phases, formula, e_form)).e_above_hull)
        theirs.append(e_hull)
    ours_a, theirs_a = np.array(ours), np.array(theirs)
    assert np.all(ours_a <= theirs_a + 1e-6)
    on_hull = theirs_a == 0
    assert on_hull.sum() > 20
    assert np.allclose(ours_a[on_hull], 0.0, atol=1e-6)


def test_signed_below_hull_and_decomposition(phases):
    hull = phases.hull_formation_energy("LiCaPO4")
    assert hull < -2.5
    above = phases.stability("LiCaPO4", _energy(phases, "LiCaPO4", hull + 0.1))
    assert above.e_above_hull == pytest.approx(0.1, abs=1e-9)
    assert "Li3PO4" in above.decomposition and sum(above.decomposition.values()) == pytest.approx(1.0, abs=1e-4)
    below = phases.stability("LiCaPO4", _energy(phases, "LiCaPO4", hull - 0.2))
    assert below.e_above_hull == pytest.approx(-0.2, abs=1e-9)
    assert below.decomposition == {"LiCaPO4": 1.0}
    assert below.n_phases == sum(below.sources.values()) > 3


def test_context_phases_shape_the_hull(phases):
    hull = phases.hull_formation_energy("LiCaPO4")
    e = _energy(phases, "LiCaPO4", hull - 0.05)
    with_rival = phases.stability("LiCaPO4", e + 0.02, context=[("rival", "LiCaPO4", e)])
    assert with_rival.e_above_hull == pytest.approx(0.02, abs=1e-9)
    unrelated = phases.stability("LiCaPO4", e, context=[("other", "NaCl", -5.0)])
    assert unrelated.e_above_hull == pytest.approx(-0.05, abs=1e-9)


def test_added_phases_join_the_hull_and_count_by_source(phases):
    own = PhaseSet(compounds=phases.compounds, mu=phases.mu)
    before = own.stability("Li2O", _energy(own, "Li2O", -2.0))
    assert before.e_above_hull < -1.9 and before.thin and before.gaps == ("Li-O",)  # no Li-O compound offline
    li2o = ReferencePhase(
        entry_id="computed:x:Li2O:mp-971",
        formula="Li2O",
        elements=("Li", "O"),
        energy_per_atom=_energy(own, "Li2O", -2.1),
        formation_energy_per_atom=-2.1,
        source="computed",
    )
    assert own.add_phases([li2o, li2o]) == 1 and len(own) == len(phases) + 1
    after = own.stability("Li2O", _energy(own, "Li2O", -2.0), context=[("c1", "Li2O2", -5.0), ("c2", "NaCl", -3.0)])
    assert after.e_above_hull == pytest.approx(0.1, abs=1e-9)  # the cached Li-O diagram was dropped
    assert after.sources == {"computed": 1, "campaign": 1} and after.n_phases == 2
    assert not any(p.source == "computed" for p in phases.phases(["Li", "O"]))  # the shared set is untouched


def test_phases_added_from_many_threads_are_all_kept(phases):
    from concurrent.futures import ThreadPoolExecutor

    own = PhaseSet(compounds=[], mu=phases.mu)

    def add(k: int) -> None:
        e_form = -1.0 - 0.01 * k
        phase = ReferencePhase(
            entry_id=f"computed:{k}",
            formula="LiCl",
            elements=("Cl", "Li"),
            energy_per_atom=_energy(own, "LiCl", e_form),
            formation_energy_per_atom=e_form,
            source="computed",
        )
        own.add_phases([phase])
        own.stability("LiCl", _energy(own, "LiCl", -1.0))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add, range(40)))
    assert len(own.phases(["Li", "Cl"])) == 40
    assert own.hull_formation_energy("LiCl") == pytest.approx(-1.39)


def test_thin_hulls_are_flagged(phases):
    # the shared files hold no Li-F compound and only a few Cs-Na-La-Cl phases
    assert phases.stability("LiF", -5.0).thin
    assert phases.stability("Cs2NaLaCl6", -3.0).thin
    assert not phases.stability("LiFePO4", -6.0).thin


def test_unknown_element_is_a_clear_error(phases):
    with pytest.raises(ConfigError, match="no MP elemental reference for Xx"):
        phases.stability({"Li": 1, "Xx": 1}, -1.0)


def test_the_mp_20_test_source_drops_li_and_na_compounds(tmp_path):
    """The downloaded original of mp_20_test holds Li/Na compounds; they stay out of the hull."""
    path = tmp_path / "test.csv"
    pd.DataFrame(
        {"material_id": ["mp-1", "mp-2", "mp-3"], "formation_energy_per_atom": [-1.0, -2.0, -0.5]}
        | {"pretty_formula": ["LiCl", "NaCl", "KCl"]}
    ).to_csv(path)
    mu = {"Li": -1.9, "Na": -1.3, "K": -1.1, "Cl": -1.8}
    assert [p.formula for p in read_phase_file(path, "mp_20_test", mu)] == ["KCl"]
    assert len(read_phase_file(path, "mp_20", mu)) == 3


def test_rows_without_reference_or_formula_are_skipped(tmp_path):
    path = tmp_path / "phases.csv"
    pd.DataFrame(
        {
            "material_id": ["mp-1", "mp-2", "mp-3", "mp-4"],
            "formation_energy_per_atom": [-1.0, -2.0, float("nan"), -0.5],
            "pretty_formula": ["LiCl", "NaCl", "KCl", "Li"],
        }
    ).to_csv(path)
    got = read_phase_file(path, "test", {"Li": -1.9, "Cl": -1.8, "K": -1.1})
    assert got == [
        ReferencePhase(
            entry_id="mp-1",
            formula="LiCl",
            elements=("Cl", "Li"),
            energy_per_atom=pytest.approx(-1.0 - 1.85),
            formation_energy_per_atom=-1.0,
            source="test",
        )
    ]
