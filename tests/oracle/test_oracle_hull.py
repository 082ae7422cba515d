"""Energy above hull on small systems with hand-computed answers."""

from __future__ import annotations

import pytest

from oracle.hull import hull_energies

REFS = {"Li": -2.0, "O": -5.0}


def test_stable_and_unstable_compounds() -> None:
    # Li2O at -5.0 eV/atom: formation energy (-5 - (2*-2 + -5)/3) = -2.0 eV/atom, on the hull.
    # Li2O2 at -4.0: formation -0.5; the hull at x_O = 0.5 between Li2O (x=1/3, -2.0) and O (x=1, 0)
    # is -2.0 * (1 - 0.5) / (1 - 1/3) = -1.5, so Li2O2 sits 1.0 eV/atom above it.
    res = hull_energies([("a", "Li2O", -5.0), ("b", "Li2O2", -4.0)], REFS)
    assert res["a"].e_above_hull == pytest.approx(0.0, abs=1e-9)
    assert res["a"].decomposition == {"Li2O": 1.0}
    assert res["b"].e_above_hull == pytest.approx(1.0, abs=1e-6)
    assert set(res["b"].decomposition) == {"Li2O", "O2"}


def test_entries_of_other_systems_do_not_interfere() -> None:
    res = hull_energies([("a", "Li2O", -5.0), ("n", "NaCl", -3.0)], {**REFS, "Na": -1.3, "Cl": -1.8})
    assert res["n"].e_above_hull == pytest.approx(0.0, abs=1e-9)  # E_f = -3 - (-1.55) < 0: on its hull


def test_above_the_elements() -> None:
    res = hull_energies([("x", "LiO", -3.0)], REFS)  # E_f = -3 - (-3.5) = +0.5 eV/atom
    assert res["x"].e_above_hull == pytest.approx(0.5, abs=1e-6)


def test_missing_reference() -> None:
    with pytest.raises(ValueError, match="Na"):
        hull_energies([("n", "Na2O", -4.0)], REFS)


def test_context_phases_shape_the_hull_but_get_no_result() -> None:
    alone = hull_energies([("b", "Li2O2", -4.0)], REFS)
    assert alone["b"].e_above_hull == pytest.approx(0.0, abs=1e-9)  # E_f -0.5 < 0, nothing else around
    res = hull_energies([("b", "Li2O2", -4.0)], REFS, context=[("mp:mp-1960", "Li2O", -5.0)])
    assert set(res) == {"b"}
    assert res["b"].e_above_hull == pytest.approx(1.0, abs=1e-6)
