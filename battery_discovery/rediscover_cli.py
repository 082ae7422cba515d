"""``battery-discovery rediscover``: the temporal rediscovery benchmark (see battery_discovery.rediscover)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.errors import DiscoveryError

app = typer.Typer(add_completion=False)
console = Console(stderr=True)

DEV_KNOWN = "mp20:val,mpts52:val[year <= 2002]"
DEV_FUTURE = "mpts52:val[year >= 2003]"


def _split_specs(text: str) -> tuple[str, ...]:
    """Comma-separated specs; commas inside [...] filters stay."""
    out, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += ch
    out.append(current.strip())
    return tuple(s for s in out if s)


@app.command()
def rediscover(
    known: Annotated[
        str,
        typer.Option(
            help="Comma-separated ingest specs of the phases the campaign may know (seeds, hull references), each "
            "optionally filtered by its labels or metadata in brackets.",
        ),
    ] = DEV_KNOWN,
    future: Annotated[
        str, typer.Option(help="Ingest spec of the phases hidden from the campaign (first reported later).")
    ] = DEV_FUTURE,
    elements: Annotated[str, typer.Option(help="Future phases and seeds hold one of these.")] = "Li,Na",
    rounds: Annotated[int, typer.Option(min=1, help="Rounds after round 0.")] = 10,
    batch_size: Annotated[int, typer.Option(min=1, help="Oracle calls per round.")] = 16,
    strategies: Annotated[
        str, typer.Option(help="Comma-separated acquisition strategies; 'random' is the baseline.")
    ] = ("ucb,random"),
    seeds: Annotated[int, typer.Option(min=1, help="Repetitions (seed sample, models and acquisition).")] = 2,
    n_seeds: Annotated[int, typer.Option(min=1, help="Known phases seeding each campaign.")] = 48,
    candidates_per_round: Annotated[int, typer.Option(min=1, help="New candidates generated per round.")] = 100,
    parent_pool: Annotated[
        bool,
        typer.Option(
            help="Every known phase holding one of the elements (within generate.max_sites) is also an unlabelled "
            "parent of every campaign: the generators reach many more future phases than from the seeds alone.",
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML of further LoopConfig keys for every campaign (surrogate, ...)."),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Folder of the raw data files (default ../shared/data beside the checkout).")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Campaigns side by side, one process and one torch thread each.")
    ] = 2,
    out: Annotated[Path, typer.Option(help="Results JSON.")] = Path("rediscover.json"),
    plot: Annotated[Path | None, typer.Option(help="PNG: rediscoveries vs oracle calls, hit rate per round.")] = None,
    store_uri: Annotated[str, typer.Option("--store-uri", envvar="BATTERY_DISCOVERY_STORE_URI")] = "embedded",
) -> None:
    """Temporal rediscovery benchmark: does a campaign find real Li/Na materials it was never shown?

    Known phases seed the campaigns and make their hull; future phases (first reported later) are hidden. Each
    strategy and seed is an ordinary discovery-loop campaign (Prefect flow, store, oracle, retraining) from the
    same seeds; 'random' picks at random from the same generated candidates. After each round it counts the future
    phases matched (StructureMatcher, same reduced formula) among the generated candidates, the evaluated ones and
    those the oracle calls stable (energy above hull <= 0.05 eV/atom), and the round's hit rate. Re-running the
    same command resumes it.

    Example (the development split: 111 Li/Na phases first reported 2003-2004 hidden):
    battery-discovery rediscover --known "mp20:val,mpts52:val[year <= 2002]" --future "mpts52:val[year >= 2003]"
    --rounds 10 --batch-size 16 --strategies ucb,random --seeds 2 --out rediscover.json --plot rediscover.png
    """
    from battery_discovery.rediscover import SUMMARY_COLUMNS, RediscoverConfig, plot_results, summary_rows
    from battery_discovery.rediscover_run import run_rediscovery

    loop: dict[str, Any] = {}
    if config is not None:
        import yaml

        try:
            loop = yaml.safe_load(config.read_text()) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise DiscoveryError(f"cannot read {config}: {str(exc).splitlines()[0]}") from None
        if not isinstance(loop, dict):
            raise DiscoveryError(f"{config}: expected a mapping of LoopConfig keys")
    try:
        cfg = RediscoverConfig(
            known=_split_specs(known),
            future=future.strip(),
            elements=tuple(e.strip() for e in elements.split(",") if e.strip()),
            rounds=rounds,
            batch_size=batch_size,
            strategies=tuple(s.strip() for s in strategies.split(",") if s.strip()),
            seeds=seeds,
            n_seeds=n_seeds,
            candidates_per_round=candidates_per_round,
            parent_pool=parent_pool,
            loop=loop,
            store_uri=store_uri,
            cache_dir=str(cache_dir) if cache_dir else None,
        )
    except ValueError as exc:
        raise DiscoveryError(f"invalid rediscover settings: {str(exc).splitlines()[-1].strip()}") from None
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    results = run_rediscovery(cfg, workers=workers, say=lambda m: console.print(m))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    table = Table(title=f"{results['n_future']} future phases hidden, {results['n_known']} known")
    for col in SUMMARY_COLUMNS:
        table.add_column(col)
    for row in summary_rows(results):
        table.add_row(*row)
    console.print(table)
    if plot is not None:
        console.print(f"plot: {plot_results(results, plot)}")
    console.print(f"results: {out} (total {results['total_wall_s']:.0f} s)")
