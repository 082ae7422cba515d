"""Features from a pretrained universal potential: CHGNet's energy and crystal embedding of each structure.

A universal potential trained on the Materials Project's relaxations (CHGNet 0.3.0, inside its wheel) already
knows a great deal about a crystal: its energy per atom is a formation energy once elemental references are
subtracted, and its pooled crystal feature vector is a learned descriptor. ``potential_features(items)`` gives
``(n, 1 + 64 + 103)`` float64 rows:

- ``chgnet_energy``: CHGNet's static energy of the structure as given (eV/atom, no relaxation);
- ``chgnet_fea_0`` ... ``chgnet_fea_63``: CHGNet's crystal feature (the mean-pooled atom features before its
  energy head, dimensionless);
- ``x_H`` ... ``x_Lr``: atomic fractions of elements 1-103 (the linear "learned elemental references" part of
  :class:`surrogates.descriptor_models.DescriptorEnsemble`'s ``crossfit`` kind).

A bare composition or formula has NaN for the CHGNet columns. One forward pass per batch of 64 structures, no
gradients: 27 s for the 3,787 five-atom cells of perov_5 on 2 cores.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
from pymatgen.core import Composition, Element, Structure

__all__ = ["ENERGY_COLUMN", "FRACTION_COLUMNS", "N_CRYSTAL_FEATURES", "POTENTIAL_FEATURE_NAMES", "potential_features"]

N_CRYSTAL_FEATURES = 64
MAX_Z = 103
POTENTIAL_FEATURE_NAMES: tuple[str, ...] = (
    "chgnet_energy",
    *(f"chgnet_fea_{i}" for i in range(N_CRYSTAL_FEATURES)),
    *(f"x_{Element.from_Z(z).symbol}" for z in range(1, MAX_Z + 1)),
)
#: Column of the CHGNet energy (eV/atom) and the slice of the element fractions in ``potential_features`` rows.
ENERGY_COLUMN = 0
FRACTION_COLUMNS = slice(1 + N_CRYSTAL_FEATURES, 1 + N_CRYSTAL_FEATURES + MAX_Z)


def _fractions(comp: Composition) -> np.ndarray:
    row = np.zeros(MAX_Z)
    for el, frac in comp.fractional_composition.items():
        z = getattr(el, "Z", 0)
        if 1 <= z <= MAX_Z:
            row[z - 1] = frac
    return row


def potential_features(
    items: Sequence[Structure | Composition | str], *, batch_size: int = 64, potential: str = "chgnet"
) -> np.ndarray:
    """Rows ``(n, len(POTENTIAL_FEATURE_NAMES))`` for structures, compositions or formulas (see the module
    docstring); ``potential`` is an ``oracle.potentials`` spec of the CHGNet family."""
    from oracle.potentials import CHGNetPotential, get_potential

    out = np.full((len(items), len(POTENTIAL_FEATURE_NAMES)), np.nan)
    structures: list[Structure] = []
    rows: list[int] = []
    for i, item in enumerate(items):
        if isinstance(item, Structure):
            out[i, FRACTION_COLUMNS] = _fractions(item.composition)
            structures.append(item)
            rows.append(i)
        else:
            out[i, FRACTION_COLUMNS] = _fractions(Composition(item))
    if structures:
        model = get_potential(potential)
        if not isinstance(model, CHGNetPotential):
            raise ValueError(f"potential features need a CHGNet potential, not {potential!r}")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            preds = model.model.predict_structure(structures, task="e", return_crystal_feas=True, batch_size=batch_size)
        if isinstance(preds, dict):
            preds = [preds]
        for i, pred in zip(rows, preds, strict=True):
            out[i, ENERGY_COLUMN] = float(np.asarray(pred["e"]).reshape(-1)[0])
            out[i, 1 : 1 + N_CRYSTAL_FEATURES] = np.asarray(pred["crystal_fea"], dtype=np.float64).reshape(-1)
    out[~np.isfinite(out)] = np.nan
    return out
