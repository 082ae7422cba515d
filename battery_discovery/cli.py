"""``battery-discovery``: run the loop, query the store, check status, manage the embedded store."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from battery_discovery.prefect_output import one_line_errors
from core.errors import DiscoveryError, StoreUnavailableError

app = typer.Typer(
    help=__doc__.splitlines()[0] + "\n\nClosed-loop discovery of Li/Na battery materials: generate candidates, "
    "predict with a MatGL ensemble, acquire with BoTorch, relax with CHGNet and score with SevenNet (the oracle), "
    "store in MongoDB, retrain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
store_app = typer.Typer(help="Manage the embedded MongoDB-compatible store server.", no_args_is_help=True)
app.add_typer(store_app, name="store")
from battery_discovery.models_cli import app as models_app  # noqa: E402  (train, evaluate, predict: property models)

app.add_typer(models_app)
from battery_discovery.data_cli import data_app  # noqa: E402

app.add_typer(data_app, name="data")
from battery_discovery.query_cli import app as query_app  # noqa: E402  (query: candidates by any property)

app.add_typer(query_app)
from battery_discovery.screen_cli import app as screen_app  # noqa: E402  (screen: your own structures)

app.add_typer(screen_app)
from battery_discovery.generate_cli import app as generate_app  # noqa: E402  (generate: candidate structures)

app.add_typer(generate_app)
from battery_discovery.dashboard_cli import app as dashboard_app  # noqa: E402  (dashboard: the web pages)

app.add_typer(dashboard_app)
from battery_discovery.rediscover_cli import app as rediscover_app  # noqa: E402  (rediscover: the benchmark)

app.add_typer(rediscover_app)
# Wide enough for the tables when piped (rich would fall back to 80 columns).
console = Console(width=None if sys.stdout.isatty() else 180)
err_console = Console(stderr=True, soft_wrap=True)

StoreUri = Annotated[
    str,
    typer.Option("--store-uri", envvar="BATTERY_DISCOVERY_STORE_URI", help="'embedded', mongodb://... or mongomock://"),
]
Database = Annotated[str, typer.Option("--database", help="MongoDB database name.")]


def _quiet_prefect_env() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML file with LoopConfig keys.")] = None,
    rounds: Annotated[int | None, typer.Option(help="Rounds after round 0 (overrides the file).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Oracle evaluations per round.")] = None,
    candidates_per_round: Annotated[int | None, typer.Option(help="New candidates generated per round.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign name (resumes if it exists).")] = None,
    strategy: Annotated[str | None, typer.Option(help="Acquisition strategy: ucb, logei, greedy, random.")] = None,
    acquisition_config: Annotated[
        str | None,
        typer.Option(help="Acquisition YAML file or preset:<name> (electrolyte, exploration, exploitation)."),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(help="Comma-separated seeds: pymatgen:default, pymatgen:Li2O, files, folders."),
    ] = None,
    store_uri: Annotated[str | None, typer.Option("--store-uri", envvar="BATTERY_DISCOVERY_STORE_URI")] = None,
) -> None:
    """Run the discovery loop in this process (a temporary Prefect server is started if none is set).

    Without options this is the embedded default: the Li/Na seeds bundled with pymatgen, labelled by
    the oracle in round 0 (CHGNet relaxation, SevenNet-l3i5 energy, the hull completed with computed phases where
    the reference files are thin), then three rounds of substitution → MEGNet ensemble → qUCB → oracle.
    Re-running the same campaign resumes it: completed rounds are skipped.
    """
    from loop.plan import build_config, build_plan, load_config

    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "rounds": rounds,
            "batch_size": batch_size,
            "candidates_per_round": candidates_per_round,
            "campaign": campaign,
            "store_uri": store_uri,
            "seeds": [s.strip() for s in seeds.split(",") if s.strip()] if seeds else None,
        }.items()
        if v is not None
    }
    cfg = load_config(config, overrides) if config else build_config(overrides)
    if acquisition_config:  # replaces the file's acquisition section; --strategy still wins
        from acquisition.config import load_acquisition_config

        acquisition = load_acquisition_config(acquisition_config)
        cfg = build_config({**cfg.model_dump(), "acquisition": acquisition.model_dump()})
    if strategy:
        cfg = build_config({**cfg.model_dump(), "acquisition": {**cfg.acquisition.model_dump(), "strategy": strategy}})
    build_plan(cfg).source.check()  # fail fast, before Prefect starts, on a bad seed file
    from store import open_store
    from store.connection import URI_VARIABLE, has_password, redact_uri, resolve_uri

    if has_password(cfg.store_uri):  # the password stays in this process's environment, out of flow parameters
        os.environ[URI_VARIABLE] = cfg.store_uri
        cfg = build_config({**cfg.model_dump(), "store_uri": f"env:{URI_VARIABLE}"})
    from store.leases import CampaignLease

    # fail fast, before Prefect starts, on an unreachable store or a campaign another run is running
    CampaignLease(open_store(cfg.store_uri, cfg.database), cfg.campaign).check()
    shown_uri = redact_uri(resolve_uri(cfg.store_uri))
    _quiet_prefect_env()
    from flows.discovery_loop import discovery_loop

    one_line_errors()
    console.print(
        f"[bold]discovery-loop[/] campaign [cyan]{cfg.campaign}[/]: {cfg.rounds} rounds x {cfg.batch_size} "
        f"candidates, strategy {cfg.acquisition.strategy}, labeler {cfg.labeler} "
        f"({cfg.oracle.name}), store {shown_uri}"
    )
    result = discovery_loop(**{name: getattr(cfg, name) for name in type(cfg).model_fields})
    _print_summary(result, cfg.store_uri, cfg.database, cfg.campaign)


def _print_summary(result: dict[str, Any], uri: str, database: str, campaign: str) -> None:
    table = Table(title=f"Campaign {campaign}: rounds run now", show_lines=False)
    for col in ("round", "batch", "evaluated", "failed", "model trained", "wall s"):
        table.add_column(col)
    for s in result["summaries"]:
        batch = ", ".join(
            f"{a['formula']}"
            + (
                f" ({a['formation_energy_per_atom']:.2f})"
                if a["formation_energy_per_atom"] is not None
                else f" ({a['status']})"
            )
            for a in s["acquired"]
        )
        table.add_row(
            str(s["round"]),
            batch,
            str(s["n_evaluated"]),
            str(s["n_failed"]),
            str(s["trained_model"]),
            f"{s['timings'].get('total', 0):.0f}",
        )
    console.print(table)
    from battery_discovery.tables import best_table

    console.print(best_table(result["best"], "Most stable so far (energy above the hull of MP phases)"))
    _print_discoveries(uri, database, campaign)
    console.print(
        "Next: [bold]battery-discovery status[/], "
        "[bold]battery-discovery query --where 'band_gap >= 3' --predicted[/], "
        "or the Prefect UI (prefect server start) for artifacts per round."
    )


def _print_discoveries(uri: str, database: str, campaign: str) -> None:
    """One line: the campaign's stable, unique and novel (S.U.N.) candidates after its last completed round."""
    from store import open_store

    try:
        rounds = [r for r in open_store(uri, database).list_rounds(campaign) if r.status == "completed"]
    except DiscoveryError:
        return
    _print_sun(rounds[-1].metrics if rounds else {})


