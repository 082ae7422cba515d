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
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import dash
from dash import Input, Output, State, dash_table, dcc, html, no_update

from core.errors import StoreUnavailableError
from dashboard import data, figures
from dashboard.export import cif_zip, rows_csv, rows_json
from dashboard.viewer import crystal_toolkit_plugin, structure_component
from store import CandidateStore, open_store
from store.browse import (
    COLUMNS,
    NUMERIC_COLUMNS,
    SORTABLE,
    STATUSES,
    CandidateQuery,
    campaign_names,
    candidate_filter,
    candidate_page,
    count_candidates,
    distinct_generators,
    export_candidates,
)

log = logging.getLogger("battery_discovery.dashboard")
ASSETS = Path(__file__).resolve().parent / "assets"
PAGE_SIZE = 25
REFRESH_MS = 5000
COUNT_TTL_S = 10.0
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


def _guarded(render: Callable[..., Any], *, what: str, store: StoreAccess, outputs: int = 1) -> Callable[..., Any]:
    """Wrap a callback so that store errors and bugs become a message in the page (never a stack trace)."""

    def wrapper(*args: Any) -> Any:
        try:
            return render(*args)
        except StoreUnavailableError as exc:
            box = message(
                "The candidate store is not reachable.",
                "danger",
                f"{exc} — start it with `battery-discovery store start`, or point the dashboard at another with "
                f"--store-uri (now {store.uri!r}).",
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


def _fmt(value: Any, digits: int = 3) -> Any:
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
                        children=[html.Span(f"store: {uri} / {database}", className="navbar-item is-size-7")],
                    ),
                ],
            ),
        ],
    )


