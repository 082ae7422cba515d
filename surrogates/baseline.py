"""Classical baselines on the same splits as the GNNs: a dummy mean predictor and a scikit-learn model on
composition (and, where a structure exists, simple structure) descriptors.

Descriptors of one material (``D`` = 4 x 7 + 4 + 3 = 35 floats):

- for each elemental property (Z, Pauling electronegativity, atomic radius in Å, row, group, atomic mass
  in amu, Mendeleev number): the atomic-fraction-weighted mean, weighted std, min and max over the
  elements present;
- number of elements, largest and smallest atomic fraction, Li fraction;
- volume per atom (Å³), density (g/cm³) and sites per cell from the structure, NaN without one (both
  models handle NaN).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
from pymatgen.core import Composition, Element, Structure

from core.signing import read_signed, write_signed

__all__ = ["FEATURE_NAMES", "CompositionBaseline", "DummyMean", "featurize"]

_ELEMENT_PROPERTIES = ("Z", "X", "atomic_radius", "row", "group", "atomic_mass", "mendeleev_no")
FEATURE_NAMES: tuple[str, ...] = (
    *(f"{p}_{s}" for p in _ELEMENT_PROPERTIES for s in ("mean", "std", "min", "max")),
    "n_elements",
    "max_fraction",
    "min_fraction",
    "li_fraction",
    "volume_per_atom",
    "density",
    "n_sites",
)


@cache
def _element_vector(symbol: str) -> np.ndarray:
    """``(7,)`` float64 elemental properties (NaN where pymatgen has none)."""
    el = Element(symbol)
    out = []
    for name in _ELEMENT_PROPERTIES:
        try:
            value = getattr(el, name)
            out.append(float(value) if value is not None else np.nan)
        except (AttributeError, TypeError, ValueError):
            out.append(np.nan)
    return np.asarray(out, dtype=np.float64)


def featurize(items: Sequence[Structure | Composition | str]) -> np.ndarray:
    """Descriptors ``(n, D)`` float64 of structures, compositions or formulas (see the module docstring)."""
    rows = []
    for item in items:
        structure = item if isinstance(item, Structure) else None
        comp = item.composition if isinstance(item, Structure) else Composition(item)
        fractions = comp.fractional_composition.get_el_amt_dict()
        symbols = list(fractions)
        w = np.asarray([fractions[s] for s in symbols], dtype=np.float64)  # (m,) sums to 1
        props = np.stack([_element_vector(s) for s in symbols])  # (m, 7)
        mean = np.nansum(w[:, None] * props, axis=0)
        std = np.sqrt(np.nansum(w[:, None] * (props - mean) ** 2, axis=0))
        stats = np.stack([mean, std, np.nanmin(props, axis=0), np.nanmax(props, axis=0)], axis=1).reshape(-1)
        extra = [len(symbols), w.max(), w.min(), fractions.get("Li", 0.0)]
        if structure is not None:
            geometry = [structure.volume / len(structure), float(structure.density), len(structure)]
        else:
            geometry = [np.nan, np.nan, np.nan]
        rows.append(np.concatenate([stats, extra, geometry]))
    if not rows:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.asarray(rows, dtype=np.float64)


@dataclass
class DummyMean:
    """Predicts the training mean for everything (the floor every model must beat)."""

    mean: float = 0.0

    def fit(self, items: Sequence[object], y: Sequence[float]) -> DummyMean:
        self.mean = float(np.mean(np.asarray(y, dtype=np.float64)))
        return self

    def predict(self, items: Sequence[object]) -> np.ndarray:
        """``(n,)`` copies of the training mean."""
        return np.full(len(items), self.mean, dtype=np.float64)


@dataclass
class CompositionBaseline:
    """A random forest (or histogram gradient boosting) on :func:`featurize` descriptors.

    Works on structures and on bare compositions (e.g. OBELiX without CIFs). ``kind`` picks the model;
    ``seed`` makes it deterministic.
    """

    kind: Literal["random_forest", "gradient_boosting"] = "random_forest"
    seed: int = 0
    n_estimators: int = 300
    model: object | None = field(default=None, repr=False)

    def _make(self) -> object:
        from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

        if self.kind == "random_forest":
            return RandomForestRegressor(
                n_estimators=self.n_estimators, min_samples_leaf=1, max_features=0.5, n_jobs=1, random_state=self.seed
            )
        return HistGradientBoostingRegressor(max_iter=self.n_estimators, learning_rate=0.05, random_state=self.seed)

    def fit(self, items: Sequence[Structure | Composition | str], y: Sequence[float]) -> CompositionBaseline:
        x = featurize(items)
        y_arr = np.asarray(y, dtype=np.float64)
        self.model = self._make()
        x = np.nan_to_num(x, nan=-1.0)  # constant filler: NaN columns are all-or-none per data set
        self.model.fit(x, y_arr)  # type: ignore[attr-defined]
        return self

    def predict(self, items: Sequence[Structure | Composition | str]) -> np.ndarray:
        """``(n,)`` float64 predictions."""
        if self.model is None:
            raise RuntimeError("fit the baseline first")
        x = np.nan_to_num(featurize(items), nan=-1.0)
        return np.asarray(self.model.predict(x), dtype=np.float64)  # type: ignore[attr-defined]

    def predict_members(self, items: Sequence[Structure | Composition | str]) -> np.ndarray:
        """Per-tree predictions ``(T, n)`` of a random forest (mean = :meth:`predict`); for gradient
        boosting, ``(1, n)``. The spread over trees is a cheap uncertainty for composition-only models."""
        if self.model is None:
            raise RuntimeError("fit the baseline first")
        if self.kind != "random_forest":
            return self.predict(items)[None, :]
        x = np.nan_to_num(featurize(items), nan=-1.0)
        return np.stack([tree.predict(x) for tree in self.model.estimators_]).astype(np.float64)  # type: ignore[attr-defined]

    def save(self, path: Path | str) -> Path:
        """Pickle the fitted baseline to ``path``."""
        return write_signed(Path(path), pickle.dumps(self))

    @staticmethod
    def load(path: Path | str) -> CompositionBaseline:
        """Read a baseline written by :meth:`save` (refused unless signed
        by this installation: core.signing)."""
        obj = pickle.loads(read_signed(Path(path)))  # refused unless this installation wrote it
        if not isinstance(obj, CompositionBaseline):
            raise TypeError(f"{path} does not hold a CompositionBaseline")
        return obj
