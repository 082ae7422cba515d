"""``battery-discovery dashboard``: the web dashboard over the candidate store (read-only).

Merged into the top-level command (``app.add_typer`` in battery_discovery/cli.py); the app is :mod:`dashboard.app`.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from core.errors import ConfigError

app = typer.Typer(no_args_is_help=False, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def dashboard(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on. 127.0.0.1 keeps it on this machine; 0.0.0.0 opens it to the network."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8050,
    store_uri: Annotated[
        str, typer.Option("--store-uri", envvar="BATTERY_DISCOVERY_STORE_URI", help="'embedded' or mongodb://...")
    ] = "embedded",
    database: Annotated[str, typer.Option(help="Database name in the store.")] = "battery_discovery",
    debug: Annotated[bool, typer.Option(help="Dash debug mode (reloader, error pop-ups): for development.")] = False,
) -> None:
    """Explore campaigns, candidates, rounds and models in the browser (http://HOST:PORT).

    Pages: Campaigns (updates while a loop runs), Candidates (filter with --where syntax, sort, page; export CSV,
    JSON or a zip of CIFs), a page per candidate (3D structure, symmetry, predicted vs oracle values, relaxation,
    provenance, hull and phase diagram, link to its Prefect flow run), Rounds (progression, model error,
    calibration, a property scatter whose selection lists candidates) and Models (registry, parity plots).
    Nothing is written to the store. Stop with Ctrl-C.
    """
    from store.browse import campaign_names
    from store.connection import redact_uri

    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: anyone who can reach this machine can read the store", err=True)
    from dashboard.app import create_app

    _sync_summaries(store_uri, database)
    application = create_app(store_uri, database)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        from store import open_store

        names = campaign_names(open_store(store_uri, database, timeout_ms=2000))
        typer.echo(f"store {redact_uri(store_uri)} / {database}: {len(names)} campaign(s)")
    except Exception as exc:  # the page says so too; start anyway
        typer.echo(f"warning: {exc}", err=True)
    typer.echo(f"dashboard at http://{host}:{port}  (Ctrl-C stops it)")
    try:
        application.run(host=host, port=port, debug=debug)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from None


def _sync_summaries(store_uri: str, database: str) -> None:
    """Stores written before candidates carried their oracle summary get it once (the only write it makes)."""
    try:
        from store import open_store

        store = open_store(store_uri, database, timeout_ms=2000)
        if store.missing_oracle_summaries():
            n = store.sync_oracle_summaries()
            typer.echo(f"store: added the oracle summary to {n} evaluated candidates (written by an older version)")
    except Exception:
        return
