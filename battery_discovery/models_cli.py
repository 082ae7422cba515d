"""``battery-discovery train | evaluate | predict``: property models on public data sets.

Merged into the top-level ``battery-discovery`` command (``app.add_typer(models_app)`` in
battery_discovery/cli.py). The work is in ``surrogates`` (``surrogates.property_models.train_and_register``,
``surrogates.workflow``, ``surrogates.registry``); this module parses options and prints. Heavy imports
(matgl, torch, scikit-learn) happen inside the commands.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import ConfigError
from core.validation import describe_validation_error

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console(width=None if sys.stdout.isatty() else 160)

StoreUri = Annotated[
    str,
    typer.Option("--store-uri", envvar="BATTERY_DISCOVERY_STORE_URI", help="'embedded', mongodb://... or mongomock://"),
]
Database = Annotated[str, typer.Option("--database", help="MongoDB database name.")]

_DATASET_HELP = (
    "Data set spec: perov5:PATH.csv, obelix:DIR, folder:DIR (structure files + labels), matbench:NAME "
    "(see ingest.load_dataset)."
)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _table(rows: list[dict[str, Any]], title: str, unit: str = "") -> Table:
    table = Table(title=title)
    cols = ["model", "mae", "rmse", "r2", "nll", "miscalibration_area", "spearman"]
    headers = {"mae": f"MAE{f' ({unit})' if unit else ''}", "miscalibration_area": "miscal. area"}
    for c in cols:
        table.add_column(headers.get(c, c), justify="left" if c == "model" else "right")
    for r in rows:
        table.add_row(*[str(r[c]) if c == "model" else (f"{r[c]:.4g}" if c in r else "") for c in cols])
    return table


def _ensemble_config(
    architecture: str,
    *,
    hidden_size: str,
    n_members: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    cutoff: float,
    patience: int | None,
    bootstrap: bool,
    seed: int,
    threads: int,
) -> Any:
    """The ensemble settings of ``train``'s options (a descriptor, auto or baseline architecture keeps MEGNet's
    settings for the GNN path); ConfigError for an unknown architecture or an invalid value."""
    from pydantic import ValidationError

    from surrogates.config import EnsembleConfig
    from surrogates.descriptor_models import DESCRIPTOR_ARCHITECTURES

    auto = architecture == "auto"
    descriptor = architecture in DESCRIPTOR_ARCHITECTURES
    if architecture not in ("megnet", "m3gnet", "tensornet", "baseline") and not descriptor and not auto:
        raise ConfigError(
            "architecture must be auto, megnet, m3gnet, tensornet, baseline, "
            f"{', '.join(DESCRIPTOR_ARCHITECTURES)}, not {architecture!r}"
        )
    try:
        return EnsembleConfig(
            architecture="megnet" if architecture == "baseline" or descriptor or auto else architecture,  # type: ignore[arg-type]
            hidden_size=hidden_size,  # type: ignore[arg-type]
            n_members=n_members,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            cutoff=cutoff,
            patience=patience,
            bootstrap=bootstrap,
            seed=seed,
            num_threads=threads,
            lr_schedule="cosine",
        )
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, what="option")) from exc


def _announce(data: Any, property_name: str, architecture: str) -> None:
    """What was loaded, the architecture ``auto`` chose, and when records without a structure force the baseline."""
    from surrogates.descriptor_models import DESCRIPTOR_ARCHITECTURES
    from surrogates.property_models import resolve_architecture, zero_fraction

    auto = architecture == "auto"
    descriptor = architecture in DESCRIPTOR_ARCHITECTURES
    console.print(f"[bold]{data.name}[/]: {len(data)} records with {property_name} ({data.unit_description})")
    chosen = (
        resolve_architecture(architecture, data.y, has_structures=data.has_all_structures)
        if auto or descriptor
        else None
    )
    if auto:
        console.print(f"architecture auto: {chosen or 'baseline'} ({zero_fraction(data.y):.0%} of the values are 0)")
    if architecture != "baseline" and chosen is None and not data.has_all_structures:
        n_missing = sum(s is None for s in data.structures)
        console.print(f"{n_missing} of {len(data)} records have no structure: training the composition baseline only")


def _print_trained(trained: Any, name: str, property_name: str, cache: bool) -> None:
    """The comparison table, the timings and where the model went."""
    meta = trained.result.meta
    unit = str(meta["unit"]).rsplit("(", 1)[-1].rstrip(")") if "(" in str(meta["unit"]) else ""
    title = f"{name} v{trained.version}: {property_name} on the {meta['split']['source']} test split"
    console.print(_table(trained.result.table, title, unit))
    timings = meta["timings"]
    if "ensemble_fit_s" in timings:
        console.print(
            f"ensemble fit {timings['ensemble_fit_s']:.0f} s, graphs {timings['graphs_s']:.1f} s "
            f"({'cache hit' if timings.get('graph_cache_hit') else 'built and cached' if cache else 'built'}), "
            f"std scale {meta['std_scale']:.2f}"
        )
    if "descriptor_fit_s" in timings:
        console.print(
            f"{meta['architecture']} fit {timings['descriptor_fit_s']:.0f} s (train, calibrate on val, refit), "
            f"descriptors {timings['descriptors_s']:.0f} s"
        )
    console.print(
        f"registered [cyan]{trained.model_id}[/] at {trained.directory}; plots in {trained.directory / 'plots'}"
    )


@app.command()
def train(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help=_DATASET_HELP)],
    property_name: Annotated[str, typer.Option("--property", "-p", help="Target column, e.g. heat_all, ind_gap.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Registry name; retraining adds a version.")],
    ensemble: Annotated[int, typer.Option("--ensemble", "-k", min=1, help="Ensemble members.")] = 5,
    architecture: Annotated[
        str,
        typer.Option(
            help="auto (default: hurdle-gb for a zero-inflated target, i.e. >= 30 % exact zeros and none negative, "
            "such as band gaps; else chgnet-gb when every record has a structure, else the baseline), megnet "
            "(vectorised GNN ensemble), m3gnet, tensornet, baseline, or a descriptor ensemble: hurdle-gb "
            "(P(y > 0) x E[y | y > 0]), gb-ensemble (bootstrap gradient boosting), chgnet-gb (cross-fitted "
            "boosting on CHGNet's energy and crystal features, with an error model for the std)."
        ),
    ] = "auto",
    hidden_size: Annotated[str, typer.Option(help="small, medium or default (network width/depth).")] = "small",
    epochs: Annotated[int, typer.Option(min=1, help="Epochs (the cosine schedule spans them).")] = 50,
    batch_size: Annotated[int, typer.Option(min=1, help="Structures per step.")] = 64,
    learning_rate: Annotated[float, typer.Option(help="Initial Adam learning rate (cosine decay).")] = 5e-3,
    cutoff: Annotated[float, typer.Option(help="Graph radius cutoff (Å).")] = 4.0,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience in epochs (default: none).")] = None,
    bootstrap: Annotated[bool, typer.Option(help="Bootstrap weights per member (else: seeds only).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the split, initialisation and batches.")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads.")] = 1,
    baseline: Annotated[str, typer.Option(help="random_forest or gradient_boosting.")] = "random_forest",
    cache: Annotated[bool, typer.Option(help="Reuse/save preprocessed graphs under the processed/ folder.")] = True,
    out: Annotated[
        Path | None, typer.Option(help="Model folder (default <data home>/models/<database>/NAME-vK).")
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Raw-data folder laid out <source>/<file> (e.g. ../shared/data), read first.")
    ] = None,
    store_uri: StoreUri = "embedded",
    database: Database = "battery_discovery",
) -> None:
    """Train a property model (GNN ensemble + baselines) on a public data set and register it.

    Compares the ensemble with a dummy mean predictor and a classical baseline on the held-out split,
    saves parity/error/calibration plots and registers the model in the store.

    The split is the data set's official train/test split when it has one, otherwise a seeded 80/20 split;
    10% of the training part is held out for early stopping and std recalibration. Records without a
    structure (e.g. most of OBELiX) cannot feed a GNN: the composition baseline is then the model.

    Example: battery-discovery train --dataset perov5:../shared/data/perov_5/val.csv --property heat_all
    --name perov-heat --ensemble 5
    """

    from store import open_store
    from surrogates.data import PropertyData
    from surrogates.descriptor_models import DESCRIPTOR_ARCHITECTURES
    from surrogates.property_models import train_and_register

    auto = architecture == "auto"
    descriptor = architecture in DESCRIPTOR_ARCHITECTURES
    config = _ensemble_config(
        architecture, hidden_size=hidden_size, n_members=ensemble, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, cutoff=cutoff, patience=patience, bootstrap=bootstrap, seed=seed,
        threads=threads,
    )  # fmt: skip
    store = open_store(store_uri, database)
    with _progress() as progress:
        task = progress.add_task(f"loading {dataset} ...", total=None)

        def loaded(data: PropertyData) -> None:
            _announce(data, property_name, architecture)
            progress.update(task, description="training", total=epochs)

        trained = train_and_register(
            store,
            dataset=dataset,
            property_name=property_name,
            name=name,
            config=config,
            database=database,
            use_gnn=architecture != "baseline",
            use_cache=cache,
            baseline_kind=baseline,
            seed=seed,
            directory=out,
            on_data=loaded,
            on_stage=lambda msg: progress.update(task, description=msg),
            on_epoch=lambda e, total: progress.update(task, completed=e, total=total, description="training epochs"),
            architecture=architecture if descriptor or auto else None,
            cache_dir=cache_dir,
        )
    _print_trained(trained, name, property_name, cache)


@app.command()
def evaluate(
    model: Annotated[str, typer.Option("--model", "-m", help="Registered name (newest version) or NAME-vK.")],
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Data set (default: the training one).")
    ] = None,
    split: Annotated[str, typer.Option(help="test, val, train or all.")] = "test",
    plots: Annotated[Path | None, typer.Option(help="Write parity/error/calibration PNGs here.")] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Raw-data folder laid out <source>/<file> (e.g. ../shared/data), read first.")
    ] = None,
    store_uri: StoreUri = "embedded",
    database: Database = "battery_discovery",
) -> None:
    """Evaluate a registered model against its baseline and the dummy mean predictor.

    Metrics: MAE, RMSE, R², Gaussian NLL, miscalibration area, Spearman |error| vs std, on a split of the
    training data set or on another data set.
    """
    from store import open_store
    from surrogates.data import load_property_data
    from surrogates.registry import resolve_model
    from surrogates.workflow import PropertyModel, evaluate_model

    doc = resolve_model(open_store(store_uri, database), model)
    loaded = PropertyModel.load(doc.path)
    spec = dataset or doc.dataset
    with console.status(f"loading {spec} ..."):
        data = load_property_data(spec, doc.property_name, cache_dir=cache_dir)
    if dataset is None and doc.data_hash and data.data_hash != doc.data_hash:
        console.print("[yellow]note:[/] the data set changed since training (different data hash)")
    rows, paths = evaluate_model(loaded, data, split_name=split, plots_dir=plots)
    console.print(_table(rows, f"{doc.id}: {doc.property_name} on {data.name} ({split})"))
    if paths:
        console.print("plots: " + ", ".join(str(p) for p in paths))


@app.command()
def predict(
    model: Annotated[str, typer.Option("--model", "-m", help="Registered name (newest version) or NAME-vK.")],
    input_path: Annotated[
        Path, typer.Option("--input", "-i", help="CSV with a 'cif' column, a CIF file, or a folder.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CSV: id, formula, <property>_mean, _std.")] = Path(
        "predictions.csv"
    ),
    cache: Annotated[bool, typer.Option(help="Reuse/save the input's graphs under the processed/ folder.")] = True,
    store_uri: StoreUri = "embedded",
    database: Database = "battery_discovery",
) -> None:
    """Predict a registered property for every structure of the input, in input order.

    The std is the ensemble spread times the scale fitted on the validation split at training time.
    """
    from store import open_store
    from surrogates.data import processed_dir, read_structures
    from surrogates.registry import resolve_model
    from surrogates.workflow import PropertyModel

    doc = resolve_model(open_store(store_uri, database), model)
    loaded = PropertyModel.load(doc.path)
    with console.status(f"reading {input_path} ..."):
        ids, structures = read_structures(input_path)
    graphs = None
    if loaded.ensemble is not None:
        from surrogates.graphs import GraphCache, build_graphs
        from surrogates.members import check_structures

        check_structures(structures, loaded.ensemble.element_types)
        with _progress() as progress:
            task = progress.add_task("graphs", total=len(structures))
            tick = lambda k: progress.update(task, completed=k)  # noqa: E731
            cutoff, elements = loaded.ensemble.config.cutoff, loaded.ensemble.element_types
            if cache:
                graphs, _ = GraphCache(directory=processed_dir() / "graphs").load_or_build(
                    structures, cutoff=cutoff, element_types=elements, progress=tick
                )
            else:
                graphs = build_graphs(structures, cutoff, elements, progress=tick)
    with console.status(f"predicting {len(structures)} structures ..."):
        mean, std = loaded.predict(structures, graphs=graphs)
    out.parent.mkdir(parents=True, exist_ok=True)
    prop = doc.property_name
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "formula", f"{prop}_mean", f"{prop}_std"])
        for i, s, m, sd in zip(ids, structures, mean, std, strict=True):
            writer.writerow([i, s.composition.reduced_formula, f"{m:.6g}", f"{sd:.6g}"])
    console.print(f"wrote {len(ids)} predictions of {prop} ({doc.id}) to {out}")
