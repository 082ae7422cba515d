"""Relaxation: real CHGNet behaviour on tiny cells, and every failure path with fake potentials."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from pydantic import ValidationError
from pymatgen.core import Lattice, Structure

from core.errors import ConfigError
from oracle.relax import RelaxationResult, RelaxConfig, relax_many, relax_structure

Rocksalt = Callable[..., Structure]


def _fcc(a: float, element: str = "Li") -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [element], [[0, 0, 0]]).get_primitive_structure()


# -- configuration ---------------------------------------------------------------------------------


def test_config_is_strict_and_frozen() -> None:
    config = RelaxConfig()
    assert (config.potential, config.fmax, config.max_steps, config.optimizer) == ("chgnet", 0.1, 200, "FIRE")
    with pytest.raises(ValidationError):
        RelaxConfig(fmx=0.05)  # typo: extra fields are forbidden
    with pytest.raises(ValidationError):
        RelaxConfig(fmax=0)
    with pytest.raises(ValidationError):
        RelaxConfig(max_steps=-1)
    with pytest.raises(ValidationError):
        config.fmax = 0.2  # frozen


def test_unknown_potential_raises_config_error(make_rocksalt: Rocksalt) -> None:
    with pytest.raises(ConfigError, match="unknown potential"):
        relax_structure(make_rocksalt(4.03), RelaxConfig(potential="nope"))
    with pytest.raises(ConfigError, match="unknown potential"):
        relax_many([make_rocksalt(4.03)], RelaxConfig(potential="nope"))


# -- failures that never reach a real model --------------------------------------------------------


@pytest.mark.usefixtures("fake_potentials")
def test_atoms_too_close_fail_before_any_calculation() -> None:
    structure = Structure(Lattice.cubic(5.0), ["Li", "F"], [[0, 0, 0], [0.3, 0, 0]], coords_are_cartesian=True)
    result = relax_structure(structure, RelaxConfig(potential="fake:const"))
    assert result.status == "failed"
    assert "too close" in result.reason and "0.300" in result.reason
    assert result.energy_total is None and result.relaxed_structure is None


@pytest.mark.usefixtures("fake_potentials")
def test_partial_occupancy_fails(make_rocksalt: Rocksalt) -> None:
    structure = make_rocksalt(4.03)
    structure.replace(0, {"Li": 0.5, "Na": 0.5})
    result = relax_structure(structure, RelaxConfig(potential="fake:const"))
    assert result.status == "failed"
    assert result.reason.startswith("partial occupancy")


@pytest.mark.usefixtures("fake_potentials")
def test_nan_energy_fails_with_reason(make_rocksalt: Rocksalt) -> None:
    result = relax_structure(make_rocksalt(4.03), RelaxConfig(potential="fake:nan"))
    assert result.status == "failed"
    assert "NaN" in result.reason
    assert result.potential == "fake:nan" and result.potential_version == "fake 1.0"


@pytest.mark.usefixtures("fake_potentials")
def test_exploding_forces_fail(make_rocksalt: Rocksalt) -> None:
    result = relax_structure(make_rocksalt(4.03), RelaxConfig(potential="fake:explode", max_force_abort=50))
    assert result.status == "failed"
    assert result.reason.startswith("exploding") and "1000.0 eV/Å" in result.reason


@pytest.mark.usefixtures("fake_potentials")
def test_calculator_exception_is_caught(make_rocksalt: Rocksalt) -> None:
    result = relax_structure(make_rocksalt(4.03), RelaxConfig(potential="fake:boom"))
    assert result.status == "failed"
    assert result.reason == "relaxation error: RuntimeError: boom"


@pytest.mark.usefixtures("fake_potentials")
def test_timeout_stops_the_optimizer() -> None:
    # Each evaluation sleeps 50 ms and fmax is unreachable, so only the timeout can stop it.
    config = RelaxConfig(potential="fake:slow", fmax=1e-9, max_steps=10_000, timeout_s=0.3)
    result = relax_structure(_fcc(4.0, "Cu"), config)
    assert result.status == "failed"
    assert result.reason.startswith("timeout after")
    assert 0.3 <= result.elapsed_s < 2.0
    assert 0 < result.n_steps < 40


@pytest.mark.usefixtures("fake_potentials")
def test_volume_change_limit() -> None:
    # Lennard-Jones (sigma 2 Å) fcc minimum is near a = 2**(1/6)*2*sqrt(2) = 3.17 Å: starting at 4.2 Å
    # the cell must shrink by > 50 %, beyond a 10 % limit.
    config = RelaxConfig(potential="fake:lj", max_volume_change=0.1, fmax=0.01)
    result = relax_structure(_fcc(4.2, "Cu"), config)
    assert result.status == "failed"
    assert result.reason.startswith("volume change -")


@pytest.mark.usefixtures("fake_potentials")
def test_unconverged_keeps_energies() -> None:
    config = RelaxConfig(potential="fake:lj", fmax=1e-6, max_steps=2)
    result = relax_structure(_fcc(3.4, "Cu"), config)
    assert result.status == "unconverged"
    assert result.n_steps == 2
    assert "not converged within 2 steps" in result.reason
    assert result.energy_per_atom is not None and math.isfinite(result.energy_per_atom)
    assert result.relaxed_structure is not None


@pytest.mark.usefixtures("fake_potentials")
def test_relax_many_keeps_going_after_failures(make_rocksalt: Rocksalt) -> None:
    good = make_rocksalt(4.03)
    too_close = Structure(Lattice.cubic(5.0), ["Li", "F"], [[0, 0, 0], [0.2, 0, 0]], coords_are_cartesian=True)
    disordered = make_rocksalt(4.03)
    disordered.replace(1, {"F": 0.5, "Cl": 0.5})
    results = relax_many([too_close, good, disordered, good], RelaxConfig(potential="fake:const"))
    assert [r.status for r in results] == ["failed", "converged", "failed", "converged"]
    assert all(isinstance(r, RelaxationResult) for r in results)
    assert results[1].energy_per_atom == pytest.approx(-1.75)  # (-1.5 - 2.0) / 2
    assert results[1].n_steps == 0


# -- real CHGNet -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_chgnet_single_point_close_to_relaxed(make_rocksalt: Rocksalt) -> None:
    lif = make_rocksalt(4.07)  # near the PBE/CHGNet lattice constant
    single = relax_structure(lif, RelaxConfig(max_steps=0))
    relaxed = relax_structure(lif, RelaxConfig(fmax=0.02))
    assert single.n_steps == 0
    assert single.status in ("converged", "unconverged")
    assert single.energy_per_atom is not None and math.isfinite(single.energy_per_atom)
    assert single.volume_change == 0.0
    assert relaxed.status == "converged" and relaxed.energy_per_atom is not None
    # CHGNet puts rocksalt LiF near -5.05 eV/atom; a 1 % lattice offset costs only meV/atom.
    assert -5.3 < single.energy_per_atom < -4.8
    assert relaxed.energy_per_atom <= single.energy_per_atom + 1e-6
    assert single.energy_per_atom - relaxed.energy_per_atom < 0.02


@pytest.mark.slow
def test_chgnet_relaxes_strained_lif(make_rocksalt: Rocksalt) -> None:
    strained = make_rocksalt(4.07 * 1.05)  # 5 % tensile strain
    result = relax_structure(strained, RelaxConfig(fmax=0.02))
    assert result.status == "converged", result.reason
    assert result.n_steps > 0
    assert result.max_force is not None and result.max_force < 0.02
    assert result.initial_energy_per_atom is not None and result.energy_per_atom is not None
    assert result.energy_per_atom < result.initial_energy_per_atom - 0.01
    assert result.volume_change is not None and result.volume_change < -0.05
    relaxed = Structure.from_dict(result.relaxed_structure)
    a = relaxed.lattice.a * 2**0.5  # primitive fcc edge -> cubic lattice constant
    assert 3.95 < a < 4.2  # experiment 4.03 Å, PBE ~4.07 Å
    assert relaxed.composition.reduced_formula == "LiF"
    assert result.potential == "chgnet" and result.potential_version.startswith("chgnet ")


def test_a_structures_time_limit_does_not_shrink_with_its_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """timeout_s is per structure: its share of each batched evaluation. A fake clock that advances 1 s per
    structure evaluated makes it exact: alone or in a batch of 4, each structure gets the same steps."""
    from types import SimpleNamespace

    from ase.calculators.lj import LennardJones

    import oracle.relax as relax_module
    from oracle.potentials import Potential
    from oracle.relax import relax_batch

    clock = [0.0]

    class Ticking(LennardJones):
        def calculate(self, *args: object, **kwargs: object) -> None:
            clock[0] += 1.0
            super().calculate(*args, **kwargs)

    class TickPotential(Potential):
        name, version = "tick", "tick 1"

        def calculator(self) -> LennardJones:
            return Ticking(sigma=2.0, epsilon=0.1, rc=6.0, smooth=True)

    monkeypatch.setattr(relax_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    config = RelaxConfig(potential="tick", fmax=1e-9, max_steps=10_000, timeout_s=5.5)
    alone = relax_batch([_fcc(4.0, "Cu")], config, potential=TickPotential())
    batch = relax_batch([_fcc(4.0 + 0.01 * k, "Cu") for k in range(4)], config, potential=TickPotential())
    assert [r.status for r in (*alone, *batch)] == ["failed"] * 5
    assert all(r.reason == "timeout after 6.0 s of its own (limit 5.5 s)" for r in (*alone, *batch)), batch
    assert {r.n_steps for r in batch} == {alone[0].n_steps} == {5}  # (batch-wide wall time: 1 step each)
