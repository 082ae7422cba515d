"""The web dashboard: a read-only Dash app over the candidate store.

Pages: ``/`` campaigns, ``/candidates`` (a table paged, sorted and filtered by the store, with CSV / JSON / CIF
export), ``/candidate/<id>`` (3D structure, symmetry, predicted vs oracle values, relaxation, provenance, hull and
phase diagram, Prefect link), ``/rounds`` (progression plots and a property scatter whose selection filters a
table) and ``/models`` (the registry with parity plots). Every page catches store errors and unknown ids and says
so in the page; nothing is ever written to the store.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import dash
from dash import Input, Output, State, dcc, html, no_update

from dashboard import data, figures
from dashboard.detail import VIEWER_ONLY_SCRIPTS, candidate_detail_page, phase_diagram_figure, viewer_app
from dashboard.export import cif_zip, rows_csv, rows_json
from dashboard.pages import campaigns_page, candidates_page, models_page, rounds_page
from dashboard.widgets import (
    ASSETS,
    COUNT_CAP,
    COUNT_TTL_S,
    PAGE_SIZE,
    StoreAccess,
    fmt,
    guarded,
    message,
    navbar,
    table,
)
from store.browse import (
    SORTABLE,
    CandidateQuery,
    campaign_names,
    candidate_filter,
    candidate_page,
    count_candidates,
    distinct_generators,
    export_candidates,
)

log = logging.getLogger("battery_discovery.dashboard")


# the app ----------------------------------------------------------------------------------------------------------
def create_app(uri: str = "embedded", database: str = "battery_discovery") -> dash.Dash:
    """The dashboard over the store at ``uri`` / ``database`` (read-only)."""
    store = StoreAccess(uri, database)
    layout = html.Div(
        [
            dcc.Location(id="url"),
            navbar(uri, database),
            html.Section(html.Div(id="page", className="container is-fluid"), className="section"),
        ]
    )
    app = dash.Dash(
        __name__,
        title="battery-discovery",
        assets_folder=str(ASSETS),
        serve_locally=True,
        suppress_callback_exceptions=True,
        update_title=None,
    )
    app.layout = layout
    # crystal-toolkit's 6 MB of JavaScript is needed by the structure viewer only: the viewer is its own Dash app
    # on the same server (framed by the candidate page), and the pages leave the script out (Dash lists every
    # imported component library's scripts in every app's index)
    scripts = app.scripts.get_all_scripts
    app.scripts.get_all_scripts = lambda dev_bundles=False: [  # type: ignore[method-assign]
        r for r in scripts(dev_bundles=dev_bundles) if r.get("namespace") not in VIEWER_ONLY_SCRIPTS
    ]
    viewer_app(app.server, store)

    for register in (
        _routing,
        _campaigns,
        _candidate_table,
        _candidate_count,
        _export,
        _phase_diagram,
        _rounds,
        _models,
    ):
        register(app, store)
    return app


# the callbacks, one group per page part -------------------------------------------------------------------------
# the candidates page's filters, in the order of `make_query`'s arguments
FILTER_INPUTS = [
    Input("f-campaign", "value"),
    Input("f-where", "value"),
    Input("f-elements", "value"),
    Input("f-alkali", "value"),
    Input("f-formula", "value"),
    Input("f-generator", "value"),
    Input("f-status", "value"),
    Input("f-round", "value"),
]


def make_query(
    campaign, where, elements, alkali, formula, generator, status, rnd, page=0, sort_by=None
) -> CandidateQuery:  # type: ignore[no-untyped-def]
    """The store query of the candidates page's filter values, page and sort (an unknown column sorts by the
    predicted energy above hull)."""
    sort = (sort_by or [{"column_id": "pred_e_above_hull", "direction": "asc"}])[0]
    column = sort["column_id"] if sort["column_id"] in SORTABLE else "pred_e_above_hull"
    return CandidateQuery(
        campaign=campaign or "",
        where=where or "",
        elements=tuple(e.strip() for e in (elements or "").replace(" ", ",").split(",") if e.strip()),
        alkali=alkali or "",
        formula=formula or "",
        generator=generator or "",
        status=status or "",
        round=int(rnd) if rnd not in (None, "") else None,
        sort=column,
        descending=sort.get("direction") == "desc",
        page=int(page or 0),
        page_size=PAGE_SIZE,
    )


def _routing(app: dash.Dash, store: StoreAccess) -> None:
    """The page for the URL."""

    def route(pathname: str | None, search: str | None) -> Any:
        pathname = pathname or "/"
        query = parse_qs((search or "").lstrip("?"))
        if pathname in ("/", "/campaigns"):
            return campaigns_page()
        if pathname == "/candidates":
            return candidates_page(query)
        if pathname.startswith("/candidate/"):
            cid = unquote(pathname[len("/candidate/") :])
            return candidate_detail_page(data.candidate_detail(store(), cid), cid)
        if pathname == "/rounds":
            return rounds_page(query)
        if pathname == "/models":
            return models_page()
        return message(f"No page at {pathname}.", "warning", "Use the links above.")

    app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))(
        guarded(route, what="this page", store=store)
    )


def _campaigns(app: dash.Dash, store: StoreAccess) -> None:
    """The campaigns table, refreshed."""

    def campaigns(_: Any) -> Any:
        rows = data.campaign_summaries(store())
        if not rows:
            return message(
                "The store is empty: no campaign yet.",
                "info",
                "Run `make run` or `battery-discovery run` (or `prefect deployment run discovery-loop/local`) and the "
                "campaign appears here as its rounds complete.",
            )
        records = []
        for r in rows:
            records.append(
                {
                    "campaign": f"[{r.name}](/candidates?campaign={quote(r.name)})",
                    "rounds": f"[{r.rounds_completed} completed](/rounds?campaign={quote(r.name)})",
                    "candidates": r.n_candidates,
                    "evaluations": r.n_evaluations,
                    "best so far": (
                        f"[{r.best_formula}](/candidate/{quote(r.best_id)}) ({r.best_e_above_hull:+.3f} eV/atom)"
                        if r.best_id and r.best_e_above_hull is not None
                        else "—"
                    ),
                    "loop": f"running round {r.last_round} (started {r.running_since})" if r.running else "idle",
                    "last activity": r.updated,
                }
            )
        columns = [
            {"name": k, "id": k, "presentation": "markdown"}
            if k in ("campaign", "rounds", "best so far")
            else {"name": k, "id": k}
            for k in records[0]
        ]
        return table("campaigns-table", columns, data=records)

    app.callback(Output("campaigns-body", "children"), Input("campaigns-refresh", "n_intervals"))(
        guarded(campaigns, what="the campaigns", store=store)
    )


def _candidate_table(app: dash.Dash, store: StoreAccess) -> None:
    """The candidates page: the filter options and the table's page."""

    def options(_: Any) -> Any:
        s = store()
        return (
            [{"label": n, "value": n} for n in campaign_names(s)],
            [{"label": g, "value": g} for g in distinct_generators(s)],
        )

    def options_safe(pathname: Any) -> Any:
        try:
            return options(pathname)
        except Exception:
            return [], []

    app.callback(Output("f-campaign", "options"), Output("f-generator", "options"), Input("url", "pathname"))(
        options_safe
    )

    def page(*args: Any) -> Any:
        *filters, page_current, sort_by = args
        query = make_query(*filters, page=page_current, sort_by=sort_by)
        result = candidate_page(store(), query)
        rows = [
            {
                **{k: fmt(v) for k, v in r.items()},
                "formula": f"[{r['formula']}](/candidate/{quote(r['id'])})",
            }
            for r in result.rows
        ]
        if not rows and result.page == 0:
            note = message(
                "No candidate matches these filters." if any(filters) else "No candidates in the store yet.",
                "info",
                "" if any(filters) else "Run `battery-discovery run` to start a campaign.",
            )
        else:
            note = html.Div()
        count = result.page + (2 if result.has_next else 1)
        return rows, count, note

    def page_safe(*args: Any) -> Any:
        out = guarded(page, what="the candidates", store=store, outputs=3)(*args)
        if isinstance(out[0], html.Div):  # an error message: empty the table, show the message
            return [], 1, out[0]
        return out

    app.callback(
        Output("cand-table", "data"),
        Output("cand-table", "page_count"),
        Output("cand-message", "children"),
        *FILTER_INPUTS,
        Input("cand-table", "page_current"),
        Input("cand-table", "sort_by"),
    )(page_safe)


