"""The candidate page (structure, symmetry, values, relaxation, provenance, hull, phase diagram) and the framed
crystal-toolkit structure viewer app."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs, quote

import dash
from dash import Input, Output, dcc, html, no_update

from dashboard import data, figures
from dashboard.viewer import crystal_toolkit_plugin, structure_component
from dashboard.widgets import ASSETS, StoreAccess, fmt, guarded, message, table

log = logging.getLogger("battery_discovery.dashboard")


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
        "formation_energy_per_atom": "E_form (eV/atom)",
        "e_above_hull": "E_hull (eV/atom)",
        "band_gap": "band gap (eV)",
        "log10_conductivity": "log10 σ (S/cm)",
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
                "property": unit,
                "predicted": pm(pred.get("mean"), pred.get("std")),
                "at acquisition": pm(at_acq, at_acq_std),
                "oracle": "—" if oracle[name] is None else f"{oracle[name]:.3f}",
            }
        )
    return rows


def _provenance_rows(detail: data.CandidateDetail, e: Any) -> list[tuple[str, Any]]:
    """Where the candidate came from and how it was evaluated (``e``: its latest evaluation or None)."""
    c = detail.candidate
    prov = e.provenance if e else c.provenance
    run_link: Any = "—"
    if detail.round is not None and detail.round.flow_run_url:
        run_link = html.A(f"flow run of round {detail.round.round}", href=detail.round.flow_run_url, target="_blank")
    elif detail.round is not None and detail.round.flow_run_id:
        run_link = f"flow run {detail.round.flow_run_id}"
    return [
        ("campaign", c.campaign),
        ("made in round", c.provenance.round),
        ("generator", f"{c.generator or c.source} {c.generator_version}".strip()),
        ("known or novel", data.novelty_text(c.novelty)),
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


def _oracle_rows(e: Any) -> list[tuple[str, Any]]:
    """The oracle's verdict on the latest evaluation ``e`` (none when not evaluated)."""
    oracle_rows: list[tuple[str, Any]] = []
    if e is not None:
        hull = e.hull or {}
        oracle_rows = [
            ("status", f"{e.status}{': ' + e.reason if e.reason else ''}"),
            ("energy (eV/atom)", fmt(e.energy_per_atom, 4)),
            ("corrected energy (eV/atom)", f"{fmt(e.corrected_energy_per_atom, 4)} ({e.correction_scheme})"),
            ("formation energy (eV/atom)", fmt(e.formation_energy_per_atom, 4)),
            ("energy above hull (eV/atom)", fmt(e.energy_above_hull, 4)),
            (
                "hull rests on",
                f"{hull.get('n_phases', '?')} reference phases {hull.get('sources', '')}"
                + (" — thin: too few to trust a negative value" if hull.get("thin") else ""),
            ),
            (
                "decomposes into",
                ", ".join(f"{k} ({v:.2f})" for k, v in sorted(e.decomposition.items(), key=lambda kv: -kv[1])) or "—",
            ),
            ("steps, max force", f"{e.n_steps}, {fmt(e.max_force, 3)} eV/Å"),
            ("volume change", f"{e.volume_change:+.1%}" if e.volume_change is not None else "—"),
        ]
        if e.electrode:
            oracle_rows.append(
                (
                    "electrode",
                    ", ".join(
                        f"{k} {fmt(e.electrode.get(k), 3)}"
                        for k in ("average_voltage", "capacity_mAh_g", "energy_density_Wh_kg")
                        if k in e.electrode
                    )
                    or e.electrode.get("status", ""),
                )
            )
        if e.window:
            oracle_rows.append(
                ("stability window (V)", f"{fmt(e.window.get('low_V'))} – {fmt(e.window.get('high_V'))}")
            )
    return oracle_rows


def _not_found(candidate_id: str) -> html.Div:
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