def _table(
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


def _candidate_columns() -> list[dict[str, Any]]:
    cols = []
    for c in TABLE_COLUMNS:
        spec: dict[str, Any] = {"name": c.label, "id": c.name}
        if c.name in ("formula",):
            spec["presentation"] = "markdown"
        elif c.numeric:
            spec["type"] = "numeric"
        cols.append(spec)
    return cols


def campaigns_page() -> html.Div:
    return html.Div(
        [
            html.H1("Campaigns", className="title is-4"),
            html.P("Every campaign in the store; refreshed every 5 s while a loop runs.", className="subtitle is-6"),
            dcc.Interval(id="campaigns-refresh", interval=REFRESH_MS),
            html.Div(id="campaigns-body"),
        ]
    )


def candidates_page(query: dict[str, list[str]]) -> html.Div:
    def first(key: str, default: str = "") -> str:
        return query.get(key, [default])[0]

    return html.Div(
        [
            html.H1("Candidates", className="title is-4"),
            html.Div(
                className="columns is-multiline",
                children=[
                    _field("Campaign", dcc.Dropdown(id="f-campaign", value=first("campaign") or None), 2),
                    _field(
                        "Where",
                        dcc.Input(
                            id="f-where",
                            value=first("where"),
                            debounce=True,
                            placeholder="pred_band_gap >= 3 and e_above_hull <= 0.05",
                            className="input is-small",
                        ),
                        4,
                        help="numeric columns compared with numbers, joined by 'and' (hover for the names)",
                        title=", ".join(NUMERIC_COLUMNS),
                    ),
                    _field(
                        "Elements (all of)",
                        dcc.Input(
                            id="f-elements",
                            value=first("elements"),
                            debounce=True,
                            placeholder="Fe,O",
                            className="input is-small",
                        ),
                        1,
                    ),
                    _field(
                        "Contains",
                        dcc.Dropdown(
                            id="f-alkali",
                            options=[{"label": v, "value": v} for v in ("Li", "Na", "Li or Na")],
                            value=first("alkali") or None,
                            placeholder="Li / Na",
                        ),
                        1,
                    ),
                    _field(
                        "Formula starts",
                        dcc.Input(
                            id="f-formula",
                            value=first("formula"),
                            debounce=True,
                            placeholder="LiFe",
                            className="input is-small",
                        ),
                        1,
                    ),
                    _field("Generator", dcc.Dropdown(id="f-generator", value=first("generator") or None), 1),
                    _field(
                        "Status",
                        dcc.Dropdown(
                            id="f-status",
                            options=[{"label": s, "value": s} for s in STATUSES],
                            value=first("status") or None,
                        ),
                        1,
                    ),
                    _field(
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
            ),
            html.Div(
                className="level",
                children=[
                    html.Div(html.Span(id="cand-count", className="is-size-6"), className="level-left"),
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
            _table(
                "cand-table",
                _candidate_columns(),
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


def _field(label: str, control: Any, width: int, help: str = "", title: str = "") -> html.Div:
    children = [html.Label(label, className="label is-small"), control]
    if help:
        children.append(html.P(help, className="help", title=title or None))
    return html.Div(children, className=f"column is-{width}", title=title or None)


def rounds_page(query: dict[str, list[str]]) -> html.Div:
    return html.Div(
        [
            html.H1("Rounds", className="title is-4"),
            html.Div(
                className="columns",
                children=[
                    _field("Campaign", dcc.Dropdown(id="r-campaign", value=query.get("campaign", [None])[0]), 3),
                    _field(
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
                    _field(
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
            _table("selected-table", _candidate_columns(), page_size=15),
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
            _table("models-table", [], row_selectable="single", selected_rows=[], page_size=20, sort_action="native"),
            html.Div(id="model-parity"),
        ]
    )


# candidate detail ------------------------------------------------------------------------------------------------
def _kv_table(rows: list[tuple[str, Any]]) -> html.Table:
    return html.Table(
        [html.Tr([html.Th(k), html.Td(str(v) if v is not None else "—")]) for k, v in rows],
        className="table is-narrow is-fullwidth is-size-7",
    )


def _lattice_rows(structure: Any) -> list[tuple[str, Any]]:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    lat = structure.lattice
    rows: list[tuple[str, Any]] = []
    try:
        sga = SpacegroupAnalyzer(structure, symprec=0.1)
        rows += [
            ("space group", f"{sga.get_space_group_symbol()} (No. {sga.get_space_group_number()})"),
            ("crystal system", sga.get_crystal_system()),
        ]
    except Exception as exc:  # symmetry finding can fail on odd cells
        rows.append(("space group", f"not determined ({type(exc).__name__})"))
    rows += [
        ("a, b, c (Å)", ", ".join(f"{x:.3f}" for x in lat.abc)),
        ("α, β, γ (°)", ", ".join(f"{x:.2f}" for x in lat.angles)),
        ("volume (Å³)", f"{lat.volume:.2f}"),
        ("density (g/cm³)", f"{structure.density:.3f}"),
        ("sites", len(structure)),
    ]
    return rows


def _values_rows(detail: data.CandidateDetail) -> list[dict[str, Any]]:
    """Predicted (latest and at acquisition) next to the oracle's, per property."""
    c = detail.candidate
    e = detail.evaluations[-1] if detail.evaluations else None
    entry = detail.batch_entry or {}
    props = (e.properties if e else {}) or {}
    oracle: dict[str, Any] = {
        "formation_energy_per_atom": e.formation_energy_per_atom if e else None,
        "e_above_hull": e.energy_above_hull if e else None,
        "band_gap": (props.get("band_gap") or {}).get("mean"),
        "log10_conductivity": (props.get("log10_conductivity") or {}).get("mean"),
    }
    units = {
        "formation_energy_per_atom": "eV/atom",
        "e_above_hull": "eV/atom",
        "band_gap": "eV",
        "log10_conductivity": "log10 S/cm",
    }
    rows = []
    for name, unit in units.items():
        pred = c.predictions.get(name) or {}
        at_acq = (entry.get("means") or {}).get(name)
        at_acq_std = (entry.get("stds") or {}).get(name)

        def pm(mean: Any, std: Any) -> str:
            if mean is None:
                return "—"
            return f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")

        rows.append(
            {
                "property": f"{name} ({unit})",
                "predicted (latest)": pm(pred.get("mean"), pred.get("std")),
                "predicted at acquisition": pm(at_acq, at_acq_std),
                "oracle / relaxed": "—" if oracle[name] is None else f"{oracle[name]:.3f}",
            }
        )
    return rows


def candidate_detail_page(detail: data.CandidateDetail | None, candidate_id: str) -> html.Div:
    if detail is None:
        return html.Div(
            [
                message(
                    f"No candidate with id {candidate_id!r} in this store.",
                    "warning",
                    "It may belong to another database, or the link is old. Search the candidates table instead.",
                ),
                dcc.Link("← all candidates", href="/candidates"),
            ]
        )
    from pymatgen.core import Structure

    c = detail.candidate
    e = detail.evaluations[-1] if detail.evaluations else None
    structure = Structure.from_dict(e.relaxed_structure if e and e.relaxed_structure else c.structure)
    prov = e.provenance if e else c.provenance
    run_link: Any = "—"
    if detail.round is not None and detail.round.flow_run_url:
        run_link = html.A(f"flow run of round {detail.round.round}", href=detail.round.flow_run_url, target="_blank")
    elif detail.round is not None and detail.round.flow_run_id:
        run_link = f"flow run {detail.round.flow_run_id}"
    provenance = [
        ("campaign", c.campaign),
        ("made in round", c.provenance.round),
        ("generator", f"{c.generator or c.source} {c.generator_version}".strip()),
        ("parents", ", ".join(c.parents) or c.parent or "—"),
        ("substitutions", ", ".join(f"{k}→{v}" for k, v in c.substitutions.items()) or "—"),
        ("condition", c.condition or "—"),
        ("generator parameters", json.dumps(c.parameters)[:300] if c.parameters else "—"),
        ("predicted by", c.predicted_by or "—"),
        ("evaluated in round", e.provenance.round if e else "—"),
        ("acquisition", json.dumps(prov.acquisition)[:400] if prov.acquisition else "—"),
        ("oracle", f"{prov.oracle} ({prov.oracle_version})" if prov.oracle else "—"),
        ("code version", prov.code_version),
        ("Prefect", run_link),
    ]
    oracle_rows: list[tuple[str, Any]] = []
    if e is not None:
        hull = e.hull or {}
        oracle_rows = [
            ("status", f"{e.status}{': ' + e.reason if e.reason else ''}"),
            ("energy (eV/atom)", _fmt(e.energy_per_atom, 4)),
            ("corrected energy (eV/atom)", f"{_fmt(e.corrected_energy_per_atom, 4)} ({e.correction_scheme})"),
            ("formation energy (eV/atom)", _fmt(e.formation_energy_per_atom, 4)),
            ("energy above hull (eV/atom)", _fmt(e.energy_above_hull, 4)),
            (
                "hull rests on",
                f"{hull.get('n_phases', '?')} reference phases {hull.get('sources', '')}"
                + (" — thin: too few to trust a negative value" if hull.get("thin") else ""),
            ),
            (
                "decomposes into",
                ", ".join(f"{k} ({v:.2f})" for k, v in sorted(e.decomposition.items(), key=lambda kv: -kv[1])) or "—",
            ),
            ("steps, max force", f"{e.n_steps}, {_fmt(e.max_force, 3)} eV/Å"),
            ("volume change", f"{e.volume_change:+.1%}" if e.volume_change is not None else "—"),
        ]
        if e.electrode:
            oracle_rows.append(
                (
                    "electrode",
                    ", ".join(
                        f"{k} {_fmt(e.electrode.get(k), 3)}"
                        for k in ("average_voltage", "capacity_mAh_g", "energy_density_Wh_kg")
                        if k in e.electrode
                    )
                    or e.electrode.get("status", ""),
                )
            )
        if e.window:
            oracle_rows.append(
                ("stability window (V)", f"{_fmt(e.window.get('low_V'))} – {_fmt(e.window.get('high_V'))}")
            )
    subtitle = f"{c.id} · {c.status} · campaign {c.campaign}"
    return html.Div(
        [
            dcc.Link("← all candidates", href=f"/candidates?campaign={quote(c.campaign)}"),
            html.H1(c.formula, className="title is-3", id="candidate-formula"),
            html.P(subtitle, className="subtitle is-6"),
            dcc.Store(id="candidate-id", data=c.id),
            html.Div(
                className="columns",
                children=[
                    html.Div(
                        [
                            html.H2(
                                "Structure (relaxed)" if e and e.relaxed_structure else "Structure (generated)",
                                className="title is-5",
                            ),
                            html.Iframe(
                                src=f"{VIEWER_PATH}?id={quote(c.id)}",
                                id="structure-viewer",
                                title=f"3D structure of {c.formula}",
                                style={"width": "100%", "height": "460px", "border": "0"},
                            ),
                        ],
                        className="column is-half",
                    ),
                    html.Div(
                        [
                            html.H2("Lattice and symmetry", className="title is-5"),
                            _kv_table(_lattice_rows(structure)),
                            html.H2("Predicted vs oracle", className="title is-5"),
                            _table(
                                "values-table",
                                [{"name": k, "id": k} for k in _values_rows(detail)[0]],
                                data=_values_rows(detail),
                            ),
                        ],
                        className="column is-half",
                    ),
                ],
            ),
            html.Div(
                className="columns",
                children=[
                    html.Div(
                        [
                            html.H2("Oracle", className="title is-5"),
                            _kv_table(oracle_rows) if oracle_rows else message("Not evaluated yet."),
                        ],
                        className="column is-half",
                    ),
                    html.Div(
                        dcc.Graph(
                            id="energy-curve",
                            figure=figures.energy_curve(e.energy_trajectory if e else [], e.fmax if e else None),
                        ),
                        className="column is-half",
                    ),
                ],
            ),
            html.Div(
                className="columns",
                children=[
                    html.Div(
                        [html.H2("Provenance", className="title is-5"), _kv_table(provenance)],
                        className="column is-half",
                    ),
                    html.Div(
                        [
                            html.H2(f"Phase diagram of {c.chemsys}", className="title is-5"),
                            dcc.Loading(html.Div(id="phase-diagram")),
                        ],
                        className="column is-half",
                    ),
                ],
            ),
        ]
    )


def phase_diagram_figure(detail: data.CandidateDetail) -> Any:
    """The reference phases of the candidate's chemical system with the candidate itself (2-4 elements)."""
    from pymatgen.analysis.phase_diagram import PDEntry, PDPlotter, PhaseDiagram
    from pymatgen.core import Composition

    from oracle.phases import default_phase_set

    elements = detail.candidate.elements
    if not 2 <= len(elements) <= 4:
        return message(f"A phase diagram is drawn for 2 to 4 elements; {detail.candidate.chemsys} has {len(elements)}.")
    phases = default_phase_set()
    entries = list(phases.entries(elements))
    e = detail.evaluations[-1] if detail.evaluations else None
    note = "reference phases of the MP-20 / MPTS-52 files and MP elemental references"
    if e is not None and e.corrected_energy_per_atom is not None and e.relaxed_structure:
        n = sum(Composition(detail.candidate.formula).values())
        comp = Composition(detail.candidate.formula)
        entries.append(PDEntry(comp, e.corrected_energy_per_atom * n, name=f"{detail.candidate.formula} (this)"))
        note += "; this candidate at its corrected CHGNet energy"
    diagram = PhaseDiagram(entries)
    fig = PDPlotter(diagram, backend="plotly", show_unstable=0.2).get_plot()
    fig.update_layout(height=420, margin={"t": 30, "b": 10})
    return html.Div([dcc.Graph(figure=fig, id="phase-diagram-graph"), html.P(note, className="help")])


# the structure viewer ----------------------------------------------------------------------------------------------
VIEWER_PATH = "/viewer/"
VIEWER_ONLY_SCRIPTS = {"dash_mp_components"}


def viewer_app(server: Any, store: StoreAccess) -> dash.Dash:
    """crystal-toolkit's 3D viewer of one candidate (``/viewer/?id=<candidate id>``): its relaxed structure when
    evaluated, else the generated one."""
    viewer = structure_component("structure")
    layout = html.Div([dcc.Location(id="viewer-url"), html.Div(id="viewer-message"), viewer.layout()])
    app = dash.Dash(
        "dashboard.viewer",
        server=server,
        url_base_pathname=VIEWER_PATH,
        title="structure",
        assets_folder=str(ASSETS),
        serve_locally=True,
        update_title=None,
        plugins=[crystal_toolkit_plugin(layout)],
    )

    def structure_data(search: str | None) -> Any:
        from pymatgen.core import Structure

        cid = parse_qs((search or "").lstrip("?")).get("id", [""])[0]
        detail = data.candidate_detail(store(), cid) if cid else None
        if detail is None:
            return message(f"No candidate with id {cid!r}.", "warning"), no_update
        e = detail.evaluations[-1] if detail.evaluations else None
        structure = Structure.from_dict(
            e.relaxed_structure if e and e.relaxed_structure else detail.candidate.structure
        )
        return html.Div(), structure

    app.callback(Output("viewer-message", "children"), Output(viewer.id(), "data"), Input("viewer-url", "search"))(
        _guarded(structure_data, what="the structure", store=store, outputs=2)
    )
    return app


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

    # routing
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
        _guarded(route, what="this page", store=store)
    )

    # campaigns
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
        return _table("campaigns-table", columns, data=records)

    app.callback(Output("campaigns-body", "children"), Input("campaigns-refresh", "n_intervals"))(
        _guarded(campaigns, what="the campaigns", store=store)
    )

    # candidates: options, page, count, export
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

    filter_inputs = [
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

    def page(*args: Any) -> Any:
        *filters, page_current, sort_by = args
        query = make_query(*filters, page=page_current, sort_by=sort_by)
        result = candidate_page(store(), query)
        rows = [
            {
                **{k: _fmt(v) for k, v in r.items()},
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
        out = _guarded(page, what="the candidates", store=store, outputs=3)(*args)
        if isinstance(out[0], html.Div):  # an error message: empty the table, show the message
            return [], 1, out[0]
        return out

    app.callback(
        Output("cand-table", "data"),
        Output("cand-table", "page_count"),
        Output("cand-message", "children"),
        *filter_inputs,
        Input("cand-table", "page_current"),
        Input("cand-table", "sort_by"),
    )(page_safe)

    counts: dict[str, tuple[float, int]] = {}  # filter -> (time, count): paging does not count again

    def count(_rows: Any, *args: Any) -> Any:
        """Runs after the rows arrived (a count of 100,000 rows takes the embedded store most of a second, and it
        answers one query at a time), at most once per filter every COUNT_TTL_S seconds."""
        *filters, sort_by = args
        query = make_query(*filters, sort_by=sort_by)
        try:
            key = json.dumps(candidate_filter(query), sort_keys=True, default=str)
            hit = counts.get(key)
            if hit is None or time.monotonic() - hit[0] > COUNT_TTL_S:
                hit = counts[key] = (time.monotonic(), count_candidates(store(), query))
                if len(counts) > 256:
                    counts.pop(next(iter(counts)))
        except Exception:
            return ""
        return f"{hit[1]:,} candidates match"

    app.callback(
        Output("cand-count", "children"),
        Input("cand-table", "data"),
        *[State(i.component_id, i.component_property) for i in filter_inputs],
        State("cand-table", "sort_by"),
    )(count)

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
        *[State(i.component_id, i.component_property) for i in filter_inputs],
        State("cand-table", "sort_by"),
        prevent_initial_call=True,
    )(export)

    # candidate detail: phase diagram (slow the first time: the reference phases are read once)
    def phase_diagram(cid: str | None) -> Any:
        detail = data.candidate_detail(store(), cid) if cid else None
        if detail is None:
            return no_update
        return phase_diagram_figure(detail)

    app.callback(Output("phase-diagram", "children"), Input("candidate-id", "data"))(
        _guarded(phase_diagram, what="the phase diagram", store=store)
    )

    # rounds
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
    )(_guarded(rounds, what="the rounds", store=store, outputs=6))

    def selected(selection: Any) -> Any:
        ids = tuple(str(p["customdata"]) for p in (selection or {}).get("points", []) if p.get("customdata"))
        if not ids:
            return []
        result = candidate_page(store(), CandidateQuery(ids=ids[:500], sort="id", page_size=500))
        return [
            {**{k: _fmt(v) for k, v in r.items()}, "formula": f"[{r['formula']}](/candidate/{quote(r['id'])})"}
            for r in result.rows
        ]

    def selected_safe(selection: Any) -> Any:
        try:
            return selected(selection)
        except Exception:
            return []

    app.callback(Output("selected-table", "data"), Input("g-scatter", "selectedData"))(selected_safe)

    # models
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
        out = _guarded(models, what="the models", store=store, outputs=3)(pathname)
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
    )(_guarded(parity, what="the parity plot", store=store))
    return app
