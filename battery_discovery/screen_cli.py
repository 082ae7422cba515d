"""``battery-discovery screen``: the campaign's labelers on structures you bring, without a campaign."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from core.errors import DiscoveryError

app = typer.Typer(add_completion=False)
console = Console(stderr=True)

PROPERTIES_HELP = (
    "Comma-separated: energy_per_atom, formation_energy_per_atom, e_above_hull, decomposition (one oracle "
    "relaxation each: CHGNet, then the SevenNet energy; the hull completed where thin), band_gap, "
    "log10_conductivity (property models: nothing is relaxed when only these are "
    "named), stability_window, average_voltage / capacity_mAh_g / energy_density_Wh_kg (a second relaxation of "
    "the de-intercalated counterpart). Default: everything that applies."
)


@app.command()
def screen(
    input_path: Annotated[
        Path,
        typer.Option(
            "--input",
            help="A structure file (CIF, POSCAR, pymatgen JSON), a folder of them, or a CSV "
            "with a 'cif' column and optionally 'id' or 'material_id'.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Results CSV: one row per input structure, in input order.")] = Path(
        "results.csv"
    ),
    properties: Annotated[str, typer.Option(help=PROPERTIES_HELP)] = "",
    voltage: Annotated[
        bool, typer.Option(help="Also the voltage of Li/Na compounds when --properties names less.")
    ] = False,
    fmax: Annotated[float | None, typer.Option(help="Relaxation force criterion (eV/Å); default the oracle's.")] = None,
    threads: Annotated[int, typer.Option(help="torch threads.")] = 1,
    store_uri: Annotated[
        str, typer.Option("--store-uri", envvar="BATTERY_DISCOVERY_STORE_URI", help="Store holding the model registry.")
    ] = "embedded",
    database: Annotated[str, typer.Option("--database", help="MongoDB database name.")] = "battery_discovery",
) -> None:
    """Score your own structures: energy above the hull of Materials Project phases, band gap and ionic
    conductivity with uncertainty, electrochemical window, voltage and capacity.

    Example: battery-discovery screen --input my_cifs/ --out results.csv --properties band_gap,log10_conductivity
    """
    from loop.screening import COLUMNS, read_inputs, resolve_properties, screen
    from oracle.config import OracleConfig

    try:
        groups = resolve_properties([p.strip() for p in properties.split(",") if p.strip()], voltage=voltage)
        inputs = read_inputs(input_path)
    except (ValueError, FileNotFoundError) as exc:
        raise DiscoveryError(str(exc)) from None
    if not inputs:
        raise DiscoveryError(f"{input_path}: no structures found")
    oracle = OracleConfig() if fmax is None else OracleConfig(relax={"fmax": fmax})
    predictors = {}
    wanted = [name for name in ("band_gap", "log10_conductivity") if name in groups]
    if wanted:
        from store import open_store
        from surrogates.predictors import ensure_model, load_predictor

        store = open_store(store_uri, database)
        for name in wanted:
            model_id = ensure_model(
                store, name, database=database, on_stage=lambda m, n=name: console.print(f"{n}: {m}")
            )
            predictors[name] = load_predictor(store, model_id)
            console.print(f"{name}: model {model_id}")
    rows = screen(
        inputs, groups=groups, oracle=oracle, predictors=predictors, num_threads=threads, progress=console.print
    )
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    failed = sum(r["status"] == "failed" for r in rows)
    console.print(f"wrote {len(rows)} rows to {out} ({failed} failed)")
    if failed == len(rows):
        sys.exit(1)
