"""Shared fixtures: small synthetic 2-atom crystals labelled with a smooth geometric property."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download at test time

CATIONS = ("Li", "Na", "K", "Mg", "Ca")
ANIONS = ("F", "Cl", "Br", "O", "S")


def synthetic_dataset(n: int, seed: int) -> tuple[list[Structure], np.ndarray]:
    """``n`` primitive rocksalt / CsCl cells (2 sites) of random elements and lattice constants.

    The label is the volume per atom in Å³ (about 8-46), which a GNN can infer from bond lengths.
    Structures are built directly (``Structure.from_spacegroup`` costs ~0.4 s per rocksalt cell).
    """
    rng = np.random.default_rng(seed)
    structures: list[Structure] = []
    for i in range(n):
        cation, anion = str(rng.choice(CATIONS)), str(rng.choice(ANIONS))
        if i % 2 == 0:  # rocksalt, fcc primitive cell
            a = rng.uniform(4.0, 6.0)
            lattice = Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
        else:  # CsCl, simple cubic
            lattice = Lattice.cubic(rng.uniform(3.0, 4.5))
        structures.append(Structure(lattice, [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    labels = np.array([s.volume / len(s) for s in structures])
    return structures, labels


@pytest.fixture(scope="session")
def make_dataset() -> Callable[[int, int], tuple[list[Structure], np.ndarray]]:
    """``make_dataset(n, seed) -> (structures, labels (n,))``; see :func:`synthetic_dataset`."""
    return synthetic_dataset
