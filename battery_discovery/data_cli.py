"""``battery-discovery data``: load and clean public data sets, fetch them into the cache, seed a campaign."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from ingest.records import Dataset
    from ingest.report import CleaningConfig

SPEC_HELP = (
    "Data set spec: perov5:val (cached download; also train, test) or perov5:PATH.csv; obelix (cached download) or "
    "obelix:DIR; folder:DIR (CIF/POSCAR/JSON, labels.csv); csv:PATH (CIF column); extxyz:PATH (labels from "
    "atoms.info); matbench:mp_gap; mp:<query> (mp:Li-Fe-O, mp:LiFePO4, mp:mp-19017, mp:elements=Li,O&is_stable=true)."
)

data_app = typer.Typer(
    help="Public data sets: load and clean them (with a report), fetch them into the cache, seed a campaign.\n\n"
    "Raw downloads go to <data home>/data/raw/<source>/ (or --cache-dir), cleaned data sets are cached in "
    "<data home>/data/processed/ and rebuilt when an input file or a cleaning setting changes.",
    no_args_is_help=True,
)
console = Console(width=None if sys.stdout.isatty() else 180)

CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Folder holding the raw downloads as <source>/<file> (default <data home>/data/raw); offline, point it "
        "at a local copy such as ../shared/data.",
    ),
]
PartialOccupancy = Annotated[
    str, typer.Option("--partial-occupancy", help="Partially occupied structures: order, skip or keep.")
]
Ordering = Annotated[str, typer.Option("--ordering", help="How to order them: deterministic (fast) or ewald.")]
Dedup = Annotated[bool, typer.Option("--dedup/--no-dedup", help="Drop duplicate structures (StructureMatcher).")]


def _cleaning(partial_occupancy: str, ordering: str, dedup: bool) -> CleaningConfig:
    from pydantic import ValidationError

    from core.errors import ConfigError
    from core.validation import describe_validation_error
    from ingest.report import CleaningConfig

    try:
        return CleaningConfig(partial_occupancy=partial_occupancy, ordering=ordering, deduplicate=dedup)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, what="cleaning option")) from None


def _print_dataset(dataset: Dataset, cache_note: str) -> None:
    report = dataset.report
    n_struct = sum(1 for r in dataset.records if r.structure is not None)
    console.print(
        f"[bold]{dataset.name}[/]: {len(dataset)} records ({n_struct} with structures, "
        f"{len(dataset) - n_struct} composition only); data_hash {dataset.data_hash[:16]}"
    )
    console.print(f"processed cache: {cache_note}")
    table = Table(title="Properties")
    for col in ("property", "description (unit)", "labelled", "min", "mean", "max"):
        table.add_column(col, no_wrap=col != "description (unit)")
    for prop, description in dataset.properties.items():
        values = dataset.targets(prop)
        ok = values[~np.isnan(values)]
        stats = [f"{f(ok):.4g}" for f in (np.min, np.mean, np.max)] if len(ok) else ["", "", ""]
        table.add_row(prop, description, str(len(ok)), *stats)
    console.print(table)
    if dataset.splits:
        console.print("official splits: " + ", ".join(f"{k} {len(v)}" for k, v in dataset.splits.items()))
    console.print(f"cleaning: {report.n_input} rows read, {report.n_kept} kept, {report.n_dropped} dropped")
    counts = Table(title="Cleaning issues")
    for col in ("issue", "action", "records"):
        counts.add_column(col)
    for key, n in report.counts().items():
        kind, action = key.split(":")
        counts.add_row(kind, action, str(n))
    if report.issues:
        console.print(counts)


def _print_issues(dataset: Dataset) -> None:
    table = Table(title=f"Cleaning report of {dataset.name}: {len(dataset.report.issues)} issues")
    for col in ("record", "issue", "action", "reason"):
        table.add_column(col, no_wrap=col != "reason", overflow="fold")
    for issue in dataset.report.issues:
        table.add_row(issue.record_id, issue.kind, issue.action, issue.message)
    console.print(table)


@data_app.command("load")
def load_cmd(
    spec: Annotated[str, typer.Argument(help=SPEC_HELP, show_default=False)],
    report: Annotated[bool, typer.Option("--report", help="Also list every record cleaning changed or dropped.")] = (
        False
    ),
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write the cleaning report as JSON to this file.")
    ] = None,
    cache_dir: CacheDir = None,
    partial_occupancy: PartialOccupancy = "order",
    ordering: Ordering = "deterministic",
    dedup: Dedup = True,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Parse and clean again; write no processed file.")] = (
        False
    ),
) -> None:
    """Load a data set, clean it and print counts, properties, splits and the cleaning summary.

    Example: battery-discovery data load perov5:val --cache-dir ../shared/data --report
    """
    from ingest.api import load

    result = load(
        spec,
        cache_dir=cache_dir,
        cleaning=_cleaning(partial_occupancy, ordering, dedup),
        progress=sys.stderr.isatty(),
        use_cache=not no_cache,
    )
    note = "not used (--no-cache)" if no_cache else f"{result.cache_path} ({'reused' if result.reused else 'written'})"
    _print_dataset(result.dataset, note)
    if report:
        _print_issues(result.dataset)
    if report_json is not None:
        report_json.write_text(result.dataset.report.model_dump_json(indent=1))
        console.print(f"report written to {report_json}")


@data_app.command("fetch")
def fetch_cmd(
    source: Annotated[str, typer.Argument(help="perov5 or obelix.", show_default=False)],
    split: Annotated[str, typer.Option(help="perov5 split: train, val or test.")] = "val",
    cache_dir: CacheDir = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if the files are cached.")] = False,
) -> None:
    """Download a public data set into the raw cache (perov5: one split; obelix: CSVs and CIF archive).

    Offline this fails with the URL; copy the files into the cache folder or use --cache-dir instead.
    """
    from ingest.records import DatasetError
    from ingest.sources import obelix, perov5

    if source == "perov5":
        path = perov5.fetch(split, cache_dir, force=force, progress=sys.stderr.isatty())
    elif source == "obelix":
        path = obelix.fetch(cache_dir, force=force, progress=sys.stderr.isatty())
    else:
        raise DatasetError(
            f"cannot fetch {source!r}: fetch knows perov5 and obelix (matbench and mp download on first load)"
        )
    console.print(f"{source} cached in {path}")


@data_app.command("seed")
def seed_cmd(
    spec: Annotated[str, typer.Argument(help=SPEC_HELP, show_default=False)],
    campaign: Annotated[str, typer.Option("--campaign", help="Campaign that receives the labelled structures.")],
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many new candidates (default all).")] = (
        None
    ),
    cache_dir: CacheDir = None,
    partial_occupancy: PartialOccupancy = "order",
    store_uri: Annotated[
        str,
        typer.Option(
            "--store-uri", envvar="BATTERY_DISCOVERY_STORE_URI", help="'embedded', mongodb://... or mongomock://"
        ),
    ] = "embedded",
    database: Annotated[str, typer.Option("--database", help="MongoDB database name.")] = "battery_discovery",
) -> None:
    """Write a data set's structures into a campaign as labelled candidates (source 'dataset').

    Re-running adds nothing: structures already in the campaign are recognised (StructureMatcher).
    """
    from ingest.api import load
    from ingest.seed import seed_store
    from store import open_store

    store = open_store(store_uri, database)
    result = load(
        spec,
        cache_dir=cache_dir,
        cleaning=_cleaning(partial_occupancy, "deterministic", True),
        progress=sys.stderr.isatty(),
    )
    seeded = seed_store(result.dataset, store, campaign=campaign, limit=limit)
    console.print(
        f"campaign [cyan]{campaign}[/]: {len(seeded.new_ids)} new candidates from {result.dataset.name} "
        f"({seeded.existing} already there, {seeded.skipped_no_structure} composition-only records skipped)"
    )
