"""``battery-discovery query``: candidates of the store filtered by any stored or predicted property."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from core.errors import DiscoveryError

app = typer.Typer(add_completion=False)
console = Console(width=None if sys.stdout.isatty() else 200)

WHERE_HELP = (
    "Property filter: comparisons joined by 'and', e.g. \"band_gap >= 3 and e_above_hull <= 0.05\". Names: "
    "formation_energy_per_atom, e_above_hull, energy_per_atom (eV/atom), band_gap (eV), log10_conductivity "
    "(log10 S/cm), average_voltage (V), capacity_mAh_g, energy_density_Wh_kg, volume_change, "
    "stability_window_low_V, stability_window_high_V, round, novel (1: novel, 0: known, i.e. matching a reference "
    "phase or a seed)."
)


def _export(rows: list[dict[str, Any]], csv_path: Path | None, json_path: Path | None, cifs: Path | None) -> None:
    from pymatgen.core import Structure

    from store.queries import COLUMNS

    if csv_path is not None:
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(COLUMNS), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        console.print(f"wrote {len(rows)} rows to {csv_path}")
    if json_path is not None:
        json_path.write_text(json.dumps([{k: r.get(k) for k in COLUMNS} for r in rows], indent=1))
        console.print(f"wrote {len(rows)} rows to {json_path}")
    if cifs is not None:
        cifs.mkdir(parents=True, exist_ok=True)
        n = 0
        for r in rows:
            if r.get("structure"):
                Structure.from_dict(r["structure"]).to(filename=str(cifs / f"{r['id']}.cif"))
                n += 1
        console.print(f"wrote {n} CIFs to {cifs}/ (relaxed structures; as generated for predicted rows)")


@app.command()
def query(
    where: Annotated[str, typer.Option(help=WHERE_HELP)] = "",
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
    elements: Annotated[str, typer.Option(help="Comma-separated elements that must all be present, e.g. Li,O.")] = "",
    predicted: Annotated[
        bool, typer.Option(help="Also unevaluated candidates, filtered on their latest predictions.")
    ] = False,
    max_formation_energy: Annotated[
        float | None, typer.Option(help="Same as --where 'formation_energy_per_atom <= X' (eV/atom).")
    ] = None,
    max_e_above_hull: Annotated[
        float | None, typer.Option(help="Same as --where 'e_above_hull <= X' (eV/atom).")
    ] = None,
    novelty: Annotated[
        str | None,
        typer.Option(
            help="'novel' (matching no reference phase or seed) or 'known'; same as --where 'novel >= 1' / "
            "'novel <= 0'."
        ),
    ] = None,
    sort: Annotated[
        str, typer.Option(help="Ascending by a --where name, or formula (unknown values last).")
    ] = "e_above_hull",
    limit: Annotated[int, typer.Option(help="Rows at most (0: all).")] = 20,
    include_failed: Annotated[bool, typer.Option(help="Also list failed relaxations with their reason.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the rows to this CSV file.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json-file", help="Write the rows to this JSON file.")] = None,
    cifs: Annotated[Path | None, typer.Option(help="Write each row's structure as DIR/<id>.cif.")] = None,
    store_uri: Annotated[
        str, typer.Option("--store-uri", envvar="BATTERY_DISCOVERY_STORE_URI", help="'embedded', mongodb://...")
    ] = "embedded",
    database: Annotated[str, typer.Option("--database", help="MongoDB database name.")] = "battery_discovery",
) -> None:
    """Candidates from the store, most stable first: whether each is known (matching a reference phase or a seed,
    with its id) or novel, oracle values, energy above the hull of MP phases, model properties with their
    uncertainty, voltage, capacity and stability window where computed."""
    from pymatgen.core import Element

    from store import open_store
    from store.queries import query_rows

    symbols = [e.strip() for e in elements.split(",") if e.strip()]
    for s in symbols:
        if not Element.is_valid_symbol(s):
            raise DiscoveryError(f"unknown element {s!r}")
    conditions = [where] if where.strip() else []
    if max_formation_energy is not None:
        conditions.append(f"formation_energy_per_atom <= {float(max_formation_energy)!r}")
    if max_e_above_hull is not None:
        conditions.append(f"e_above_hull <= {float(max_e_above_hull)!r}")
    if novelty is not None:
        if novelty not in ("novel", "known"):
            raise DiscoveryError(f"--novelty must be novel or known, not {novelty!r}")
        conditions.append("novel >= 1" if novelty == "novel" else "novel <= 0")
    try:
        rows = query_rows(
            open_store(store_uri, database),
            campaign=campaign,
            where=" and ".join(conditions),
            elements=symbols,
            predicted=predicted,
            include_failed=include_failed,
            sort=sort,
            limit=limit,
        )
    except ValueError as exc:
        raise DiscoveryError(str(exc)) from None
    if as_json:
        for r in rows:
            print(json.dumps({k: v for k, v in r.items() if k != "structure"}))
    else:
        from battery_discovery.tables import query_table

        console.print(query_table(rows))
    _export(rows, csv_out, json_out, cifs)
