"""Registered property models as predictors the loop can call: mean, std and posterior samples per structure.

``load_predictor(store, "mp-band-gap")`` gives a :class:`PropertyPredictor` of the newest registered version
(or ``"mp-band-gap-v2"`` for one version); ``ensure_model(store, "band_gap", database=...)`` returns the id of
the newest registered default model of a property (:data:`DEFAULT_MODELS`), training and registering it first
when none exists, from the public data in ``../shared/data`` beside the checkout when that folder is there.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from pymatgen.core import Structure

from core.errors import ConfigError, ModelNotFoundError
from core.paths import project_root

from .registry import campaign_of, resolve_model
from .workflow import MODEL_FILE, PropertyModel

if TYPE_CHECKING:
    from store.repository import CandidateStore

__all__ = [
    "DEFAULT_ARCHITECTURES",
    "DEFAULT_MODELS",
    "DEFAULT_N_MEMBERS",
    "DEFAULT_SAMPLES",
    "PropertyPredictor",
    "RegisteredPredictor",
    "default_model_dir",
    "ensure_model",
    "load_predictor",
    "shared_data_dir",
]

#: Property -> (registry name, data set spec) of the model :func:`ensure_model` trains when none is registered.
DEFAULT_MODELS: dict[str, tuple[str, str]] = {
    "band_gap": ("mp-band-gap", "mp20:val"),
    "log10_conductivity": ("obelix-conductivity", "obelix-liverpool"),
}
#: Property -> descriptor architecture of its default model (``surrogates.descriptor_models``).
DEFAULT_ARCHITECTURES: dict[str, str] = {"band_gap": "hurdle-gb", "log10_conductivity": "gb-ensemble"}
#: Members of a default model (``battery-discovery train --ensemble 8`` trains the same model).
DEFAULT_N_MEMBERS = 8
#: Posterior draws of :meth:`RegisteredPredictor.predict_samples` when a descriptor model is asked for none.
DEFAULT_SAMPLES = 64


@runtime_checkable
class PropertyPredictor(Protocol):
    """A registered property model: predictions with uncertainty in the target's units."""

    property_name: str
    """What is predicted, e.g. ``'band_gap'``."""
    unit: str
    """Description with unit, e.g. ``'band gap, PBE/GGA+U, Materials Project; 0 for metals (eV)'``."""
    model_id: str
    """Registry id ``'<name>-v<k>'``."""

    def predict(self, structures: Sequence[Structure]) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(n,)`` and std ``(n,)`` in target units."""
        ...

    def predict_samples(
        self, structures: Sequence[Structure], n_samples: int | None = None, seed: int = 0
    ) -> np.ndarray:
        """``(S, n)`` posterior samples (members or seeded draws) in target units; deterministic for a seed."""
        ...


@dataclass
class RegisteredPredictor:
    """:class:`PropertyPredictor` of a property model folder (descriptor ensemble, GNN ensemble or baseline)."""

    property_name: str
    unit: str
    model_id: str
    model: PropertyModel

    def predict(self, structures: Sequence[Structure]) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(n,)`` and std ``(n,)``: the mixture of a hurdle model, else the (recalibrated) member spread."""
        if len(structures) == 0:
            return np.zeros(0), np.zeros(0)
        return self.model.predict(list(structures))

    def members(self, structures: Sequence[Structure]) -> np.ndarray:
        """``(K, n)`` member predictions, spread around their mean scaled by the model's std scale."""
        items = list(structures)
        if self.model.ensemble is not None:
            raw = self.model.ensemble.predict_members(items)
        else:
            raw = self.model.baseline.predict_members(items)  # type: ignore[arg-type]
        mean = raw.mean(axis=0, keepdims=True)
        return mean + (raw - mean) * self.model.std_scale

    def predict_samples(
        self, structures: Sequence[Structure], n_samples: int | None = None, seed: int = 0
    ) -> np.ndarray:
        """``(S, n)`` samples in target units, the same for the same ``seed``.

        A descriptor model draws from its predictive distribution (for a hurdle model a draw is 0 with the
        predicted probability of a zero; ``S = n_samples or DEFAULT_SAMPLES``). A GNN ensemble or baseline gives
        its K (std-scaled) members when ``n_samples`` is None, else ``n_samples`` members drawn with a seeded
        generator.
        """
        if n_samples is not None and n_samples < 1:
            raise ConfigError(f"n_samples must be >= 1, got {n_samples}")
        items = list(structures)
        if self.model.descriptor is not None:
            if not items:
                return np.zeros((n_samples or DEFAULT_SAMPLES, 0))
            return self.model.descriptor.sample(items, n_samples or DEFAULT_SAMPLES, seed=seed)
        if not items:
            return np.zeros((n_samples or 1, 0))
        members = self.members(items)
        if n_samples is None:
            return members
        pick = np.random.default_rng(seed).integers(0, members.shape[0], n_samples)
        return members[pick]


