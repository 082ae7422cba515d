"""Loop surrogates made of descriptor ensembles, with the loop interface of ``GNNEnsemble``.

``EnsembleConfig.descriptor`` (``auto``, ``chgnet-gb``, ``hurdle-gb``, ``gb-ensemble``) makes the retrain stage
fit a :class:`DescriptorSurrogate` per target instead of a GNN ensemble: ``fit(structures, y, config=...)``,
``predict_members(structures)`` giving ``(S, n)`` posterior draws (``S = n_samples``, a fixed seed, so the same
model gives the same draws; a hurdle target's draws are its mixture: exact zeros and positive values),
``save``/``load`` (``descriptor.pkl``, then ``ensemble.json`` last: the registry's completeness check) and
``metrics``.

Features (``describe`` + CHGNet, :func:`surrogates.potential_features.potential_features`) are cached per
process by structure, so a campaign over a fixed pool computes them once (27 s for perov_5's 3,787 cells on
2 threads) and a retrain on a few more labels costs only the boosting fits (about 1-5 s per target for
100-400 labels).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from core.errors import ModelNotFoundError
from core.signing import UntrustedFileError
from surrogates.families import SURROGATE_FAMILIES

from .config import EnsembleConfig
from .descriptor_models import DescriptorEnsemble, make_descriptor_ensemble, resolve_architecture
from .descriptors import DESCRIPTOR_NAMES
from .persistence import ENSEMBLE_FILE

__all__ = ["DESCRIPTOR_FILE", "DescriptorSurrogate", "is_descriptor_folder", "surrogate_features"]

DESCRIPTOR_FILE = "descriptor.pkl"
#: Posterior draws per candidate that acquisition reads.
N_SAMPLES = 32
#: Boosting settings of loop surrogates (100-400 labels, a retrain every round): a third of the trees of the
#: property models at three times the learning rate (``train`` keeps 600 trees at 0.05 for 3,000 records).
LOOP_BOOSTING: dict[str, Any] = {"max_iter": 200, "learning_rate": 0.15, "error_max_iter": 100,
                                 "error_learning_rate": 0.09}  # fmt: skip
_FEATURES: dict[str, np.ndarray] = {}
_MAX_CACHED = 200_000


def _key(structure: Structure) -> str:
    lattice = np.round(structure.lattice.matrix, 6).tobytes()
    coords = np.round(structure.frac_coords, 6).tobytes()
    species = ",".join(str(sp) for sp in structure.species).encode()
    return hashlib.sha1(lattice + coords + species).hexdigest()


def surrogate_features(structures: Sequence[Structure]) -> np.ndarray:
    """``describe`` + CHGNet features ``(n, D)`` of ``structures``, computed once per structure per process."""
    keys = [_key(s) for s in structures]
    missing = {k: s for k, s in zip(keys, structures, strict=True) if k not in _FEATURES}
    if missing:
        rows = DescriptorEnsemble(kind="crossfit", features="describe+chgnet").featurize(list(missing.values()))
        if len(_FEATURES) + len(rows) > _MAX_CACHED:
            _FEATURES.clear()
        _FEATURES.update(zip(missing, rows, strict=True))
    if not keys:
        return np.zeros((0, len(DESCRIPTOR_NAMES)))
    return np.stack([_FEATURES[k] for k in keys])


def _columns(model: DescriptorEnsemble, x: np.ndarray) -> np.ndarray:
    """The columns of ``x`` (``describe+chgnet``) that ``model``'s feature set uses."""
    return x if model.features == "describe+chgnet" else x[:, : len(DESCRIPTOR_NAMES)]


def is_descriptor_folder(directory: Path | str) -> bool:
    """True when ``directory`` holds a :class:`DescriptorSurrogate`."""
    return (Path(directory) / DESCRIPTOR_FILE).is_file()


