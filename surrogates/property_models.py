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
from typing import TYPE_CHECKING

from core.errors import ConfigError

from .config import EnsembleConfig
from .data import PropertyData, load_property_data
from .descriptor_models import (
    CHGNET_GB,
    DESCRIPTOR_ARCHITECTURES,
    GB_ENSEMBLE,
    ZERO_INFLATED_FRACTION,
    make_descriptor_ensemble,
    resolve_architecture,
    zero_fraction,
)
from .registry import check_name, model_dir, model_id, next_version, register_property_model
from .workflow import TrainResult, train_property_model

if TYPE_CHECKING:
    from store.repository import CandidateStore

__all__ = [
    "BASELINE_KINDS",
    "CHGNET_GB",
    "GB_ENSEMBLE",
    "ZERO_INFLATED_FRACTION",
    "RegisteredModel",
    "resolve_architecture",
    "train_and_register",
    "zero_fraction",
]

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
        descriptor = make_descriptor_ensemble(
            architecture, n_members=config.n_members, seed=seed, num_threads=config.num_threads or 1
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
