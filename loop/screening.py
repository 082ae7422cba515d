"""Screening: the campaign's labelers on structures a user brings, without a campaign.

:func:`read_inputs` reads a structure file, a folder of them or a CSV with a ``cif`` column (and ``id`` or
``material_id``); :func:`screen` relaxes them with the oracle (formation energy, signed energy above the hull of
the MP reference phases, decomposition), completing that hull first where the reference files lack competitors
(:mod:`oracle.completion`: analogues of known phases relaxed by the same oracle, cached per oracle), predicts
band gap and ionic conductivity with the registered property
models, computes the electrochemical window and, for Li/Na compounds with redox-active cations, the average
voltage, capacity and energy density against the relaxed de-intercalated counterpart. Only what is asked for is
computed: model properties alone relax nothing. One row per input, in input order; a bad structure gets its row
with ``status=failed`` and the reason, the others go on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from oracle.config import OracleConfig
from structures.sanity import structure_problem

__all__ = ["COLUMNS", "PROPERTY_GROUPS", "ScreenInput", "read_inputs", "resolve_properties", "screen"]

#: Output columns (units: eV/atom, eV, log10 S/cm, V vs the metal, mAh/g, Wh/kg). ``hull_phases``: compounds in the
#: hull of the row's chemical system; ``hull_sources``: where they came from (``mp_20:12;computed:3``); ``thin``:
#: the hull may still miss phases that matter (see ``oracle.phases.Stability.thin``).
COLUMNS: tuple[str, ...] = (
    "id",
    "formula",
    "status",
    "reason",
    "energy_per_atom",
    "formation_energy_per_atom",
    "e_above_hull",
    "decomposition",
    "hull_phases",
    "hull_sources",
    "thin",
    "band_gap_mean",
    "band_gap_std",
    "log10_conductivity_mean",
    "log10_conductivity_std",
    "average_voltage",
    "capacity_mAh_g",
    "energy_density_Wh_kg",
    "stability_window_low_V",
    "stability_window_high_V",
)

#: What ``--properties`` accepts -> the computation it needs.
PROPERTY_GROUPS: dict[str, str] = {
    "energy_per_atom": "relax",
    "formation_energy_per_atom": "relax",
    "e_above_hull": "relax",
    "decomposition": "relax",
    "hull_phases": "relax",
    "hull_sources": "relax",
    "thin": "relax",
    "band_gap": "band_gap",
    "log10_conductivity": "log10_conductivity",
    "average_voltage": "voltage",
    "capacity_mAh_g": "voltage",
    "energy_density_Wh_kg": "voltage",
    "voltage": "voltage",
    "stability_window": "window",
    "stability_window_low_V": "window",
    "stability_window_high_V": "window",
}
ALL_GROUPS = ("relax", "band_gap", "log10_conductivity", "window", "voltage")
STRUCTURE_SUFFIXES = (".cif", ".json", ".vasp", ".poscar")


@dataclass(frozen=True, kw_only=True)
class ScreenInput:
    """One input: its id, the parsed structure (None when it failed) and why it failed."""

    id: str
    structure: Structure | None
    reason: str = ""


def resolve_properties(names: Sequence[str], *, voltage: bool = False) -> set[str]:
    """The computations for ``--properties`` (empty: all of them); ``voltage`` adds the electrode.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    groups = set(ALL_GROUPS) if not names else set()
    for name in names:
        if name not in PROPERTY_GROUPS:
            raise ValueError(f"unknown property {name!r}; choose from {', '.join(PROPERTY_GROUPS)}")
        groups.add(PROPERTY_GROUPS[name])
    if voltage:
        groups.add("voltage")
    if "voltage" in groups:
        groups.add("relax")  # the voltage pairs two relaxed energies
    return groups


def _parse_file(path: Path) -> ScreenInput:
    from ingest.sources.base import parse_structure_file

    structure, problem = parse_structure_file(path)
    return ScreenInput(id=path.stem, structure=structure, reason=problem[1] if problem else "")


def read_inputs(path: Path | str) -> list[ScreenInput]:
    """The structures of a file, a folder (its structure files, sorted) or a CSV (``cif`` column; ``id`` or
    ``material_id`` names the rows, else their position); unparsable entries keep their place with a reason."""
    from ingest.sources.base import parse_structure_text

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in STRUCTURE_SUFFIXES or p.name == "POSCAR")
        return [_parse_file(p) for p in files]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if not path.name.lower().endswith((".csv", ".csv.gz")):
        return [_parse_file(path)]
    import pandas as pd

    df = pd.read_csv(path)
    lower = {str(c).lower(): c for c in df.columns}
    cif = next((lower[c] for c in ("cif", "structure", "cif_string") if c in lower), None)
    if cif is None:
        raise ValueError(f"{path}: no 'cif' column (columns: {', '.join(map(str, df.columns))})")
    ident = next((lower[c] for c in ("id", "material_id", "name") if c in lower), None)
    out = []
    for k, text in enumerate(df[cif]):
        rid = str(df[ident].iloc[k]) if ident is not None else str(k)
        if not isinstance(text, str) or not text.strip():
            out.append(ScreenInput(id=rid, structure=None, reason="empty cif"))
            continue
        structure, problem = parse_structure_text(text, "cif")
        out.append(ScreenInput(id=rid, structure=structure, reason=problem[1] if problem else ""))
    return out