def _candidate_count(app: dash.Dash, store: StoreAccess) -> None:
    """How many candidates match (capped, cached per filter)."""
    counts: dict[str, tuple[float, int]] = {}  # filter -> (time, count): paging does not count again

    def count(rows: Any, _all: Any, page_current: Any, page_count: Any, *args: Any) -> Any:
        """How many rows match, once the rows arrived. The embedded store answers one query at a time and counts
        100,000 candidates in 0.8-5 s, so: exact and free when the last page is in view; else counted up to
        COUNT_CAP (0.1-0.3 s at 100,000), exactly when 'count all' is pressed; cached per filter COUNT_TTL_S s."""
        *filters, sort_by = args
        page_current = int(page_current or 0)
        if not (page_count or 1) > page_current + 1:  # no next page: the rows seen are all there is
            return f"{page_current * PAGE_SIZE + len(rows or []):,} candidates match", {"display": "none"}
        query = make_query(*filters, sort_by=sort_by)
        exact = dash.ctx.triggered_id == "count-all"
        try:
            key = json.dumps(candidate_filter(query), sort_keys=True, default=str) + (":all" if exact else "")
            hit = counts.get(key)
            if hit is None or time.monotonic() - hit[0] > COUNT_TTL_S:
                n = count_candidates(store(), query, limit=0 if exact else COUNT_CAP + 1)
                hit = counts[key] = (time.monotonic(), n)
                if len(counts) > 256:
                    counts.pop(next(iter(counts)))
        except Exception:
            return "", {"display": "none"}
        if not exact and hit[1] > COUNT_CAP:
            return f"more than {COUNT_CAP:,} candidates match", {}
        return f"{hit[1]:,} candidates match", {"display": "none"}

    app.callback(
        Output("cand-count", "children"),
        Output("count-all", "style"),
        Input("cand-table", "data"),
        Input("count-all", "n_clicks"),
        State("cand-table", "page_current"),
        State("cand-table", "page_count"),
        *[State(i.component_id, i.component_property) for i in FILTER_INPUTS],
        State("cand-table", "sort_by"),
    )(count)


