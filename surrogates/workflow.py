"""Train, evaluate and apply property models on public data: the library behind ``battery-discovery train``,
``evaluate`` and ``predict``.

A trained property model is a folder::

    <dir>/ensemble/        GNNEnsemble.save() output (absent for a composition-only model)
    <dir>/descriptor.pkl   DescriptorEnsemble (a descriptor model: hurdle-gb, gb-ensemble), instead of ensemble/
    <dir>/baseline.pkl     CompositionBaseline (random forest on composition/structure descriptors)
    <dir>/model.json       property, unit, data set, split, dummy mean, std scale, metrics
    <dir>/split.json       record ids of the train / val / test split
    <dir>/plots/*.png      parity, error histogram, calibration (test split)

and a :class:`store.documents.ModelDoc` in the registry (see :mod:`surrogates.registry`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from core.errors import ConfigError, ModelNotFoundError

from .baseline import CompositionBaseline
from .config import EnsembleConfig
from .data import PropertyData, Split, processed_dir, split_data
from .descriptor_models import DescriptorEnsemble
from .metrics import (
    ensemble_metrics,
    fit_std_scale,
    gaussian_nll,
    miscalibration_area,
    regression_metrics,
    save_plots,
    spearman_error_std,
)

__all__ = ["PropertyModel", "TrainResult", "evaluate_model", "train_property_model"]

MODEL_FILE = "model.json"
DESCRIPTOR_FILE = "descriptor.pkl"


@dataclass
class PropertyModel:
    """A loaded property model: GNN ensemble (or None), baseline, and its metadata."""

    directory: Path
    meta: dict[str, Any]
    baseline: CompositionBaseline
    ensemble: Any | None = None  # GNNEnsemble
    descriptor: DescriptorEnsemble | None = None

    @property
    def property_name(self) -> str:
        return str(self.meta["property_name"])

    @property
    def std_scale(self) -> float:
        return float(self.meta.get("std_scale", 1.0))

    @classmethod
    def load(cls, directory: Path | str) -> PropertyModel:
        """Read a model folder written by :func:`train_property_model`."""
        directory = Path(directory)
        meta_path = directory / MODEL_FILE
        if not meta_path.is_file():
            raise ModelNotFoundError(f"no property model at {directory}: {MODEL_FILE} is missing")
        meta = json.loads(meta_path.read_text())
        baseline = CompositionBaseline.load(directory / "baseline.pkl")
        ensemble = None
        descriptor = None
        if (directory / DESCRIPTOR_FILE).is_file():
            descriptor = DescriptorEnsemble.load(directory / DESCRIPTOR_FILE)
        elif (directory / "ensemble").is_dir():
            from .ensemble import GNNEnsemble

            ensemble = GNNEnsemble.load(directory / "ensemble")
        return cls(directory=directory, meta=meta, baseline=baseline, ensemble=ensemble, descriptor=descriptor)

    def predict(
        self, structures: Sequence[Structure | None], compositions: Sequence[Any] | None = None, graphs: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(n,)`` and (recalibrated) std ``(n,)``.

        With a GNN ensemble: its member mean and std times ``std_scale``; with a descriptor ensemble: its
        predictive mean and std (the mixture of a hurdle model); otherwise the random forest's mean and the
        spread of its trees. ``compositions`` stand in where a structure is None.
        """
        if self.descriptor is not None:
            return self.descriptor.predict(_items(structures, compositions))
        if self.ensemble is not None:
            if any(s is None for s in structures):
                raise ConfigError("this model is a GNN ensemble: every input needs a structure")
            members = (
                self.ensemble.predict_graphs(graphs)
                if graphs is not None
                else self.ensemble.predict_members(list(structures))
            )
            return members.mean(axis=0), members.std(axis=0) * self.std_scale
        trees = self.baseline.predict_members(_items(structures, compositions))
        return trees.mean(axis=0), trees.std(axis=0) * self.std_scale


def _items(structures: Sequence[Structure | None], compositions: Sequence[Any] | None) -> list[Any]:
    """Structures, with ``compositions[i]`` where ``structures[i]`` is None."""
    if any(s is None for s in structures) and compositions is None:
        raise ConfigError("compositions are needed where a structure is None")
    return [s if s is not None else compositions[i] for i, s in enumerate(structures)]  # type: ignore[index]


