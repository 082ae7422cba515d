"""``battery-discovery generate``: candidate structures from a registered generator, filtered, as CIFs + a CSV.

Merged into the top-level command (``app.add_typer`` in battery_discovery/cli.py). The work is in
:mod:`generation`; this module parses options, shows progress and writes files.
"""

from __future__ import annotations

import csv
import json
import sys
import time
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

CSV_COLUMNS = (
    "file", "formula", "generator", "version", "parents", "parameters", "condition", "passed_filters", "reason",
    "novel", "known_as",
)  # fmt: skip


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip()) if text else ()


def _options(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: write KEY=VALUE, e.g. --set max_sites=20 or --set aliovalent=Li:Mg")
        text = value.strip()
        try:
            out[key.strip()] = json.loads(text)
        except ValueError:
            out[key.strip()] = [x for x in text.split(",") if x] if "," in text or ":" in text else text
    return out


@app.command()
def generate(
    generator: Annotated[
        str | None, typer.Option("--generator", "-g", help="Registered generator (see --list).")
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=100_000, help="Structures to generate.")] = 20,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the CIFs and generated.csv.")] = None,
    condition: Annotated[
        str | None,
        typer.Option(
            "--condition", help="Property condition, query --where syntax, e.g. 'band_gap >= 3' (eV; learned only)."
        ),
    ] = None,
    elements: Annotated[
        str | None, typer.Option("--elements", help="Allowed elements, comma separated (default: any not excluded).")
    ] = None,
    require: Annotated[
        str | None, typer.Option("--require", help="At least one of these elements, comma separated (default Li,Na).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same structures.")] = 0,
    parents: Annotated[
        list[str] | None,
        typer.Option("--parents", help="Parent structures (file, folder or pymatgen:NAME) for substitution."),
    ] = None,
    options: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any generate-config knob, KEY=VALUE, e.g. --set max_sites=20 (repeatable)."),
    ] = None,
    list_generators: Annotated[bool, typer.Option("--list", help="Print the registered generators and exit.")] = False,
    store_uri: Annotated[
        str,
        typer.Option("--store-uri", envvar="BATTERY_DISCOVERY_STORE_URI", help="Store holding the model registry."),
    ] = "embedded",
    database: Annotated[str, typer.Option("--database", help="MongoDB database name.")] = "battery_discovery",
) -> None:
    """Generate candidate structures, filter them and write CIFs plus DIR/generated.csv.

    Generators: 'substitution' (ion exchange + data-mined substitution of the parents), 'ion-exchange' (ion
    exchange only; --set aliovalent=Li:Mg adds Mg on an alkali site plus a vacancy), 'pyxtal' (random symmetric
    structures of charge-balanced compositions of --elements), 'learned' (the project's Wyckoff transformer,
    trained on MP-20 + MPTS-52 on first use, about 15 min on 2 cores, then registered).

    Every structure is written, passed or not; generated.csv says which passed the filters (charge balance,
    distances, density, elements, size, duplicates) and why not, and whether it is novel against the training
    structures.

    Examples:

      battery-discovery generate --generator ion-exchange --parents pymatgen:LiFePO4 --n 5 --out out/ie

      battery-discovery generate --generator learned --n 200 --require Li --condition 'band_gap >= 3' --out out/wide
    """
    from pydantic import ValidationError

    from core.expressions import parse_target
    from generation import GENERATORS, GenerateConfig, GenerationRequest, load_seeds, screen

    if list_generators:
        for name in GENERATORS.names():
            console.print(name, highlight=False)
        return
    if generator is None or out is None:
        raise ConfigError("give --generator NAME and --out DIR (or --list to see the generators)")
    GENERATORS.get(generator)  # one clear line for an unknown name
    knobs = _options(options or [])
    if elements:
        knobs["allow_elements"] = _split(elements)
    if require is not None:
        knobs["require_any"] = _split(require)
    try:
        config = GenerateConfig(**{**knobs, "generators": (generator,)})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, what="option")) from exc
    try:
        target = parse_target(condition) if condition else None
    except ValueError as exc:
        raise ConfigError(f"--condition: {exc}") from exc
    parent_specs = parents or ["pymatgen:default"]
    seeds = [(s.name, s.structure) for s in load_seeds(parent_specs)] if generator in _PARENTED else []
    store = None
    if generator == "learned":
        store = _learned_store(store_uri, database, config.learned_model)
    request = GenerationRequest(n=n, parents=seeds, seed=seed, condition=target, store=store)
    start = time.perf_counter()
    with console.status(f"generating {n} with {generator} ..."):
        candidates = GENERATORS.get(generator)().generate(request, config)[:n]
    elapsed = time.perf_counter() - start
    with console.status("filtering and checking novelty ..."):
        report = screen(candidates, config)
        novelty = _novelty_index()
        known = [novelty.match(c.structure) if not r else "" for c, r in zip(candidates, report.reasons, strict=True)]
    _write(out, candidates, report.reasons, known)
    _summary(generator, n, candidates, report, known, elapsed, out)


