"""Layouts of the Campaigns, Candidates, Rounds and Models pages (their callbacks are in :mod:`dashboard.app`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from dash import dcc, html

from dashboard.widgets import PAGE_SIZE, REFRESH_MS, candidate_columns, field, table
from store.browse import (
    NUMERIC_COLUMNS,
    STATUSES,
)

log = logging.getLogger("battery_discovery.dashboard")


def campaigns_page() -> html.Div:
    return html.Div(
        [
            html.H1("Campaigns", className="title is-4"),
            html.P("Every campaign in the store; refreshed every 5 s while a loop runs.", className="subtitle is-6"),
            dcc.Interval(id="campaigns-refresh", interval=REFRESH_MS),
            html.Div(id="campaigns-body"),
        ]
    )


def _text(component_id: str, value: str, placeholder: str) -> dcc.Input:
    """A text box that applies on Enter or when it loses focus (not on every keystroke)."""
    return dcc.Input(id=component_id, value=value, debounce=True, placeholder=placeholder, className="input is-small")


def _candidate_filters(first: Callable[[str], str]) -> html.Div:
    """The filter fields of the candidates page, filled from the URL's query (``first(key)``)."""
    return html.Div(
        className="columns is-multiline",
        children=[
            field("Campaign", dcc.Dropdown(id="f-campaign", value=first("campaign") or None), 2),
            field(
                "Where",
                _text("f-where", first("where"), "pred_band_gap >= 3 and e_above_hull <= 0.05"),
                4,
                help="numeric columns compared with numbers, joined by 'and' (hover for the names)",
                title=", ".join(NUMERIC_COLUMNS),
            ),
            field(
                "Elements (all of)",
                _text("f-elements", first("elements"), "Fe,O"),
                1,
            ),
            field(
                "Contains",
                dcc.Dropdown(
                    id="f-alkali",
                    options=[{"label": v, "value": v} for v in ("Li", "Na", "Li or Na")],
                    value=first("alkali") or None,
                    placeholder="Li / Na",
                ),
                1,
            ),
            field(
                "Formula starts",
                _text("f-formula", first("formula"), "LiFe"),
                1,
            ),
            field("Generator", dcc.Dropdown(id="f-generator", value=first("generator") or None), 1),
            field(
                "Status",
                dcc.Dropdown(
                    id="f-status",
                    options=[{"label": s, "value": s} for s in STATUSES],
                    value=first("status") or None,
                ),
                1,
            ),
            field(
                "Round",
                dcc.Input(
                    id="f-round",
                    type="number",
                    value=first("round") or None,
                    debounce=True,
                    className="input is-small",
                ),
                1,
            ),
        ],
    )


def candidates_page(query: dict[str, list[str]]) -> html.Div:
    def first(key: str, default: str = "") -> str:
        return query.get(key, [default])[0]

    return html.Div(
        [
            html.H1("Candidates", className="title is-4"),
            _candidate_filters(first),
            html.Div(
                className="level",
                children=[
                    html.Div(
                        [
                            html.Span(id="cand-count", className="is-size-6 mr-2"),
                            html.Button(
                                "count all",
                                id="count-all",
                                className="button is-small is-text",
                                style={"display": "none"},
                            ),
                        ],
                        className="level-left",
                    ),
                    html.Div(
                        className="level-right buttons",
                        children=[
                            html.Button("Export CSV", id="export-csv", className="button is-small"),
                            html.Button("Export JSON", id="export-json", className="button is-small"),
                            html.Button("Export CIFs (zip)", id="export-cif", className="button is-small"),
                        ],
                    ),
                ],
            ),
            html.Div(id="cand-message"),
            table(
                "cand-table",
                candidate_columns(),
                page_action="custom",
                page_current=0,
                page_size=PAGE_SIZE,
                page_count=1,
                sort_action="custom",
                sort_mode="single",
                sort_by=[{"column_id": "pred_e_above_hull", "direction": "asc"}],
            ),
            html.P(
                "Sorting by a numeric column shows the rows that have a value in it. 'pred.' columns are the latest "
                "model predictions (mean, ± one standard deviation); the others are the oracle's (CHGNet relaxation, "
                "MP-phase hull) and the property models on the relaxed structure.",
                className="help",
            ),
            dcc.Download(id="download"),
        ]
    )


def rounds_page(query: dict[str, list[str]]) -> html.Div:
    return html.Div(
        [
            html.H1("Rounds", className="title is-4"),
            html.Div(
                className="columns",
                children=[
                    field("Campaign", dcc.Dropdown(id="r-campaign", value=query.get("campaign", [None])[0]), 3),
                    field(
                        "Hit: E_hull ≤ (eV/atom)",
                        dcc.Input(
                            id="r-threshold",
                            type="number",
                            value=0.05,
                            step=0.01,
                            debounce=True,
                            className="input is-small",
                        ),
                        2,
                    ),
                    field(
                        "Colour points by",
                        dcc.RadioItems(
                            id="r-color",
                            options=[
                                {"label": " round", "value": "round"},
                                {"label": " gap uncertainty", "value": "band_gap_std"},
                            ],
                            value="round",
                            inline=True,
                        ),
                        3,
                    ),
                ],
            ),
            dcc.Interval(id="rounds-refresh", interval=REFRESH_MS * 2),
            html.Div(id="rounds-message"),
            html.Div(
                className="columns is-multiline",
                children=[
                    html.Div(dcc.Graph(id="g-best"), className="column is-half"),
                    html.Div(dcc.Graph(id="g-hits"), className="column is-half"),
                    html.Div(dcc.Graph(id="g-error"), className="column is-half"),
                    html.Div(dcc.Graph(id="g-calibration"), className="column is-half"),
                    html.Div(dcc.Graph(id="g-scatter"), className="column is-full"),
                ],
            ),
            html.H2("Selected candidates", className="title is-5"),
            html.P("Drag a box or lasso on the scatter to list those candidates here.", className="help"),
            table("selected-table", candidate_columns(), page_size=15),
        ]
    )


def models_page() -> html.Div:
    return html.Div(
        [
            html.H1("Models", className="title is-4"),
            html.P(
                "The model registry: loop ensembles per round and property models. Select a row for its parity plot."
            ),
            html.Div(id="models-message"),
            table("models-table", [], row_selectable="single", selected_rows=[], page_size=20, sort_action="native"),
            html.Div(id="model-parity"),
        ]
    )
