"""Lockstep batched relaxation: the same trajectories as one-by-one relaxation, failures stay local."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from pymatgen.core import Lattice, Structure

from oracle.potentials import PointEvaluation, Potential, get_potential, register_potential, unregister_potential
from oracle.relax import RelaxConfig, relax_batch, relax_many, relax_structure


def _strained(formula: tuple[str, str], a: float, scale: float = 1.04) -> Structure:
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), list(formula), [[0, 0, 0], [0.5, 0.5, 0.5]])
    s = s.get_primitive_structure()
    s.scale_lattice(s.volume * scale**3)
    return s


@pytest.mark.slow
def test_chgnet_batch_reproduces_sequential_relaxations() -> None:
    cells = [_strained(("Li", "F"), 4.03), _strained(("Na", "Cl"), 5.64, 0.97), _strained(("Li", "Cl"), 5.13)]
    config = RelaxConfig(fmax=0.02, max_steps=200)
    one_by_one = [relax_structure(c, config) for c in cells]
    finished: list[int] = []
    batched = relax_batch(cells, config, on_result=lambda i, r: finished.append(i))
    assert sorted(finished) == [0, 1, 2]
    for single, batch in zip(one_by_one, batched, strict=True):
        assert batch.status == single.status == "converged"
        assert batch.n_steps == single.n_steps > 3
        assert batch.energy_per_atom == pytest.approx(single.energy_per_atom, abs=1e-5)
        assert batch.volume_change == pytest.approx(single.volume_change, abs=1e-4)
    # the batched CHGNet call gives the calculator's numbers
    _assert_batch_matches_calculator([c.to_ase_atoms() for c in cells])


def _assert_batch_matches_calculator(cells: list) -> list[PointEvaluation]:
    """``CHGNetPotential.evaluate`` on ``cells`` at once equals CHGNet's ASE calculator one by one."""
    potential = get_potential("chgnet")
    points = potential.evaluate(cells)
    for cell, point in zip(cells, points, strict=True):
        cell.calc = potential.calculator()
        assert point.energy == pytest.approx(cell.get_potential_energy(), abs=1e-4)
        np.testing.assert_allclose(point.forces, cell.get_forces(), atol=2e-4)
        np.testing.assert_allclose(point.stress, cell.get_stress(), atol=1e-5)
    return points


@pytest.mark.slow
def test_chgnet_single_backward_matches_the_calculator_on_sheared_rattled_cells() -> None:
    """One forward + one backward pass gives CHGNet's own energies, forces and (off-diagonal) stress."""
    rng = np.random.default_rng(1)
    cells = []
    for formula, a in ((("Li", "F"), 4.03), (("Na", "Cl"), 5.64), (("Li", "Br"), 5.5)):
        s = _strained(formula, a) * (2, 1, 1)
        shear = np.eye(3) + rng.normal(0, 0.03, (3, 3))
        s = Structure(Lattice(s.lattice.matrix @ shear), s.species, s.frac_coords)
        s.perturb(0.1, min_distance=0.02)
        cells.append(s.to_ase_atoms())
    points = _assert_batch_matches_calculator(cells)
    assert max(np.abs(p.stress[3:]).max() for p in points) > 1e-4  # the shear reached the off-diagonal terms


ENERGIES = {"Li": -1.5, "F": -2.0, "Na": -1.0, "Cl": -1.75}


class _PickyCalculator(Calculator):
    """Constant per-element energies and zero forces, but raises for any cell containing Na."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:  # type: ignore[no-untyped-def]
        super().calculate(atoms, properties, system_changes)
        symbols = self.atoms.get_chemical_symbols()
        if "Na" in symbols:
            raise RuntimeError("no sodium here")
        energy = sum(ENERGIES[s] for s in symbols)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": np.zeros((len(symbols), 3)),
            "stress": np.zeros(6),
        }


class _PickyPotential(Potential):
    def __init__(self, arg: str | None = None) -> None:
        self.name, self.version = "picky", "picky 1.0"
        self.calls: list[int] = []

    def calculator(self) -> Calculator:
        return _PickyCalculator()

    def evaluate(self, atoms):  # type: ignore[no-untyped-def]
        self.calls.append(len(atoms))
        return super().evaluate(atoms)


def test_one_failure_in_a_batch_leaves_the_others_alone() -> None:
    register_potential("picky", _PickyPotential, overwrite=True)
    try:
        cells = [_strained(("Li", "F"), 4.03), _strained(("Na", "Cl"), 5.64), _strained(("Li", "Cl"), 5.13)]
        results = relax_many(cells, RelaxConfig(potential="picky", max_steps=5), batch_size=3)
        assert [r.status for r in results] == ["converged", "failed", "converged"]
        assert results[1].reason == "relaxation error: RuntimeError: no sodium here"
        assert [r.formula for r in results] == ["LiF", "NaCl", "LiCl"]
        calls = get_potential("picky").calls  # type: ignore[attr-defined]
        assert calls[0] == 3 and calls[1:4] == [1, 1, 1]  # the batch, then each cell alone to find the culprit
    finally:
        unregister_potential("picky")


def test_relax_many_reports_in_input_order_across_batches() -> None:
    register_potential("picky", _PickyPotential, overwrite=True)
    try:
        cells = [_strained(("Li", "F"), 4.03 + 0.01 * k) for k in range(5)]
        seen: list[int] = []
        results = relax_many(cells, RelaxConfig(potential="picky"), batch_size=2, on_result=lambda i, r: seen.append(i))
        assert sorted(seen) == [0, 1, 2, 3, 4] and len(results) == 5
        assert all(r.status == "converged" for r in results)
        with pytest.raises(ValueError, match="batch_size"):
            relax_many(cells, RelaxConfig(potential="picky"), batch_size=0)
    finally:
        unregister_potential("picky")


def test_point_evaluation_default_uses_one_calculator_per_cell() -> None:
    register_potential("picky", _PickyPotential, overwrite=True)
    try:
        points = get_potential("picky").evaluate([_strained(("Li", "F"), 4.03).to_ase_atoms()])
        assert isinstance(points[0], PointEvaluation)
        assert points[0].energy == pytest.approx(-1.5 - 2.0)  # CONST_ENERGIES Li + F
        assert points[0].forces.shape == (2, 3) and points[0].stress.shape == (6,)
    finally:
        unregister_potential("picky")