_PARENTED = {"substitution", "ion-exchange"}


def _learned_store(uri: str, database: str, name: str) -> Any:
    from generation.learned import ensure_generator, find_generator
    from store import open_store

    store = open_store(uri, database)
    if find_generator(store, name) is not None:
        return store
    console.print(f"no registered model {name!r}: training one on MP-20 + MPTS-52 (once; then it is registered)")
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=True,
    )  # fmt: skip
    with progress:
        enc = progress.add_task("symmetry analysis of the training structures", total=None)
        fit = progress.add_task("training the Wyckoff transformer", total=None, visible=False)

        def encoded(i: int, total: int) -> None:
            progress.update(enc, completed=i, total=total)

        def stepped(i: int, total: int, loss: float) -> None:
            progress.update(fit, completed=i, total=total, visible=True, description=f"training (loss {loss:.3f})")

        model_id = ensure_generator(store, name, encode_progress=encoded, step_progress=stepped)
    console.print(f"registered generator model [bold]{model_id}[/]")
    return store


def _novelty_index() -> Any:
    from generation.data import NoveltyIndex, training_rows

    try:
        return NoveltyIndex.from_rows(training_rows())
    except ConfigError as exc:  # no training files here (offline, no copy): novelty unknown
        console.print(f"[yellow]novelty not checked:[/] {exc}")
        return NoveltyIndex()


def _write(out: Path, candidates: list[Any], reasons: list[str], known: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    width = len(str(len(candidates)))
    rows = []
    for k, (cand, reason, match) in enumerate(zip(candidates, reasons, known, strict=True)):
        formula = cand.structure.composition.reduced_formula
        name = f"{k:0{width}d}_{formula}.cif"
        cand.structure.to(filename=str(out / name))
        prov = cand.provenance()
        rows.append(
            {
                "file": name,
                "formula": formula,
                "generator": prov["generator"],
                "version": prov["generator_version"],
                "parents": ";".join(prov["parents"]),
                "parameters": json.dumps(
                    prov["parameters"] | ({"substitutions": cand.substitutions} if cand.substitutions else {})
                ),
                "condition": prov["condition"],
                "passed_filters": not reason,
                "reason": reason,
                "novel": "" if reason else not match,
                "known_as": match,
            }
        )
    with (out / "generated.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _summary(
    generator: str, n: int, candidates: list[Any], report: Any, known: list[str], elapsed: float, out: Path
) -> None:
    table = Table(title=f"{generator}: {len(candidates)} of {n} asked for in {elapsed:.1f} s")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_row("passed filters", str(len(report.passed)))
    table.add_row(
        "  of which novel (not in MP-20 / MPTS-52)",
        str(sum(1 for r, m in zip(report.reasons, known, strict=True) if not r and not m)),
    )
    for reason, count in report.rejected.most_common():
        table.add_row(f"rejected: {reason}", str(count))
    console.print(table)
    console.print(f"wrote {len(candidates)} CIFs and {out / 'generated.csv'}")