def candidate_detail_page(detail: data.CandidateDetail | None, candidate_id: str) -> html.Div:
    if detail is None:
        return _not_found(candidate_id)
    from pymatgen.core import Structure

    c = detail.candidate
    e = detail.evaluations[-1] if detail.evaluations else None
    structure = Structure.from_dict(e.relaxed_structure if e and e.relaxed_structure else c.structure)
    provenance = _provenance_rows(detail, e)
    oracle_rows = _oracle_rows(e)
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
                            table(
                                "values-table",
                                [{"name": k, "id": k} for k in _values_rows(detail)[0]],
                                data=_values_rows(detail),
                            ),
                            html.P(
                                "predicted: the latest model predictions (mean ± std); at acquisition: when its batch "
                                "was chosen; oracle: the CHGNet relaxation (energies, hull) and the property models "
                                "on the relaxed structure.",
                                className="help",
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
    """The reference phases of the candidate's chemical system with the candidate itself (2-4 elements); phases
    computed by hull completion are marked (hover text and the note below)."""
    from pymatgen.analysis.phase_diagram import PDEntry, PDPlotter, PhaseDiagram
    from pymatgen.core import Composition

    elements = detail.candidate.elements
    if not 2 <= len(elements) <= 4:
        return message(f"A phase diagram is drawn for 2 to 4 elements; {detail.candidate.chemsys} has {len(elements)}.")
    e = detail.evaluations[-1] if detail.evaluations else None
    phases = hull_phase_set(e.oracle_key if e is not None else None, elements)
    entries = []
    for p in phases.phases(elements):
        comp = Composition(p.formula)
        entry = PDEntry(comp, p.energy_per_atom * comp.num_atoms, name=p.formula)
        entry.entry_id = f"computed from {p.parent}" if p.source == "computed" else p.entry_id  # type: ignore[attr-defined]
        entries.append(entry)
    entries += [PDEntry(Composition(el), phases.mu[el], name=el) for el in sorted(elements)]
    computed = sorted({p.formula for p in phases.phases(elements) if p.source == "computed"})
    note = "reference phases of the MP-20 / MPTS-52 files and MP elemental references"
    if computed:
        note += f"; computed by hull completion (this oracle, from analogous known phases): {', '.join(computed)}"
    if e is not None and e.corrected_energy_per_atom is not None and e.relaxed_structure:
        comp = Composition(detail.candidate.formula)
        this = PDEntry(comp, e.corrected_energy_per_atom * comp.num_atoms, name=f"{detail.candidate.formula} (this)")
        this.entry_id = "this candidate"  # type: ignore[attr-defined]
        entries.append(this)
        note += f"; this candidate at its oracle energy ({e.oracle_key.split('|')[0]})"
    diagram = PhaseDiagram(entries)
    fig = PDPlotter(diagram, backend="plotly", show_unstable=0.2).get_plot()
    fig.update_layout(height=420, margin={"t": 30, "b": 10})
    return html.Div([dcc.Graph(figure=fig, id="phase-diagram-graph"), html.P(note, className="help")])


_HULL_SETS: dict[str, Any] = {}


def hull_phase_set(oracle_key: str | None, elements: list[str]) -> Any:
    """The default reference phases plus what hull completion computed for ``oracle_key`` in ``elements``'
    sub-systems (read from its cache, nothing relaxed; one set per oracle key, topped up per call)."""
    from oracle.completion import load_cached
    from oracle.phases import PhaseSet, default_phase_set

    base = default_phase_set()
    if not oracle_key:
        return base
    phases = _HULL_SETS.get(oracle_key)
    if phases is None:
        phases = _HULL_SETS[oracle_key] = PhaseSet(compounds=base.compounds, mu=base.mu, competing=base.competing)
    load_cached(phases, oracle_key, systems=[elements])
    return phases


# the structure viewer ----------------------------------------------------------------------------------------------
VIEWER_PATH = "/viewer/"
VIEWER_ONLY_SCRIPTS = {"dash_mp_components"}


def viewer_app(server: Any, store: StoreAccess) -> dash.Dash:
    """crystal-toolkit's 3D viewer of one candidate (``/viewer/?id=<candidate id>``): its relaxed structure when
    evaluated, else the generated one."""
    viewer = structure_component("structure")
    layout = html.Div(
        [dcc.Location(id="viewer-url"), html.Div(id="viewer-message"), viewer.layout()], className="viewer-root"
    )
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
        guarded(structure_data, what="the structure", store=store, outputs=2)
    )
    return app
