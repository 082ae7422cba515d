"""Console tables shared by the commands: the "best so far" rows of a campaign and query results."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from loop.labelers.relax import hull_phases_label, known_as_label, novelty_scope


def _num(value: Any, spec: str = ".3f") -> str:
    return "" if not isinstance(value, int | float) or isinstance(value, bool) else format(value, spec)


def _pm(mean: Any, std: Any) -> str:
    return "" if _num(mean) == "" else f"{mean:.2f} ± {std:.2f}" if _num(std) else f"{mean:.2f}"


def best_table(best: list[dict[str, Any]], title: str) -> Table:
    """The labeler's best rows: formula, id, formation energy and signed energy above hull (eV/atom) with the
    hull's phase count, then every property as mean ± std (band gap eV, log10 conductivity log10 S/cm, ...).

    Rows that say whether they are known (the relax labeler's) are ranked apart: the novel ones first ('novel 1',
    'novel 2', ...), then, after a rule, the known materials (reference phases, seeds: 'known 1', ...) with what
    they match."""
    props = sorted({k[: -len("_mean")] for b in best for k in b if k.endswith("_mean")})
    apart = any("novelty" in b for b in best)
    table = Table(title=title)
    if apart:
        novel = [b for b in best if b.get("novelty") != "known"]
        known = [b for b in best if b.get("novelty") == "known"]
        best = novel + known
        table.caption = (
            f"{len(novel)} most stable novel candidates, then {len(known)} most stable known materials "
            "(matching a reference phase or a seed), each ranked apart"
        ) + (f"; {novelty_scope(novel)}" if novelty_scope(novel) else "")
    head = ("rank", "formula", "id", "known as") if apart else ("formula", "id")
    for col in (*head, "E_f eV/atom", "E_hull eV/atom (phases: sources)", *props):
        table.add_column(col)
    ranks = {"novel": 0, "known": 0}
    for i, b in enumerate(best):
        hull = _num(b.get("e_above_hull"), "+.3f")
        if hull and b.get("hull_phases") is not None:
            hull += f" ({hull_phases_label(b)})"
        cells = [str(b.get("formula", "")), str(b.get("candidate_id", ""))]
        last_novel = False
        if apart:
            group = "known" if b.get("novelty") == "known" else "novel"
            ranks[group] += 1
            cells = [f"{group} {ranks[group]}", *cells, known_as_label(b) or "unchecked"]
            following = best[i + 1] if i + 1 < len(best) else None
            last_novel = group == "novel" and following is not None and following.get("novelty") == "known"
        table.add_row(
            *cells,
            _num(b.get("formation_energy_per_atom")),
            hull,
            *(_pm(b.get(f"{p}_mean"), b.get(f"{p}_std")) for p in props),
            end_section=last_novel,
        )
    return table


def query_table(rows: list[dict[str, Any]]) -> Table:
    """Query rows (see :data:`store.queries.COLUMNS`)."""
    evaluated = sum(r.get("values_from") == "oracle" for r in rows)
    table = Table(title=f"{evaluated} evaluated candidates, {len(rows) - evaluated} predicted")
    columns = (
        "formula",
        "id",
        "from",
        "known as",
        "E_f eV/atom",
        "E_hull eV/atom (phases: sources)",
        "gap eV",
        "log10 σ S/cm",
        "V vs metal",
        "mAh/g",
        "window V",
        "status",
        "round",
        "campaign",
        "reason",
    )
    for col in columns:
        table.add_column(col, no_wrap=col != "reason", overflow="ellipsis", max_width=50 if col == "reason" else None)
    for r in rows:
        low, high = r.get("stability_window_low_V"), r.get("stability_window_high_V")
        table.add_row(
            r["formula"],
            r["id"],
            r["values_from"],
            _known_as(r),
            _num(r.get("formation_energy_per_atom")),
            _num(r.get("e_above_hull"), "+.3f") + _hull_note(r),
            _pm(r.get("band_gap_mean"), r.get("band_gap_std")),
            _pm(r.get("log10_conductivity_mean"), r.get("log10_conductivity_std")),
            _num(r.get("average_voltage"), ".2f"),
            _num(r.get("capacity_mAh_g"), ".0f"),
            f"{low:.2f}-{high:.2f}" if _num(low) and _num(high) else "",
            str(r.get("status", "")),
            str(r.get("round", "")),
            str(r.get("campaign", "")),
            str(r.get("reason", "")),
        )
    return table


def _known_as(row: dict[str, Any]) -> str:
    """A query row's ``novel``, ``known: <id>`` or ``unchecked``."""
    if row.get("novelty") == "known":
        return f"known: {row.get('known_as') or '?'}"
    return str(row.get("novelty") or "unchecked")


def _hull_note(row: dict[str, Any]) -> str:
    """`` (14: mp_20:8;computed:6, thin)``: the phases the hull held, where from, and whether it is thin."""
    if row.get("hull_phases") is None:
        return " thin" if row.get("hull_thin") else ""
    sources = f": {row['hull_sources']}" if row.get("hull_sources") else ""
    return f" ({row['hull_phases']}{sources}{', thin' if row.get('hull_thin') else ''})"