def _fmt_decomposition(decomposition: dict[str, float]) -> str:
    return "; ".join(f"{formula}:{fraction:.3f}" for formula, fraction in sorted(decomposition.items()))


def screen(
    inputs: Sequence[ScreenInput],
    *,
    groups: set[str],
    oracle: OracleConfig | None = None,
    predictors: dict[str, Any] | None = None,
    num_threads: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Rows of :data:`COLUMNS` for ``inputs`` (see the module docstring).

    Args:
        groups: computations from :func:`resolve_properties`.
        predictors: property name -> loaded predictor (``surrogates.predictors``) for ``band_gap`` and
            ``log10_conductivity`` when those groups are asked for.
        progress: called with a short message as each step starts.
    """
    oracle = oracle or OracleConfig()
    say = progress or (lambda msg: None)
    rows: list[dict[str, Any]] = []
    valid: list[int] = []
    for item in inputs:
        row: dict[str, Any] = dict.fromkeys(COLUMNS, None)
        row.update(id=item.id, status="ok", reason="")
        problem = item.reason or ("" if item.structure is None else structure_problem(item.structure))
        if item.structure is None or problem:
            row.update(status="failed", reason=problem or "no structure")
        else:
            row["formula"] = item.structure.composition.reduced_formula
            valid.append(len(rows))
        rows.append(row)
    structures: dict[int, Structure] = {i: inputs[i].structure for i in valid}  # type: ignore[misc]
    energies: dict[int, float] = {}
    if "relax" in groups and valid:
        say(f"relaxing {len(valid)} structures with {oracle.name}")
        energies = _relax(oracle, rows, structures, valid, num_threads)
    phases = _phase_set(oracle) if valid and ({"relax", "window"} & groups) else None  # none when all are refused
    if phases is not None:
        _complete(phases, oracle, rows, structures, valid, energies, groups, num_threads, say)
    for i in valid:
        if rows[i]["status"] != "ok":
            continue
        if i in energies and phases is not None:
            st = phases.stability(structures[i].composition, energies[i])
            rows[i]["e_above_hull"] = st.e_above_hull
            rows[i]["decomposition"] = _fmt_decomposition(st.decomposition)
            rows[i]["hull_phases"] = st.n_phases
            rows[i]["hull_sources"] = ";".join(f"{k}:{v}" for k, v in sorted(st.sources.items()))
            rows[i]["thin"] = st.thin
            if st.thin:
                gaps = f": no {', '.join(st.gaps)} compound" if st.gaps else ""
                rows[i]["reason"] = f"thin hull ({st.n_phases} reference phases{gaps})"
        if "window" in groups and phases is not None:
            _window(rows[i], structures[i], energies.get(i), phases)
    for name in ("band_gap", "log10_conductivity"):
        ok = [i for i in valid if rows[i]["status"] == "ok"]
        if name in groups and ok and predictors and name in predictors:
            say(f"predicting {name} for {len(ok)} structures")
            mean, std = predictors[name].predict([structures[i] for i in ok])
            for k, i in enumerate(ok):
                rows[i][f"{name}_mean"], rows[i][f"{name}_std"] = float(mean[k]), float(std[k])
    if "voltage" in groups:
        _voltages(oracle, rows, structures, energies, num_threads, say)
    return rows


def _phase_set(oracle: OracleConfig) -> Any:
    from oracle.completion import reference_phase_set

    return reference_phase_set(oracle)


def _complete(
    phases: Any,
    oracle: OracleConfig,
    rows: list[dict[str, Any]],
    structures: dict[int, Structure],
    valid: list[int],
    energies: dict[int, float],
    groups: set[str],
    threads: int,
    say: Callable[[str], None],
) -> None:
    """Complete the hull of every chemical system scored (energy above hull or window); a failure is reported and
    the hulls stay as they are (their ``thin`` flags say so)."""
    from oracle.completion import complete

    systems = []
    for i in valid:
        if rows[i]["status"] != "ok":
            continue
        elements = {el.symbol for el in structures[i].composition.elements}
        if i in energies or ("window" in groups and {"Li", "Na"} & elements):
            systems.append(elements)
    if not systems:
        return
    say(f"completing the hulls of {len({frozenset(s) for s in systems})} chemical systems")
    try:
        report = complete(phases, systems, oracle, num_threads=threads, progress=say, **oracle.completion.kwargs())
    except Exception as exc:  # e.g. a missing elemental reference: the hulls stay as the files make them
        say(f"hull completion failed: {type(exc).__name__}: {exc}")
        return
    if report.missing:
        say(
            f"hull completion: {len(report.missing)} sub-systems completed ({len(report.from_cache)} from the cache), "
            f"{report.n_added} computed phases added, {report.n_failed} relaxations failed, {report.seconds:.0f} s"
        )


def _relax(
    oracle: OracleConfig, rows: list[dict[str, Any]], structures: dict[int, Structure], valid: list[int], threads: int
) -> dict[int, float]:
    """Label with the oracle (relax, refine, correct onto the MP scale, formation energy); returns index -> corrected
    energy (eV/atom)."""
    from oracle.labelling import elemental_energies, label_structures

    elements = {el.symbol for i in valid for el in structures[i].composition.elements}
    try:
        references, _ = elemental_energies(oracle, elements, num_threads=threads)
    except Exception as exc:  # a missing elemental reference fails the rows that need it, not the run
        for i in valid:
            rows[i].update(status="failed", reason=f"no elemental references: {exc}")
        return {}
    energies: dict[int, float] = {}

    def on_result(k: int, fields: dict[str, Any]) -> None:
        i = valid[k]
        if fields.get("status") == "failed" or fields.get("formation_energy_per_atom") is None:
            rows[i].update(status="failed", reason=fields.get("reason") or "relaxation failed")
            return
        if fields.get("relaxed_structure"):
            structures[i] = Structure.from_dict(fields["relaxed_structure"])
        energies[i] = float(fields["corrected_energy_per_atom"])
        rows[i]["energy_per_atom"] = energies[i]
        rows[i]["formation_energy_per_atom"] = float(fields["formation_energy_per_atom"])
        if fields.get("status") == "unconverged":
            rows[i]["reason"] = fields.get("reason") or "unconverged"

    label_structures(
        oracle,
        [structures[i] for i in valid],
        num_threads=threads,
        references=references,
        formulas=[rows[i]["formula"] for i in valid],
        on_result=on_result,
    )
    return energies


def _window(row: dict[str, Any], structure: Structure, energy: float | None, phases: Any) -> None:
    from oracle.window import stability_window

    elements = {el.symbol for el in structure.composition.elements}
    ion = "Li" if "Li" in elements else "Na" if "Na" in elements else None
    if ion is None:
        return  # no working ion: the window does not apply
    try:
        window = stability_window(structure.composition, energy, phases.entries(elements | {ion}), ion=ion)
    except (ValueError, KeyError) as exc:
        row["reason"] = "; ".join(r for r in (row["reason"], f"no window: {exc}") if r)
        return
    row["stability_window_low_V"] = window.low_V
    row["stability_window_high_V"] = window.high_V


def _voltages(
    oracle: OracleConfig,
    rows: list[dict[str, Any]],
    structures: dict[int, Structure],
    energies: dict[int, float],
    threads: int,
    say: Callable[[str], None],
) -> None:
    """Average voltage, capacity and energy density of the relaxed Li/Na compounds with removable ions."""
    from loop.stages.electrode import electrode_from_labels
    from oracle.electrode import deintercalate, removable_ions
    from oracle.labelling import elemental_energies, label_structures

    jobs: list[tuple[int, str, Structure]] = []
    for i, energy in energies.items():
        elements = {el.symbol for el in structures[i].composition.elements}
        ion = "Li" if "Li" in elements else "Na" if "Na" in elements else None
        if ion is None or not math.isfinite(energy):
            continue
        removal = removable_ions(structures[i].composition, ion)
        if removal.n_removable < 1 - 1e-6:
            continue  # no intercalation: the columns stay empty
        jobs.append((i, ion, deintercalate(structures[i], ion)))
    if not jobs:
        return
    say(f"relaxing {len(jobs)} de-intercalated counterparts")
    references, _ = elemental_energies(oracle, {ion for _, ion, _ in jobs}, num_threads=threads)

    def on_result(k: int, fields: dict[str, Any]) -> None:
        i, ion, _ = jobs[k]
        if fields.get("status") == "failed" or fields.get("corrected_energy_per_atom") is None:
            reason = f"charged state: {fields.get('reason') or 'failed'}"
            rows[i]["reason"] = "; ".join(r for r in (rows[i]["reason"], reason) if r)
            return
        try:
            electrode = electrode_from_labels(structures[i], energies[i], fields, references.energy_per_atom(ion), ion)
        except (ValueError, KeyError) as exc:
            rows[i]["reason"] = "; ".join(r for r in (rows[i]["reason"], f"no voltage: {exc}") if r)
            return
        rows[i].update(
            average_voltage=electrode.average_voltage,
            capacity_mAh_g=electrode.capacity_mAh_g,
            energy_density_Wh_kg=electrode.energy_density_Wh_kg,
        )

    label_structures(oracle, [c for _, _, c in jobs], num_threads=threads, on_result=on_result)