def descriptor_metrics(y: np.ndarray, members: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict[str, float]:
    """:func:`surrogates.metrics.ensemble_metrics`' keys for a descriptor ensemble whose std is its own
    (mixture) std rather than the member spread: ``y``, ``mean``, ``std`` ``(n,)``, ``members`` ``(K, n)``."""
    out = regression_metrics(y, mean)
    out.update(
        {
            "member_mae_mean": float(np.mean([np.abs(row - y).mean() for row in members])),
            "mean_std": float(std.mean()),
            "nll": gaussian_nll(y, mean, std),
            "miscalibration_area": miscalibration_area(y, mean, std),
            "spearman": spearman_error_std(y, mean, std),
            "std_scale": 1.0,
        }
    )
    return out


def fit_descriptor(
    template: DescriptorEnsemble, x: np.ndarray, y: np.ndarray, split: Split
) -> tuple[DescriptorEnsemble, dict[str, float]]:
    """Fit on ``split.train``, calibrate (sigma / std scale) on ``split.val``, refit on train + val keeping the
    calibration. ``x`` ``(n, D)`` descriptors and ``y`` ``(n,)`` of all records; returns the model and timings."""
    import copy
    import time as _time

    timings: dict[str, float] = {}
    t = _time.perf_counter()
    model = copy.deepcopy(template).fit(None, y[split.train], x=x[split.train])
    if len(split.val):
        model.calibrate(None, y[split.val], x=x[split.val])
        fit_pos = np.concatenate([split.train, split.val])
        model.fit(None, y[fit_pos], x=x[fit_pos])
    timings["descriptor_fit_s"] = _time.perf_counter() - t
    return model, timings


@dataclass
class TrainResult:
    """What :func:`train_property_model` produced."""

    directory: Path
    meta: dict[str, Any]
    table: list[dict[str, Any]] = field(default_factory=list)  # one row per model: name, mae, rmse, r2, ...
    plots: list[Path] = field(default_factory=list)


def _graph_cache_dir() -> Path:
    return processed_dir() / "graphs"


def load_graphs(
    data: PropertyData, positions: np.ndarray, cutoff: float, use_cache: bool = True, progress: Any = None
) -> tuple[Any, bool]:
    """Graphs of ``data.structures[positions]`` from the on-disk cache (built and saved on a miss)."""
    from matgl.config import DEFAULT_ELEMENTS

    from .graphs import GraphCache, build_graphs

    def items() -> list[Structure]:
        return [data.structures[int(i)] for i in positions]  # type: ignore[misc]

    if not use_cache:
        return build_graphs(items(), cutoff, DEFAULT_ELEMENTS, progress=progress), False
    return GraphCache(directory=_graph_cache_dir()).load_or_build(
        items, cutoff=cutoff, element_types=DEFAULT_ELEMENTS, data_key=data.selection_key(positions), progress=progress
    )


def _train_descriptor(
    descriptor: DescriptorEnsemble,
    architecture: str | None,
    items: list[Any],
    y: np.ndarray,
    split: Any,
    directory: Path,
    *,
    stage: Callable[[str], None],
    timings: dict[str, float],
    table: list[dict[str, Any]],
) -> tuple[DescriptorEnsemble, dict[str, Any], np.ndarray, np.ndarray]:
    """Featurize, fit the descriptor ensemble (calibrated on the validation part), save it and evaluate it on the
    test part. Adds its timings and table row.

    Returns:
        (the fitted model, test metrics, ``(n_test,)`` mean, ``(n_test,)`` std).
    """
    stage(f"descriptors: {len(items)} records")
    t = time.perf_counter()
    x = descriptor.featurize(items)
    timings["descriptors_s"] = time.perf_counter() - t
    stage(f"{architecture}: {descriptor.n_members} members on {len(split.train)} (+{len(split.val)}) records")
    model, fit_times = fit_descriptor(descriptor, x, y, split)
    timings.update(fit_times)
    model.save(directory / DESCRIPTOR_FILE)
    test_members = model.predict_members(None, x=x[split.test])
    mean, std = model.predict(None, x=x[split.test])
    ens_metrics = descriptor_metrics(y[split.test], test_members, mean, std)
    table.append({"model": f"{architecture} ({model.n_members} members)", **ens_metrics})
    return model, ens_metrics, mean, std


def _train_gnn(
    data: PropertyData,
    split: Any,
    config: EnsembleConfig,
    directory: Path,
    *,
    use_cache: bool,
    stage: Callable[[str], None],
    on_epoch: Callable[[int, int], None] | None,
    timings: dict[str, float],
    table: list[dict[str, Any]],
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, float]:
    """Fit the GNN ensemble on the training part (early stopping on the validation part), fit its std scale on
    the validation part, save it, and evaluate it on the test part. Adds its timings and table rows.

    Returns:
        (test metrics, ``(n_test,)`` mean, ``(n_test,)`` calibrated std, std scale).
    """
    y = data.y
    fit_pos = np.concatenate([split.train, split.val])
    from .ensemble import GNNEnsemble

    std_scale = 1.0
    stage(f"graphs: {len(fit_pos) + len(split.test)} structures (cutoff {config.cutoff} Å)")
    t = time.perf_counter()
    all_pos = np.concatenate([fit_pos, split.test])
    graphs, hit = load_graphs(data, all_pos, config.cutoff, use_cache=use_cache)
    timings["graphs_s"] = time.perf_counter() - t
    timings["graph_cache_hit"] = float(hit)
    n_fit = len(fit_pos)
    fit_graphs = graphs.subset(np.arange(n_fit))
    test_graphs = graphs.subset(np.arange(n_fit, len(all_pos)))
    stage(f"ensemble: {config.n_members} x {config.architecture} ({config.hidden_size}) on {len(split.train)}")
    t = time.perf_counter()
    ensemble = GNNEnsemble.fit(
        [data.structures[int(i)] for i in fit_pos],  # type: ignore[misc]
        y[fit_pos],
        config=config,
        property_name=data.property_name,
        version=directory.name,
        graphs=fit_graphs,
        val_indices=np.arange(len(split.train), n_fit) if len(split.val) else None,
        progress=on_epoch,
    )
    timings["ensemble_fit_s"] = time.perf_counter() - t
    if len(split.val):
        val_members = ensemble.predict_graphs(fit_graphs.subset(np.arange(len(split.train), n_fit)))
        std_scale = fit_std_scale(y[split.val], val_members.mean(0), val_members.std(0))
    t = time.perf_counter()
    test_members = ensemble.predict_graphs(test_graphs)
    timings["ensemble_predict_s"] = time.perf_counter() - t
    ensemble.save(directory / "ensemble")
    raw = ensemble_metrics(y[split.test], test_members)
    ens_metrics = ensemble_metrics(y[split.test], test_members, std_scale=std_scale)
    ens_metrics["nll_uncalibrated"] = raw["nll"]
    ens_metrics["miscalibration_area_uncalibrated"] = raw["miscalibration_area"]
    single = regression_metrics(y[split.test], test_members[0])
    table.append({"model": f"single {config.architecture} (member 0)", **single})
    table.append({"model": f"ensemble of {config.n_members}", **ens_metrics})
    mean, std = test_members.mean(0), test_members.std(0) * std_scale
    return ens_metrics, mean, std, std_scale


def train_property_model(
    data: PropertyData,
    *,
    config: EnsembleConfig,
    directory: Path,
    use_gnn: bool = True,
    use_cache: bool = True,
    baseline_kind: str = "random_forest",
    seed: int = 0,
    on_stage: Callable[[str], None] | None = None,
    on_epoch: Callable[[int, int], None] | None = None,
    descriptor: DescriptorEnsemble | None = None,
    architecture: str | None = None,
) -> TrainResult:
    """Split ``data``, train the GNN ensemble (if every record has a structure and ``use_gnn``), the
    baseline and the dummy on the training part, recalibrate the std on the validation part, evaluate all
    three on the test part, save the folder and plots. Returns the metadata and a comparison table.

    With ``descriptor`` (an unfitted :class:`DescriptorEnsemble`, named ``architecture``) that ensemble is the
    model instead of a GNN: fitted on the training part, calibrated on the validation part, refitted on both.
    """
    stage = on_stage or (lambda _msg: None)
    split = split_data(data, seed=seed)
    directory.mkdir(parents=True, exist_ok=True)
    y = data.y
    items = [s if s is not None else c for s, c in zip(data.structures, data.compositions, strict=True)]
    pick = lambda pos: [items[int(i)] for i in pos]  # noqa: E731
    fit_pos = np.concatenate([split.train, split.val])
    timings: dict[str, float] = {}
    table: list[dict[str, Any]] = []

    dummy_mean = float(y[fit_pos].mean())
    table.append({"model": "dummy mean", **regression_metrics(y[split.test], np.full(len(split.test), dummy_mean))})

    stage(f"baseline: {baseline_kind} on {len(fit_pos)} records")
    t = time.perf_counter()
    baseline = CompositionBaseline(kind=baseline_kind, seed=seed).fit(pick(fit_pos), y[fit_pos])  # type: ignore[arg-type]
    timings["baseline_fit_s"] = time.perf_counter() - t
    baseline.save(directory / "baseline.pkl")
    base_members = baseline.predict_members(pick(split.test))  # type: ignore[arg-type]
    base_row = {"model": f"baseline ({baseline_kind})", **regression_metrics(y[split.test], base_members.mean(0))}
    table.append(base_row)

    std_scale = 1.0
    ens_metrics: dict[str, Any] = {}
    plots: list[Path] = []
    gnn = use_gnn and data.has_all_structures and descriptor is None
    n_members = config.n_members
    if descriptor is not None:
        model, ens_metrics, mean, std = _train_descriptor(
            descriptor, architecture, items, y, split, directory, stage=stage, timings=timings, table=table
        )
        n_members = model.n_members
    elif gnn:
        ens_metrics, mean, std, std_scale = _train_gnn(
            data, split, config, directory, use_cache=use_cache, stage=stage, on_epoch=on_epoch, timings=timings,
            table=table,
        )  # fmt: skip
    else:
        if len(split.val):
            val_members = baseline.predict_members(pick(split.val))  # type: ignore[arg-type]
            std_scale = fit_std_scale(y[split.val], val_members.mean(0), val_members.std(0))
        mean, std = base_members.mean(0), base_members.std(0) * std_scale
        ens_metrics = ensemble_metrics(y[split.test], base_members, std_scale=std_scale)
    plots = save_plots(
        directory / "plots",
        y[split.test],
        mean,
        std,
        label=data.property_name,
        unit=_unit(data.unit_description),
    )
    kind = "descriptor" if descriptor is not None else "gnn" if gnn else "baseline"
    meta = {
        "property_name": data.property_name,
        "unit": data.unit_description,
        "dataset": data.spec,
        "dataset_name": data.name,
        "data_hash": data.data_hash,
        "split": split.describe(),
        "kind": kind,
        "architecture": {"descriptor": architecture, "gnn": config.architecture}.get(kind, f"baseline:{baseline_kind}"),
        "n_members": n_members,
        "config": _descriptor_config(model) if descriptor is not None else config.model_dump(mode="json"),
        "dummy_mean": dummy_mean,
        "std_scale": std_scale,
        "metrics": {
            "test": ens_metrics,
            "table": table,
            "dummy_mae": table[0]["mae"],
            "baseline_mae": base_row["mae"],
        },
        "timings": timings,
    }
    (directory / "split.json").write_text(
        json.dumps({k: [data.ids[int(i)] for i in getattr(split, k)] for k in ("train", "val", "test")})
    )
    (directory / MODEL_FILE).write_text(json.dumps(meta, indent=2, default=float))
    return TrainResult(directory=directory, meta=meta, table=table, plots=plots)


def _descriptor_config(model: DescriptorEnsemble) -> dict[str, Any]:
    """A descriptor ensemble's settings and calibration, JSON-friendly."""
    return {k: v for k, v in vars(model).items() if k not in ("members", "num_threads", "error_model")}


def _unit(description: str) -> str:
    """'heat of formation (eV/atom)' -> 'eV/atom'."""
    if description.endswith(")") and "(" in description:
        return description[description.rindex("(") + 1 : -1]
    return ""


def evaluate_model(
    model: PropertyModel, data: PropertyData, *, split_name: str = "test", plots_dir: Path | None = None
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Metrics of the model (ensemble or baseline), its baseline and the dummy on one split of ``data``.

    The split is redrawn with the seed the model was trained with (``official`` splits are the data set's).
    Returns the table rows and the plot paths.
    """
    seed = int(model.meta.get("split", {}).get("seed", 0))
    split: Split = split_data(data, seed=seed)
    positions = {
        "test": split.test,
        "val": split.val,
        "train": split.train,
        "all": np.arange(len(data)),
    }.get(split_name)
    if positions is None:
        raise ConfigError(f"split must be test, val, train or all, not {split_name!r}")
    if len(positions) == 0:
        raise ConfigError(f"the {split_name} split is empty")
    y = data.y[positions]
    items = [data.structures[int(i)] or data.compositions[int(i)] for i in positions]
    rows = [{"model": "dummy mean", **regression_metrics(y, np.full(len(y), model.meta["dummy_mean"]))}]
    base = model.baseline.predict_members(items)  # type: ignore[arg-type]
    rows.append({"model": "baseline", **regression_metrics(y, base.mean(0))})
    std_plot: np.ndarray | None = None
    if model.descriptor is not None:
        members = model.descriptor.predict_members(items)
        mean_d, std_plot = model.descriptor.predict(items)
        name = f"{model.meta.get('architecture', 'descriptor')} ({model.descriptor.n_members} members)"
        rows.append({"model": name, **descriptor_metrics(y, members, mean_d, std_plot)})
    elif model.ensemble is not None:
        members = model.ensemble.predict_members([data.structures[int(i)] for i in positions])
        rows.append(
            {"model": f"ensemble of {model.ensemble.n_members}", **ensemble_metrics(y, members, model.std_scale)}
        )
    else:
        members = base
        rows[-1] = {"model": "baseline", **ensemble_metrics(y, base, model.std_scale)}
    paths: list[Path] = []
    if plots_dir is not None:
        paths = save_plots(
            plots_dir,
            y,
            members.mean(0),
            members.std(0) * model.std_scale if std_plot is None else std_plot,
            label=model.property_name,
            unit=_unit(str(model.meta.get("unit", ""))),
        )
    return rows, paths
