"""Train a named property model on a public data set and register it.

:func:`train_and_register` is the one path behind ``battery-discovery train``
(``battery_discovery/models_cli.py``) and the ``train-property-model`` Prefect flow
(``flows/train_model.py``): check the name, pick the next version and its folder
(:func:`surrogates.registry.model_dir`), load the data, train and evaluate
(:func:`surrogates.workflow.train_property_model`), register (:func:`surrogates.registry.register_property_model`).
Callers add their own presentation (console tables, Prefect artifacts) through the callbacks and the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import ConfigError

from .config import EnsembleConfig
from .data import PropertyData, load_property_data
from .descriptor_models import DESCRIPTOR_ARCHITECTURES, DescriptorEnsemble
from .registry import check_name, model_dir, model_id, next_version, register_property_model
from .workflow import TrainResult, train_property_model

if TYPE_CHECKING:
    from store.repository import CandidateStore

__all__ = [
    "BASELINE_KINDS",
    "ZERO_INFLATED_FRACTION",
    "RegisteredModel",
    "resolve_architecture",
    "train_and_register",
    "zero_fraction",
]

#: ``architecture="auto"`` treats a target as zero-inflated (and trains ``hurdle-gb``) when at least this fraction of
#: its values is exactly 0 and none is negative (perov_5 ``ind_gap``: 96 %; MP-20 band gaps: 69 %).
ZERO_INFLATED_FRACTION = 0.3


def resolve_architecture(architecture: str | None, y: Any, *, has_structures: bool = True) -> str | None:
    """The descriptor architecture to train, or None for the GNN ensemble (or, without structures, the baseline).

    ``auto`` picks ``hurdle-gb`` for a zero-inflated target ``y`` ``(n,)`` (see :data:`ZERO_INFLATED_FRACTION`;
    measured on perov_5 ``ind_gap``: ROC-AUC 0.985 for gap >= 1.5 eV against 0.845 for the GNN ensemble),
    ``chgnet-gb`` when every record has a structure (``has_structures``; on perov_5 ``heat_all``: MAE 0.076
    eV/atom and Spearman(abs error, std) 0.31 against 0.10 and 0.18 for five MEGNets) and None otherwise; any
    other value is returned unchanged.
    """
    if architecture != "auto":
        return architecture
    zero_inflated = bool((np.asarray(y, dtype=np.float64) >= 0).all()) and zero_fraction(y) >= ZERO_INFLATED_FRACTION
    if zero_inflated:
        return "hurdle-gb"
    return "chgnet-gb" if has_structures else None


def zero_fraction(y: Any) -> float:
    """Fraction of the values of ``y`` ``(n,)`` that are exactly 0 (0 for no values)."""
    values = np.asarray(y, dtype=np.float64)
    return float((values == 0).mean()) if len(values) else 0.0


#: Settings of the ``gb-ensemble`` architecture: bootstrap members of the baseline's gradient boosting (its 35
#: descriptors and hyper-parameters); on OBELiX the 143 ``describe`` descriptors overfit (test MAE 1.31-1.38).
GB_ENSEMBLE: dict[str, Any] = {
    "features": "baseline",
    "max_iter": 300,
    "max_features": 1.0,
    "l2_regularization": 0.0,
    "min_samples_leaf": 20,
}

#: Settings of the ``chgnet-gb`` architecture: boosting members as on the perov_5 ``heat_all`` exploration, and an
#: error model predicting the 68.3 % quantile of the absolute error (one std of a normal error); over the seed
#: 0/1/2 splits its Spearman(abs error, std) was 0.306/0.292/0.278 against 0.292/0.276/0.258 for the median.
CHGNET_GB: dict[str, Any] = {
    "features": "describe+chgnet",
    "max_iter": 600,
    "learning_rate": 0.05,
    "max_features": 1.0,
    "l2_regularization": 0.0,
    "min_samples_leaf": 10,
    "error_loss": "quantile",
    "error_quantile": 0.683,
}

#: Classical baselines a property model can be compared with (``CompositionBaseline.kind``).
BASELINE_KINDS = ("random_forest", "gradient_boosting")


@dataclass(frozen=True, kw_only=True)
class RegisteredModel:
    """A property model trained and registered by :func:`train_and_register`.

    Attributes:
        model_id: registry id ``'<name>-v<version>'``.
        name, version: registry name and its version (1, 2, ...).
        directory: the model folder (ensemble, baseline, model.json, split.json, plots/).
        data: the labelled records it was trained and tested on.
        result: metadata, comparison table (dummy, baseline, ensemble on the test split) and plot paths.
    """

    model_id: str
    name: str
    version: int
    directory: Path
    data: PropertyData
    result: TrainResult


def train_and_register(
    store: CandidateStore,
    *,
    dataset: str,
    property_name: str,
    name: str,
    config: EnsembleConfig,
    database: str,
    use_gnn: bool = True,
    use_cache: bool = True,
    baseline_kind: str = "random_forest",
    seed: int = 0,
    directory: Path | None = None,
    on_data: Callable[[PropertyData], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_epoch: Callable[[int, int], None] | None = None,
    architecture: str | None = None,
    cache_dir: Path | None = None,
) -> RegisteredModel:
    """Train property model ``name`` on ``property_name`` of ``dataset`` and register it as its next version.

    Args:
        store: the registry (``models`` collection) to write to.
        dataset: data set spec, e.g. ``perov5:PATH.csv`` (see ``surrogates.data.load_property_data``).
        property_name: the target column, e.g. ``heat_all`` (eV/atom).
        name: registry name (1-64 letters, digits, ``_.-``); every call adds a version.
        config: GNN ensemble settings (``config.architecture`` is recorded when a GNN is trained).
        database: the store's database name, for the default folder ``<data home>/models/<database>/<id>``.
        use_gnn: train the GNN ensemble when every record has a structure (else the baseline is the model).
        use_cache: reuse/save the preprocessed graphs.
        baseline_kind: ``random_forest`` or ``gradient_boosting``.
        seed: seed of the train/val/test split and of the baseline.
        directory: the model folder (default :func:`surrogates.registry.model_dir`).
        on_data: called with the loaded records before training.
        on_stage, on_epoch: progress callbacks of :func:`surrogates.workflow.train_property_model`.
        architecture: ``auto`` (see :func:`resolve_architecture`), a descriptor model of
            ``DESCRIPTOR_ARCHITECTURES`` (``hurdle-gb``: classifier x regressor
            for zero-inflated targets such as band gaps; ``gb-ensemble``: bootstrap gradient boosting with
            ``GB_ENSEMBLE``; ``chgnet-gb``: cross-fitted boosting on CHGNet features with an error model,
            ``CHGNET_GB``) with
            ``config.n_members`` members, ``config.num_threads`` and ``seed``; None (default) trains the GNN
            ensemble of ``config``.
        cache_dir: raw-data folder read before any download (``<source>/<file>``, e.g. ``../shared/data``).

    Raises:
        ConfigError: invalid name or baseline, unknown data set or property, too few records.
    """
    check_name(name)
    if architecture is not None and architecture != "auto" and architecture not in DESCRIPTOR_ARCHITECTURES:
        raise ConfigError(
            f"descriptor architecture must be auto or one of {', '.join(DESCRIPTOR_ARCHITECTURES)}, "
            f"not {architecture!r}"
        )
    if baseline_kind not in BASELINE_KINDS:
        raise ConfigError(f"baseline must be random_forest or gradient_boosting, not {baseline_kind!r}")
    version = next_version(store, name)
    folder = Path(directory) if directory is not None else model_dir(database, model_id(name, version))
    data = load_property_data(dataset, property_name, cache_dir=cache_dir)
    architecture = resolve_architecture(architecture, data.y, has_structures=data.has_all_structures)
    descriptor = None
    if architecture is not None:
        kind = DESCRIPTOR_ARCHITECTURES[architecture]
        if kind == "crossfit" and not data.has_all_structures:
            raise ConfigError(f"{architecture} needs a structure for every record")
        settings = GB_ENSEMBLE if kind == "regressor" else CHGNET_GB if kind == "crossfit" else {}
        descriptor = DescriptorEnsemble(
            kind=kind,
            n_members=config.n_members,
            seed=seed,
            bootstrap=kind == "regressor",
            num_threads=config.num_threads or 1,
            **settings,
        )
    if on_data is not None:
        on_data(data)
    result = train_property_model(
        data,
        config=config,
        directory=folder,
        use_gnn=use_gnn,
        use_cache=use_cache,
        baseline_kind=baseline_kind,
        seed=seed,
        on_stage=on_stage,
        on_epoch=on_epoch,
        descriptor=descriptor,
        architecture=architecture,
    )
    registered = register_property_model(
        store,
        name=name,
        version=version,
        dataset=dataset,
        property_name=property_name,
        directory=folder,
        meta=result.meta,
        n_members=config.n_members,
    )
    return RegisteredModel(model_id=registered, name=name, version=version, directory=folder, data=data, result=result)
