"""Test doubles for the oracle: a cheap, deterministic potential usable wherever a spec is taken.

``register_toy_potential()`` adds ``toy`` to the registry: Lennard-Jones forces (so relaxations
move and converge) plus a fixed energy per element (so formation energies are known numbers).
``toy:nan-<El>`` answers NaN energies and forces for every compound holding element ``El`` (a diverging oracle;
the element's own reference structure stays finite).

``count_oracle_calls()`` counts what any potential (the toy one, CHGNet, ...) is asked while it is active: the
structures given to the relaxation (relaxations and single points, elemental references included) and the cells
evaluated. A re-run that redoes no work adds nothing to either::

    with count_oracle_calls() as calls:
        StageRunner(store, config).evaluate(1, batch)
    assert calls.structures == ["LiF"] and calls.cells > 0
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.lj import LennardJones

from oracle import relax
from oracle.potentials import Potential, register_potential, unregister_potential

#: Energy per atom of each element in any compound under the toy potential (eV/atom), before LJ.
TOY_ELEMENT_ENERGY = {"Li": -2.0, "Na": -1.5, "O": -5.0, "S": -4.0, "F": -3.0, "Cl": -2.5, "Se": -3.5}


class ToyCalculator(Calculator):
    """LJ energy/forces/stress plus a per-element constant: ``E = E_LJ + sum_i e(Z_i)``."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, *, nan_element: str | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._lj = LennardJones(sigma=1.8, epsilon=0.01, rc=5.0, smooth=True)
        self.nan_element = nan_element

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        lj = self.atoms.copy()
        lj.calc = self._lj
        offset = sum(TOY_ELEMENT_ENERGY.get(s, -1.0) for s in self.atoms.get_chemical_symbols())
        energy = float(lj.get_potential_energy()) + offset
        forces = np.asarray(lj.get_forces())
        symbols = set(self.atoms.get_chemical_symbols())
        if self.nan_element in symbols and len(symbols) > 1:
            energy, forces = float("nan"), np.full_like(forces, np.nan)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": forces,
            "stress": np.asarray(lj.get_stress()),
        }


class ToyPotential(Potential):
    """``toy``: the :class:`ToyCalculator`; loads instantly."""

    def __init__(self, variant: str | None = None) -> None:
        self.name = "toy" if not variant else f"toy:{variant}"
        self.version = "toy 1.0"
        self.nan_element = variant.removeprefix("nan-") if variant and variant.startswith("nan-") else None

    def calculator(self) -> Calculator:
        return ToyCalculator(nan_element=self.nan_element)


def register_toy_potential() -> None:
    """Add ``toy`` to the potential registry (idempotent)."""
    register_potential("toy", ToyPotential, overwrite=True)


def unregister_toy_potential() -> None:
    """Remove ``toy`` from the registry."""
    unregister_potential("toy")


@dataclass
class OracleCalls:
    """What the oracle was asked while :func:`count_oracle_calls` was active (in any thread of this process)."""

    #: the reduced formula of every structure handed to ``oracle.relax.relax_batch``, in order
    structures: list[str] = field(default_factory=list)
    #: cells the potential evaluated (one per structure per optimizer step)
    cells: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


@contextmanager
def count_oracle_calls() -> Iterator[OracleCalls]:
    """Count the structures relaxed (or single-pointed) and the cells evaluated by any potential until the block
    ends, by wrapping :func:`oracle.relax.relax_batch` and its potential call. MD (``oracle.md``) is not counted."""
    calls = OracleCalls()
    real_batch, real_evaluate = relax.relax_batch, relax._evaluate

    def relax_batch(structures: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        with calls._lock:
            calls.structures += [s.composition.reduced_formula if len(s) else "" for s in structures]
        return real_batch(structures, *args, **kwargs)

    def evaluate(potential: Potential, jobs: Sequence[Any]) -> Any:
        with calls._lock:
            calls.cells += len(jobs)
        return real_evaluate(potential, jobs)

    with mock.patch.object(relax, "relax_batch", relax_batch), mock.patch.object(relax, "_evaluate", evaluate):
        yield calls