def _export(app: dash.Dash, store: StoreAccess) -> None:
    """CSV, JSON and CIF export of the filtered candidates."""

    def export(n_csv: Any, n_json: Any, n_cif: Any, *args: Any) -> Any:
        *filters, sort_by = args
        trigger = dash.ctx.triggered_id
        if trigger is None:
            return no_update
        try:
            rows = export_candidates(store(), make_query(*filters, sort_by=sort_by))
        except Exception as exc:
            log.error("export failed: %s", exc)
            return no_update
        if trigger == "export-csv":
            return dcc.send_bytes(rows_csv(rows), "candidates.csv")
        if trigger == "export-json":
            return dcc.send_bytes(rows_json(rows), "candidates.json")
        return dcc.send_bytes(cif_zip(rows), "candidates-cif.zip")

    app.callback(
        Output("download", "data"),
        Input("export-csv", "n_clicks"),
        Input("export-json", "n_clicks"),
        Input("export-cif", "n_clicks"),
        *[State(i.component_id, i.component_property) for i in FILTER_INPUTS],
        State("cand-table", "sort_by"),
        prevent_initial_call=True,
    )(export)


def _phase_diagram(app: dash.Dash, store: StoreAccess) -> None:
    """The candidate page's phase diagram (slow the first time: the reference phases are read once)."""

    def phase_diagram(cid: str | None) -> Any:
        detail = data.candidate_detail(store(), cid) if cid else None
        if detail is None:
            return no_update
        return phase_diagram_figure(detail)

    app.callback(Output("phase-diagram", "children"), Input("candidate-id", "data"))(
        guarded(phase_diagram, what="the phase diagram", store=store)
    )


