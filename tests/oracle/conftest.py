"""Fixtures for oracle tests: offline hub, a temporary data home, and fake potentials."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may download during tests

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.lj import LennardJones
from pymatgen.core import Lattice, Structure

from oracle.potentials import Potential, register_potential, unregister_potential

# Per-element energies (eV/atom) of the "fake:const" potential.
CONST_ENERGIES = {"Li": -1.5, "Na": -1.0, "F": -2.0, "Cl": -1.75, "O": -4.0}


class FakeCalculator(Calculator):
    """A test calculator: NaN energies, exploding forces, an exception, or constant per-element energies."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, mode: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.mode = mode

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        forces = np.zeros((n, 3))
        energy = sum(CONST_ENERGIES.get(s, -1.0) for s in self.atoms.get_chemical_symbols())
        if self.mode == "nan":
            energy = float("nan")
        elif self.mode == "explode":
            forces[:, 0] = 1e3
        elif self.mode == "boom":
            raise RuntimeError("boom")
        self.results = {"energy": energy, "free_energy": energy, "forces": forces, "stress": np.zeros(6)}


class SlowLennardJones(LennardJones):
    """Lennard-Jones that sleeps on every evaluation (for timeout tests)."""

    def calculate(self, *args: object, **kwargs: object) -> None:
        time.sleep(0.05)
        super().calculate(*args, **kwargs)


class FakePotential(Potential):
    """``fake:<mode>`` with mode nan | explode | boom | const | lj | slow."""

    def __init__(self, mode: str | None) -> None:
        self.mode = mode or "const"
        self.name = f"fake:{self.mode}"
        self.version = "fake 1.0"
        self.n_calculators = 0

    def calculator(self) -> Calculator:
        self.n_calculators += 1
        if self.mode == "lj":
            return LennardJones(sigma=2.0, epsilon=0.1, rc=6.0, smooth=True)
        if self.mode == "slow":
            return SlowLennardJones(sigma=2.0, epsilon=0.1, rc=6.0, smooth=True)
        return FakeCalculator(self.mode)


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every cache of a test inside its tmp_path."""
    monkeypatch.setenv("BATTERY_DISCOVERY_HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True)
def single_torch_thread() -> Iterator[None]:
    """Tiny cells gain nothing from intra-op threads; on a shared 2-core machine they spin and stall."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fake_potentials() -> Iterator[None]:
    """Register the ``fake`` potential family for one test."""
    register_potential("fake", FakePotential, overwrite=True)
    yield
    unregister_potential("fake")


def rocksalt(a: float, cation: str = "Li", anion: str = "F") -> Structure:
    """Primitive 2-atom rocksalt cell with cubic lattice constant ``a`` (Å)."""
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()


@pytest.fixture
def make_rocksalt() -> Callable[..., Structure]:
    """Factory for primitive rocksalt cells."""
    return rocksalt