@SURROGATE_FAMILIES.register("descriptor")
@dataclass
class DescriptorSurrogate:
    """A fitted descriptor ensemble for one loop target.

    Attributes:
        model: the ensemble.
        architecture: its architecture (``chgnet-gb``, ``hurdle-gb``, ``gb-ensemble``).
        property_name, version: the target and the loop model id.
        config: the settings it was trained with.
        metrics: ``architecture``, ``n_train``, ``train_time_s`` and the in-sample MAE (target units).
        n_samples: draws per candidate of :meth:`predict_members`.
    """

    model: DescriptorEnsemble
    architecture: str
    property_name: str
    version: str
    config: EnsembleConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    n_samples: int = N_SAMPLES

    @property
    def n_members(self) -> int:
        return self.n_samples

    @classmethod
    def fit(
        cls,
        structures: Sequence[Structure],
        y: Sequence[float],
        *,
        config: EnsembleConfig,
        property_name: str,
        version: str,
        init_from: Any = None,
    ) -> DescriptorSurrogate:
        """Fit on ``structures`` with targets ``y`` ``(n,)``; ``init_from`` is ignored (no warm start).

        ``config.descriptor`` ``auto`` resolves per target (:func:`resolve_architecture`); a hurdle needs a zero
        and two positive values and cross-fitting two records per fold, else the bootstrap ``gb-ensemble`` is
        used (recorded in ``metrics['architecture']``).
        """
        start = time.perf_counter()
        y_arr = np.asarray(y, dtype=np.float64)
        architecture = resolve_architecture(config.descriptor, y_arr) or "chgnet-gb"
        if architecture == "hurdle-gb" and ((y_arr > 0).sum() < 2 or (y_arr == 0).sum() < 1):
            architecture = "chgnet-gb"
        if architecture == "chgnet-gb" and len(y_arr) < 2 * max(config.n_members, 2):
            architecture = "gb-ensemble"
        overrides: dict[str, Any] = {
            "max_iter": LOOP_BOOSTING["max_iter"],
            "learning_rate": LOOP_BOOSTING["learning_rate"],
        }
        if architecture == "gb-ensemble":
            overrides["features"] = "describe"
        if architecture == "chgnet-gb":
            overrides.update(error_max_iter=LOOP_BOOSTING["error_max_iter"],
                             error_learning_rate=LOOP_BOOSTING["error_learning_rate"])  # fmt: skip
        model = make_descriptor_ensemble(
            architecture,
            n_members=max(config.n_members, 2) if architecture == "chgnet-gb" else config.n_members,
            seed=config.seed,
            num_threads=config.num_threads,
            **overrides,
        )
        x = _columns(model, surrogate_features(structures))
        model.fit(None, y_arr, x=x)
        mean, _ = model.predict(None, x=x)
        metrics = {
            "architecture": architecture,
            "n_train": len(y_arr),
            "train_mae": float(np.abs(mean - y_arr).mean()),
            "train_time_s": time.perf_counter() - start,
        }
        return cls(model, architecture, property_name, version, config, metrics)

    def predict_members(self, structures: Sequence[Structure]) -> np.ndarray:
        """``(S, n)`` posterior draws (target units) for ``structures``, deterministic for the model."""
        return self.predict_features(surrogate_features(structures))

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """``(S, n)`` posterior draws from :func:`surrogate_features` rows ``x`` ``(n, D)``."""
        if len(x) == 0:
            return np.zeros((self.n_samples, 0))
        return self.model.sample(None, self.n_samples, seed=self.config.seed, x=_columns(self.model, x))

    def save(self, directory: Path | str) -> Path:
        """Write ``descriptor.pkl`` and then ``ensemble.json`` (atomically: its presence marks completeness)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / DESCRIPTOR_FILE)
        meta = {
            "kind": "descriptor",
            "architecture": self.architecture,
            "property_name": self.property_name,
            "version": self.version,
            "n_samples": self.n_samples,
            "config": self.config.model_dump(mode="json"),
            "metrics": self.metrics,
        }
        tmp = directory / f".{ENSEMBLE_FILE}.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, directory / ENSEMBLE_FILE)
        return directory

    @classmethod
    def recognizes(cls, directory: Path | str) -> bool:
        """True when ``directory`` holds one (its signed pickle; the family registry's loader asks)."""
        return is_descriptor_folder(directory)

    @classmethod
    def load(cls, directory: Path | str) -> DescriptorSurrogate:
        """Read a surrogate written by :meth:`save`.

        Raises:
            ModelNotFoundError: a file is missing or corrupt.
        """
        directory = Path(directory)
        try:
            meta = json.loads((directory / ENSEMBLE_FILE).read_text())
            model = DescriptorEnsemble.load(directory / DESCRIPTOR_FILE)
            return cls(
                model=model,
                architecture=str(meta["architecture"]),
                property_name=str(meta["property_name"]),
                version=str(meta["version"]),
                config=EnsembleConfig.model_validate(meta["config"]),
                metrics=dict(meta.get("metrics", {})),
                n_samples=int(meta.get("n_samples", N_SAMPLES)),
            )
        except (OSError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError, UntrustedFileError) as exc:
            raise ModelNotFoundError(f"descriptor surrogate at {directory} is missing or corrupt: {exc}") from exc