def load_predictor(store: CandidateStore, ref: str) -> PropertyPredictor:
    """The registered property model ``ref`` (a name: its newest version; or ``'<name>-v<k>'``).

    Raises:
        ModelNotFoundError: nothing registered under ``ref``, or it is not a property model, or its folder is gone.
    """
    doc = resolve_model(store, ref)
    if not (Path(doc.path) / MODEL_FILE).is_file():
        raise ModelNotFoundError(f"{doc.id} is not a property model with files ({Path(doc.path) / MODEL_FILE} missing)")
    model = PropertyModel.load(doc.path)
    return RegisteredPredictor(
        property_name=model.property_name, unit=str(model.meta.get("unit", doc.unit)), model_id=doc.id, model=model
    )


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the source checkout when it exists (the offline copy of the public data)."""
    root = project_root()
    if root is None:
        return None
    path = root.parent / "shared" / "data"
    return path if path.is_dir() else None


def ensure_model(
    store: CandidateStore,
    property_name: str,
    *,
    database: str,
    on_stage: Callable[[str], None] | None = None,
    cache_dir: Path | None = None,
) -> str:
    """The newest registered id of ``DEFAULT_MODELS[property_name]``, trained and registered first when none is.

    Training uses :data:`DEFAULT_ARCHITECTURES` with :data:`DEFAULT_N_MEMBERS` members and seed 0 (the same as
    ``battery-discovery train --dataset SPEC --property P --name NAME --architecture A --ensemble 8``), reading
    the data from ``cache_dir`` (default :func:`shared_data_dir`) before any download. A file lock per model
    name makes concurrent callers train it once.

    Raises:
        ConfigError: no default model for ``property_name``.
    """
    if property_name not in DEFAULT_MODELS:
        raise ConfigError(f"no default model for {property_name!r}; defaults exist for {', '.join(DEFAULT_MODELS)}")
    name, spec = DEFAULT_MODELS[property_name]
    latest = store.latest_model(campaign_of(name))
    if latest is not None and not (problem := folder_problem(Path(latest.path))):
        return latest.id
    from .config import EnsembleConfig
    from .property_models import train_and_register
    from .registry import next_version, register_property_model

    folder = default_model_dir(property_name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # concurrent callers (any store) train it once
        latest = store.latest_model(campaign_of(name))  # another process may have registered it meanwhile
        if latest is not None and not (problem := folder_problem(Path(latest.path))):
            return latest.id
        if latest is not None:  # missing, corrupt or unsigned files: set aside, train a new version
            if on_stage is not None:
                on_stage(f"default {property_name} model {latest.id} cannot be used ({problem}): retraining")
            _set_aside(Path(latest.path))
        if (folder / MODEL_FILE).is_file() and folder_problem(folder):
            _set_aside(folder)
        if (folder / MODEL_FILE).is_file():  # trained before for another store: register the same folder
            meta = json.loads((folder / MODEL_FILE).read_text())
            if on_stage is not None:
                on_stage(f"registering the default {property_name} model trained before ({folder})")
            return register_property_model(
                store,
                name=name,
                version=next_version(store, name),
                dataset=spec,
                property_name=property_name,
                directory=folder,
                meta=meta,
                n_members=DEFAULT_N_MEMBERS,
            )
        if on_stage is not None:
            on_stage(f"training default {property_name} model {name} on {spec}")
        trained = train_and_register(
            store,
            dataset=spec,
            property_name=property_name,
            name=name,
            config=EnsembleConfig(n_members=DEFAULT_N_MEMBERS, seed=0),
            database=database,
            use_gnn=False,
            architecture=DEFAULT_ARCHITECTURES[property_name],
            cache_dir=cache_dir if cache_dir is not None else shared_data_dir(),
            directory=folder,
            on_stage=on_stage,
        )
    return trained.model_id


def folder_problem(folder: Path) -> str:
    """Why a property model folder cannot be loaded as is ('' when fine): its ``model.json`` is missing, or a pickle
    in it is unsigned or altered (core.signing). Nothing is unpickled."""
    from core.signing import signed_problem

    if not (folder / MODEL_FILE).is_file():
        return f"{folder / MODEL_FILE} is missing"
    for path in sorted(folder.glob("*.pkl")):
        if problem := signed_problem(path):
            return problem
    return ""


def _set_aside(folder: Path) -> None:
    """Rename an unusable model folder to ``<name>.unusable-<time>`` (kept for inspection, never loaded again)."""
    import time

    if folder.is_dir():
        folder.rename(folder.with_name(f"{folder.name}.unusable-{time.strftime('%Y%m%d-%H%M%S')}"))


def default_model_dir(property_name: str) -> Path:
    """Where the default model of ``property_name`` is trained, shared by every store and database of this data
    home: ``<data home>/models/defaults/<name>-<hash of data set, architecture, members, seed, code version>``
    (the same inputs give the same model, so it is trained once and registered wherever it is needed)."""
    from core import __version__
    from core.paths import subdir

    name, spec = DEFAULT_MODELS[property_name]
    settings = [spec, DEFAULT_ARCHITECTURES[property_name], DEFAULT_N_MEMBERS, 0, __version__]
    digest = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:12]
    return subdir("models") / "defaults" / f"{name}-{digest}"
