"""Shared pieces of the dashboard's pages: store access, messages, guarded callbacks, tables, form fields."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dash import dash_table, dcc, html, no_update

from core.errors import StoreUnavailableError
from store import CandidateStore, open_store
from store.browse import COLUMNS
from store.connection import redact_uri

log = logging.getLogger("battery_discovery.dashboard")

ASSETS = Path(__file__).resolve().parent / "assets"
PAGE_SIZE = 25
REFRESH_MS = 5000
COUNT_TTL_S = 10.0
COUNT_CAP = 1000  # rows counted before 'more than ...' (an exact count is a button away)
#: Columns the candidates table shows (all of store.browse.COLUMNS but the element list).
TABLE_COLUMNS = [c for c in COLUMNS if c.name not in ("elements",)]


class StoreAccess:
    """Opens the store per request (clients are cached per process) with a short timeout, so a store that went
    away shows up as a message within two seconds instead of a hung page."""

    def __init__(self, uri: str, database: str, *, timeout_ms: int = 2000) -> None:
        self.uri, self.database, self.timeout_ms = uri, database, timeout_ms

    def __call__(self) -> CandidateStore:
        return open_store(self.uri, self.database, timeout_ms=self.timeout_ms)


def message(text: str, kind: str = "info", detail: str = "") -> html.Div:
    """A notification box (Bulma ``notification is-<kind>``)."""
    children: list[Any] = [html.Strong(text)]
    if detail:
        children += [html.Br(), html.Span(detail)]
    return html.Div(children, className=f"notification is-{kind} is-light", **{"data-kind": kind})


def guarded(render: Callable[..., Any], *, what: str, store: StoreAccess, outputs: int = 1) -> Callable[..., Any]:
    """Wrap a callback so that store errors and bugs become a message in the page (never a stack trace)."""

    def wrapper(*args: Any) -> Any:
        try:
            return render(*args)
        except StoreUnavailableError as exc:
            box = message(
                "The candidate store is not reachable.",
                "danger",
                f"{exc} — start it with `battery-discovery store start`, or point the dashboard at another with "
                f"--store-uri (now {redact_uri(store.uri)!r}).",
            )
        except ValueError as exc:
            box = message(f"Cannot show {what}: {exc}", "warning")
        except Exception as exc:  # a bug: logged with its traceback, summarised in the page
            log.error("dashboard error in %s:\n%s", what, traceback.format_exc())
            box = message(f"Something went wrong showing {what}.", "danger", f"{type(exc).__name__}: {exc}")
        if outputs == 1:
            return box
        return (box, *([no_update] * (outputs - 1)))

    wrapper.__name__ = getattr(render, "__name__", "callback")
    return wrapper


def fmt(value: Any, digits: int = 3) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    return value


# layout -----------------------------------------------------------------------------------------------------------
def navbar(uri: str, database: str) -> html.Nav:
    links = [("Campaigns", "/"), ("Candidates", "/candidates"), ("Rounds", "/rounds"), ("Models", "/models")]
    return html.Nav(
        className="navbar is-dark",
        children=[
            html.Div(
                className="navbar-brand",
                children=[html.A("battery-discovery", href="/", className="navbar-item has-text-weight-bold")],
            ),
            html.Div(
                className="navbar-menu is-active",
                children=[
                    html.Div(
                        className="navbar-start",
                        children=[dcc.Link(label, href=href, className="navbar-item") for label, href in links],
                    ),
                    html.Div(
                        className="navbar-end",
                        children=[
                            html.Span(f"store: {redact_uri(uri)} / {database}", className="navbar-item is-size-7")
                        ],
                    ),
                ],
            ),
        ],
    )


def table(
    table_id: str, columns: list[dict[str, Any]], data: list[dict[str, Any]] | None = None, **kwargs: Any
) -> dash_table.DataTable:
    return dash_table.DataTable(
        id=table_id,
        columns=columns,
        data=data or [],
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": "inherit", "fontSize": "0.85rem", "padding": "4px 8px", "textAlign": "left"},
        style_header={"fontWeight": "bold", "backgroundColor": "#f5f5f5"},
        markdown_options={"link_target": "_self"},
        **kwargs,
    )


def candidate_columns() -> list[dict[str, Any]]:
    cols = []
    for c in TABLE_COLUMNS:
        spec: dict[str, Any] = {"name": c.label, "id": c.name}
        if c.name in ("formula",):
            spec["presentation"] = "markdown"
        elif c.numeric:
            spec["type"] = "numeric"
        cols.append(spec)
    return cols


def field(label: str, control: Any, width: int, help: str = "", title: str = "") -> html.Div:
    children = [html.Label(label, className="label is-small"), control]
    if help:
        children.append(html.P(help, className="help", title=title or None))
    return html.Div(children, className=f"column is-{width}", title=title or None)