def _print_sun(metrics: dict[str, Any]) -> None:
    if "n_sun" not in metrics:
        return
    console.print(
        f"Discoveries: {metrics['n_sun']} stable, unique and novel (S.U.N., within 0.1 eV/atom of the hull) of "
        f"{metrics.get('n_evaluated', 0)} evaluated candidates; {metrics.get('n_stable_known', 0)} stable ones are "
        "known materials."
    )


@app.command()
def status(
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
    store_uri: StoreUri = "embedded",
    database: Database = "battery_discovery",
) -> None:
    """Rounds so far, best candidates and model versions."""
    from store import open_store

    store = open_store(store_uri, database)
    counts = store.counts()
    console.print("store: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    rounds = store.list_rounds(campaign)
    table = Table(title="Rounds")
    for col in (
        "campaign",
        "round",
        "status",
        "new",
        "pool",
        "evaluated",
        "failed",
        "model",
        "val MAE",
        "wall s",
    ):
        table.add_column(col)
    for r in rounds:
        mae = r.model_metrics.get("val_mae")
        table.add_row(
            r.campaign,
            str(r.round),
            r.status,
            str(r.n_generated),
            str(r.n_pool),
            str(r.n_evaluated),
            str(r.n_failed),
            r.trained_model or "",
            "" if mae is None else f"{mae:.3f}",
            f"{r.timings.get('total', 0):.0f}",
        )
    console.print(table)
    if rounds:
        from battery_discovery.tables import best_table

        console.print(best_table(rounds[-1].best, f"Best so far in {rounds[-1].campaign}"))
        last = rounds[-1].campaign
        _print_sun(next((r.metrics for r in reversed(rounds) if r.campaign == last and r.status == "completed"), {}))
    models = store.list_models(campaign)
    if models:
        mt = Table(title="Models")
        for col in ("version", "property", "members", "n_train", "val MAE", "held out", "path"):
            mt.add_column(col)
        for m in models:
            mae = m.metrics.get("val_mae")
            mt.add_row(
                m.id,
                m.property_name,
                str(m.n_members),
                str(m.n_train),
                "" if mae is None else f"{mae:.3f}",
                str(m.metrics.get("held_out", "")),
                m.path,
            )
        console.print(mt)


def _benchmark_config(
    *,
    pool: str,
    target: str,
    initial: int,
    batch: int,
    rounds: int,
    seeds: int,
    strategies: tuple[str, ...],
    surrogate_model: str,
    knobs: dict[str, Any],
    store_uri: str,
) -> Any:
    """The replay benchmark's settings, every strategy's loop config checked before anything runs (one line on
    an invalid setting). ``surrogate_model``: auto, gnn or a descriptor kind; ``knobs``: surrogate options."""
    from battery_discovery.benchmark import BenchmarkConfig, loop_parameters
    from loop.plan import build_config

    surrogate: dict[str, object] = {k: v for k, v in knobs.items() if v is not None}
    if surrogate_model == "gnn":
        surrogate["descriptor"] = None
    elif surrogate_model != "auto":
        surrogate["descriptor"] = surrogate_model
    try:
        bench = BenchmarkConfig(
            pool=pool,
            target=target,
            initial=initial,
            batch=batch,
            rounds=rounds,
            seeds=seeds,
            strategies=strategies,
            surrogate=surrogate,
            store_uri=store_uri,
        )
    except ValueError as exc:
        raise DiscoveryError(f"invalid benchmark settings: {str(exc).splitlines()[-1].strip()}") from None
    for name in strategies:  # every strategy and the target checked before anything runs
        try:
            build_config(loop_parameters(bench, name, 0))
        except ValueError as exc:
            raise DiscoveryError(f"invalid benchmark settings: {str(exc).splitlines()[-1].strip()}") from None
    return bench


@app.command()
def benchmark(
    pool: Annotated[str, typer.Option(help="Labelled pool: a CSV in the perovskite format (cif + label columns).")],
    target: Annotated[str, typer.Option(help="Which entries count, e.g. 'ind_gap >= 1.5 and heat_all <= 0.5'.")],
    initial: Annotated[int, typer.Option(help="Random initial labels per seed (the same for every strategy).")] = 100,
    batch: Annotated[int, typer.Option(help="Oracle calls per round.")] = 32,
    rounds: Annotated[int, typer.Option(help="Rounds after the initial set.")] = 10,
    seeds: Annotated[int, typer.Option(help="Repetitions with different initial sets.")] = 3,
    strategies: Annotated[
        str, typer.Option(help="Comma-separated: random, greedy, ucb, logei, thompson, target_probability, ...")
    ] = "random,greedy,ucb,logei,target_probability",
    out: Annotated[Path, typer.Option(help="Results JSON.")] = Path("results.json"),
    plot: Annotated[Path | None, typer.Option(help="PNG of targets found vs oracle calls.")] = None,
    surrogate_model: Annotated[
        str,
        typer.Option(
            "--surrogate",
            help="auto (default: descriptor ensembles, hurdle-gb for a zero-inflated target, else chgnet-gb), "
            "chgnet-gb, hurdle-gb, gb-ensemble, or gnn (MEGNet ensembles; --epochs and --warm-epochs apply).",
        ),
    ] = "auto",
    members: Annotated[int | None, typer.Option(help="Ensemble members (surrogate.n_members).")] = None,
    epochs: Annotated[
        int | None, typer.Option(help="GNN training epochs per round (surrogate.epochs; replay default 20).")
    ] = None,
    warm_epochs: Annotated[
        int | None,
        typer.Option(help="Epochs of a warm-started retrain (surrogate.warm_start_epochs; default: --epochs)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Campaigns run side by side, one process and one torch thread each (1: one after another in "
            "this process). Results do not depend on it.",
        ),
    ] = 2,
    store_uri: Annotated[str, typer.Option("--store-uri", envvar="BATTERY_DISCOVERY_STORE_URI")] = "embedded",
) -> None:
    """Replay benchmark: the discovery loop on a labelled pool, the oracle revealing known labels.

    Every strategy and seed is a replay campaign of the ordinary loop (Prefect flow, store, retraining,
    acquisition); results.json holds n_pool, n_targets and, per strategy, found_per_round (mean over seeds of
    the cumulative targets found after the initial set and each round) with the per-seed lists and the
    enrichment over random. Re-running the same command resumes it.

    Example: battery-discovery benchmark --pool ../shared/data/perov_5/val.csv
    --target "ind_gap >= 1.5 and heat_all <= 0.5" --initial 100 --batch 32 --rounds 10 --seeds 3 --out results.json
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from battery_discovery.benchmark import plot_curves, run_benchmark, summary_rows

    names = tuple(s.strip() for s in strategies.split(",") if s.strip())
    knobs = {"n_members": members, "epochs": epochs, "warm_start_epochs": warm_epochs}
    bench = _benchmark_config(
        pool=pool, target=target, initial=initial, batch=batch, rounds=rounds, seeds=seeds, strategies=names,
        surrogate_model=surrogate_model, knobs=knobs, store_uri=store_uri,
    )  # fmt: skip
    from ingest.api import load_dataset

    load_dataset(bench.pool_spec())  # a missing or malformed pool fails here, before Prefect and the workers start
    _quiet_prefect_env()
    total = len(names) * seeds * (rounds + 1)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("replay", total=total)

        def progress(strategy: str, seed: int, r: int, metrics: dict[str, Any]) -> None:
            found = metrics.get("n_targets_found", 0)
            bar.update(task, advance=1, description=f"{strategy} seed {seed} round {r}: {found} targets found")

        results = run_benchmark(bench, progress, workers=workers)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    table = Table(title=f"{results['n_targets']} targets in a pool of {results['n_pool']}")
    for col in ("strategy", "targets found", "vs random", "vs random expectation"):
        table.add_column(col)
    for row in summary_rows(results):
        table.add_row(*row)
    console.print(table)
    if plot is not None:
        console.print(f"plot: {plot_curves(results, plot)}")
    console.print(f"results: {out}")


@app.command("config")
def show_config(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Validate this YAML file and print it.")] = None,
) -> None:
    """Print the full configuration (defaults, or a file after validation) as YAML."""
    from loop.config import LoopConfig, dump_config
    from loop.plan import load_config

    print(dump_config(load_config(config) if config else LoopConfig()), end="")


@store_app.command("start")
def store_start() -> None:
    """Start (or find) the embedded server and print its URI."""
    from store.embedded import ensure_embedded_server

    info = ensure_embedded_server()
    console.print(f"embedded store running: {info.uri} (pid {info.pid}, data {info.db_path})")


@store_app.command("stop")
def store_stop() -> None:
    """Stop the embedded server (its data stays on disk)."""
    from store.embedded import stop_embedded_server

    console.print("stopped" if stop_embedded_server() else "no embedded store was running")


@store_app.command("status")
def store_status() -> None:
    """Say whether this data home's embedded server runs, and list every embedded server of this user here.

    Servers stop by themselves after BATTERY_DISCOVERY_STORE_IDLE_S seconds (default 1800; 0: never) without a
    client; any command that needs the store starts its server again.
    """
    from store.embedded import embedded_server_status, idle_timeout_s, running_servers

    info = embedded_server_status()
    console.print(
        f"this data home: running at {info.uri} (pid {info.pid}, data {info.db_path})"
        if info
        else "this data home: not running"
    )
    idle = idle_timeout_s()
    console.print(f"idle stop: after {idle:g} s without a client" if idle else "idle stop: never")
    servers = running_servers()
    console.print(f"embedded servers of this user on this machine: {len(servers)}")
    for server in servers:
        console.print(f"  pid {server['pid']}  127.0.0.1:{server['port']}  {server['data']}")


#: errno values of a full disk or quota: reported in one line, not a traceback.
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def _ran_loop() -> bool:
    """Whether this command runs campaigns (run, benchmark): a lost store there means a resumable stop."""
    return any(arg in ("run", "benchmark") for arg in sys.argv[1:2])


def _quiet_prefect_exit() -> None:
    """Keep Prefect's INFO lines at exit ("Stopping temporary server ...") from following the error line."""
    logging.getLogger("prefect").setLevel(logging.WARNING)


def _fail(message: str, code: int = 2) -> NoReturn:
    """Print one line on stderr, as the last line of the output, and exit."""
    _quiet_prefect_exit()
    err_console.print(message, highlight=False)
    sys.exit(code)


def main() -> None:
    """Entry point: user errors print one line and exit 2."""
    try:
        app()
    except StoreUnavailableError as exc:
        hint = " (completed work is in the store: run the same command again to resume)" if _ran_loop() else ""
        _fail(f"[bold red]error:[/] {exc}{hint}")
    except DiscoveryError as exc:
        _fail(f"[bold red]error:[/] {exc}")
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        hint = "; completed work is in the store: free space, then run the same command again to resume"
        _fail(f"[bold red]error:[/] disk full{where} ({exc.strerror or exc}){hint if _ran_loop() else ''}")
    except KeyboardInterrupt:
        _fail("interrupted: completed work is in the store; re-run the same campaign to resume", 130)
    finally:
        _close_store_clients()


def _close_store_clients() -> None:
    """Close the MongoDB clients a command opened (else Python warns of an unclosed MongoClient at exit)."""
    connection = sys.modules.get("store.connection")
    if connection is not None:
        connection.close_clients()


if __name__ == "__main__":
    main()