def _rounds(app: dash.Dash, store: StoreAccess) -> None:
    """The rounds page: progression plots, the property scatter and its selection."""

    def rounds_options(_: Any, current: Any) -> Any:
        try:
            names = campaign_names(store())
        except Exception:
            return [], None
        return [{"label": n, "value": n} for n in names], current or (names[0] if names else None)

    app.callback(
        Output("r-campaign", "options"),
        Output("r-campaign", "value"),
        Input("url", "pathname"),
        State("r-campaign", "value"),
    )(rounds_options)

    def rounds(campaign: Any, threshold: Any, color: Any, _: Any) -> Any:
        if not campaign:
            blank = figures.empty("no campaign selected")
            names = campaign_names(store())  # raises when the store is down: the page says so
            text = "Choose a campaign." if names else "The store has no campaign yet."
            return message(text, "info"), blank, blank, blank, blank, blank
        t = float(threshold) if threshold is not None else 0.05
        s = store()
        points = data.round_progress(s, campaign, hit_threshold=t)
        scatter = data.scatter_points(s, campaign)
        note = html.Div() if points else message(f"Campaign {campaign!r} has no rounds yet.", "info")
        return (
            note,
            figures.best_so_far(points),
            figures.hits_per_round(points, t),
            figures.model_error(points),
            figures.calibration(points),
            figures.property_scatter(scatter, color or "round"),
        )

    app.callback(
        Output("rounds-message", "children"),
        Output("g-best", "figure"),
        Output("g-hits", "figure"),
        Output("g-error", "figure"),
        Output("g-calibration", "figure"),
        Output("g-scatter", "figure"),
        Input("r-campaign", "value"),
        Input("r-threshold", "value"),
        Input("r-color", "value"),
        Input("rounds-refresh", "n_intervals"),
    )(guarded(rounds, what="the rounds", store=store, outputs=6))

    def selected(selection: Any) -> Any:
        ids = tuple(str(p["customdata"]) for p in (selection or {}).get("points", []) if p.get("customdata"))
        if not ids:
            return []
        result = candidate_page(store(), CandidateQuery(ids=ids[:500], sort="id", page_size=500))
        return [
            {**{k: fmt(v) for k, v in r.items()}, "formula": f"[{r['formula']}](/candidate/{quote(r['id'])})"}
            for r in result.rows
        ]

    def selected_safe(selection: Any) -> Any:
        try:
            return selected(selection)
        except Exception:
            return []

    app.callback(Output("selected-table", "data"), Input("g-scatter", "selectedData"))(selected_safe)


def _models(app: dash.Dash, store: StoreAccess) -> None:
    """The models page: the registry and the parity plot of the selected model."""

    def models(_: Any) -> Any:
        rows = data.model_rows(store())
        if not rows:
            return (
                message("No model registered yet: the loop registers one per round, `battery-discovery train` too."),
                [],
                [],
            )
        keys = list(dict.fromkeys(k for r in rows for k in r if k != "path"))
        return html.Div(), [{"name": k, "id": k} for k in keys], rows

    def models_safe(pathname: Any) -> Any:
        out = guarded(models, what="the models", store=store, outputs=3)(pathname)
        if out[1] is no_update:
            return out[0], [], []
        return out

    app.callback(
        Output("models-message", "children"),
        Output("models-table", "columns"),
        Output("models-table", "data"),
        Input("url", "pathname"),
    )(models_safe)

    def parity(selected_rows: Any, rows: Any) -> Any:
        if not selected_rows or not rows:
            return html.P("Select a model.", className="help")
        row = rows[selected_rows[0]]
        if row["campaign"].startswith("models:"):
            plots = Path(row.get("path") or "") / "plots"
            images = sorted(plots.glob("*parity.png")) if plots.is_dir() else []
            if not images:
                return message(f"No parity plot saved for {row['id']} (looked in {plots}).")
            src = "data:image/png;base64," + base64.b64encode(images[0].read_bytes()).decode()
            return html.Div(
                [
                    html.H2(f"{row['id']}: test split", className="title is-5"),
                    html.Img(src=src, style={"maxWidth": "640px"}),
                ]
            )
        values = data.loop_model_parity(store(), row["id"])
        title = f"{row['id']}: its predictions for the next batch vs the oracle"
        return dcc.Graph(id="parity-graph", figure=figures.parity(values, title))

    app.callback(
        Output("model-parity", "children"), Input("models-table", "selected_rows"), State("models-table", "data")
    )(guarded(parity, what="the parity plot", store=store))
