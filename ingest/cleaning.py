"""Cleaning: turn a source's raw rows into records, listing every change and every dropped row with a reason."""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from pymatgen.core import Composition, DummySpecies, Structure

from ingest.records import Dataset, RawDataset, RawRecord, Record, content_hash
from ingest.report import Action, CleaningConfig, CleaningReport, Issue, IssueKind
from ingest.sources.base import progress_iter


def unknown_elements(comp: Composition) -> list[str]:
    """Symbols pymatgen could not recognise (they parse as dummy species)."""
    return sorted({str(el) for el in comp.elements if isinstance(el, DummySpecies)})


# --------------------------------------------------------------------------------------- ordering
def order_deterministic(structure: Structure) -> Structure:
    """Order a partially occupied structure without energies, reproducibly.

    Sites are grouped by their species-and-occupancy dict; within a group of ``n`` sites, each species gets
    ``round(n * occupancy)`` sites (largest remainder, total capped at ``n``), spread evenly over the group in
    site order; the remaining sites are vacancies and removed. The cell is not enlarged, so a composition that
    the cell cannot hold exactly is rounded.
    """
    groups: dict[tuple[tuple[str, float], ...], list[int]] = defaultdict(list)
    for i, site in enumerate(structure):
        if not site.is_ordered:
            groups[tuple(sorted((str(sp), round(float(x), 3)) for sp, x in site.species.items()))].append(i)
    assigned: dict[int, object | None] = {}
    for indices in groups.values():
        occ = structure[indices[0]].species
        n = len(indices)
        want = {sp: n * float(x) for sp, x in occ.items()}
        total = min(n, round(sum(want.values())))
        counts = {sp: math.floor(v) for sp, v in want.items()}
        for sp in sorted(want, key=lambda s: (counts[s] - want[s], str(s))):
            if sum(counts.values()) >= total:
                break
            counts[sp] += 1
        while sum(counts.values()) > total:  # floor overshoot is impossible; kept for safety
            sp = max(counts, key=lambda s: (counts[s] - want[s], str(s)))
            counts[sp] -= 1
        slots: list[tuple[float, str, object | None]] = []
        for sp, c in counts.items():
            slots += [((k + 0.5) / c, str(sp), sp) for k in range(c)]
        vac = n - sum(counts.values())
        slots += [((k + 0.5) / vac, "~vacancy", None) for k in range(vac)]
        slots.sort(key=lambda t: (t[0], t[1]))
        for i, (_, _, sp) in zip(indices, slots, strict=True):
            assigned[i] = sp
    species = []
    coords = []
    for i, site in enumerate(structure):
        if i in assigned:
            if assigned[i] is None:
                continue
            species.append(assigned[i])
        else:
            species.append(site.species)
        coords.append(site.frac_coords)
    if not species:
        raise ValueError("every site is a vacancy after ordering")
    return Structure(structure.lattice, species, coords)


def order_ewald(structure: Structure) -> Structure:
    """Lowest-Ewald-energy ordering with pymatgen (oxidation states guessed); raises when it cannot."""
    from pymatgen.transformations.standard_transformations import OrderDisorderedStructureTransformation

    decorated = structure.copy()
    decorated.add_oxidation_state_by_guess()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ordered = OrderDisorderedStructureTransformation(algo=0).apply_transformation(decorated)
    ordered.remove_oxidation_states()
    return ordered


def min_distance_violations(structure: Structure, cutoff: float) -> float | None:
    """Shortest interatomic distance (Å) if it is below ``cutoff``, else None."""
    if cutoff <= 0:
        return None
    centers, _, _, dists = structure.get_neighbor_list(cutoff)
    if len(centers) == 0:
        return None
    return float(np.min(dists))


# ---------------------------------------------------------------------------------------- cleaning
class _Collector:
    def __init__(self) -> None:
        self.issues: list[tuple[int, Issue]] = []

    def add(self, order: int, rid: str, kind: IssueKind, action: Action, message: str) -> None:
        self.issues.append((order, Issue(record_id=rid, kind=kind, action=action, message=message)))


def _labels_agree(a: dict[str, float], b: dict[str, float], cfg: CleaningConfig) -> bool:
    return all(abs(a[k] - b[k]) <= cfg.label_atol + cfg.label_rtol * abs(b[k]) for k in set(a) & set(b))


def _fmt(labels: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(labels.items()))


def _clean_labels(
    order: int,
    row: RawRecord,
    raw: RawDataset,
    bounds: dict[str, tuple[float | None, float | None]],
    cfg: CleaningConfig,
    out: _Collector,
) -> dict[str, float]:
    """The row's valid labels: NaN/inf and out-of-bounds values removed, censored ones kept or removed per
    ``censored_labels``; each change recorded in ``out``."""
    labels: dict[str, float] = {}
    for name, value in row.labels.items():
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            out.add(order, row.id, "nan_label", "modified", f"{name} is missing or not a number; label removed")
            continue
        lo, hi = bounds.get(name, (None, None))
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            out.add(
                order,
                row.id,
                "label_out_of_bounds",
                "modified",
                f"{name}={value:.6g} outside [{lo}, {hi}] ({raw.properties.get(name, '')}); label removed",
            )
            continue
        if name in row.censored:
            if cfg.censored_labels == "drop":
                out.add(order, row.id, "censored_label", "modified", f"{name} reported only as a bound; removed")
                continue
            out.add(order, row.id, "censored_label", "kept", f"{name} reported only as a bound; using {value:.6g}")
        labels[name] = value
    return labels


def clean(raw: RawDataset, config: CleaningConfig | None = None, *, progress: bool = False) -> Dataset:
    """Clean a source's rows into a :class:`Dataset` with a :class:`CleaningReport`."""
    cfg = config or CleaningConfig()
    bounds = {**raw.bounds, **cfg.label_bounds}
    out = _Collector()
    report = CleaningReport(n_input=len(raw.rows), config=cfg)
    survivors: list[tuple[int, RawRecord, Structure | None, Composition]] = []
    ordered_rows: set[int] = set()
    for order, row in enumerate(progress_iter(raw.rows, f"cleaning {raw.name}", progress)):
        rid = row.id
        if row.error is not None:
            out.add(order, rid, row.error[0], "dropped", row.error[1])  # type: ignore[arg-type]
            continue
        structure = row.structure
        comp = structure.composition if structure is not None else row.composition
        if comp is None:
            out.add(order, rid, "missing_structure", "dropped", "neither a structure nor a composition")
            continue
        bad = unknown_elements(comp)
        if bad:
            out.add(order, rid, "unknown_element", "dropped", f"unknown element(s) {', '.join(bad)}")
            continue
        if structure is None and cfg.require_structure:
            out.add(order, rid, "missing_structure", "dropped", "composition only (require_structure=True)")
            continue
        if structure is not None and not structure.is_ordered:
            formula = structure.composition.reduced_formula
            if cfg.partial_occupancy == "skip":
                out.add(order, rid, "partial_occupancy", "dropped", f"partially occupied ({formula}); skipped")
                continue
            if cfg.partial_occupancy == "order":
                structure, message = _order(structure, cfg)
                if structure is None:
                    out.add(order, rid, "ordering_failed", "dropped", message)
                    continue
                ordered_rows.add(order)
                out.add(order, rid, "partial_occupancy", "modified", message)
                row.meta = {**row.meta, "disordered_formula": formula}
                comp = structure.composition
            else:
                out.add(order, rid, "partial_occupancy", "kept", f"partially occupied ({formula}); kept disordered")
        if structure is not None:
            dmin = min_distance_violations(structure, cfg.min_distance)
            if dmin is not None:
                out.add(
                    order,
                    rid,
                    "overlapping_sites",
                    "dropped",
                    f"two sites {dmin:.2f} Å apart (< min_distance {cfg.min_distance} Å)",
                )
                continue
        labels = _clean_labels(order, row, raw, bounds, cfg, out)
        if not labels and cfg.require_label and raw.properties:
            out.add(order, rid, "no_labels", "dropped", "no valid label left")
            continue
        survivors.append((order, RawRecord(id=rid, labels=labels, meta=row.meta), structure, comp))

    dropped: set[int] = set()
    if cfg.deduplicate:
        dropped = _deduplicate(survivors, cfg, out, progress)
    records = [
        Record(
            id=row.id,
            formula=comp.reduced_formula,
            structure=structure,
            composition=comp,
            labels=row.labels,
            source=raw.source,
            meta=row.meta,
        )
        for k, (_, row, structure, comp) in enumerate(survivors)
        if k not in dropped
    ]
    report.issues = [issue for _, issue in sorted(out.issues, key=lambda t: t[0])]
    report.n_kept = len(records)
    report.n_dropped = len(report.dropped_ids())
    report.n_ordered = sum(1 for k, (o, _, _, _) in enumerate(survivors) if k not in dropped and o in ordered_rows)
    report.n_composition_only = sum(1 for r in records if r.structure is None)
    kept = {r.id for r in records}
    splits = {name: [i for i in ids if i in kept] for name, ids in raw.splits.items()}
    return Dataset(
        name=raw.name,
        records=records,
        properties=dict(raw.properties),
        report=report,
        data_hash=content_hash(records),
        splits=splits,
    )


def _order(structure: Structure, cfg: CleaningConfig) -> tuple[Structure | None, str]:
    before = structure.composition.reduced_formula
    note = ""
    if cfg.ordering == "ewald":
        if len(structure) <= cfg.max_ewald_sites:
            try:
                ordered = order_ewald(structure)
                return ordered, f"partially occupied ({before}); ordered by Ewald energy -> {ordered.formula}"
            except Exception as exc:
                note = f"; Ewald ordering failed ({str(exc).splitlines()[0][:80]}), used deterministic ordering"
        else:
            note = f"; {len(structure)} sites > max_ewald_sites {cfg.max_ewald_sites}, used deterministic ordering"
    try:
        ordered = order_deterministic(structure)
    except Exception as exc:
        return None, f"partially occupied ({before}); ordering failed: {str(exc).splitlines()[0][:120]}"
    after = ordered.composition.reduced_formula
    change = f" -> {after}" if after != before else ""
    return ordered, f"partially occupied ({before}); ordered deterministically{change}{note}"


def _deduplicate(
    survivors: list[tuple[int, RawRecord, Structure | None, Composition]],
    cfg: CleaningConfig,
    out: _Collector,
    progress: bool,
) -> set[int]:
    """Indices (into ``survivors``) to drop; adjusts the first copy's labels for ``conflicts='mean'``."""
    from structures.identity import matcher as project_matcher

    matcher = project_matcher(scale=cfg.match_scale)

    by_formula: dict[str, list[int]] = defaultdict(list)
    for k, (_, row, structure, comp) in enumerate(survivors):
        if structure is not None and structure.is_ordered:
            # records ordered from different disordered compositions (dopant levels) are never duplicates
            by_formula[row.meta.get("disordered_formula", comp.reduced_formula)].append(k)
    dropped: set[int] = set()
    groups = [g for g in by_formula.values() if len(g) > 1]
    for group in progress_iter(groups, "finding duplicates", progress):
        firsts: list[int] = []
        members: dict[int, list[int]] = {}
        for k in group:
            structure = survivors[k][2]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                match = next((f for f in firsts if matcher.fit(structure, survivors[f][2])), None)  # type: ignore[arg-type]
            if match is None:
                firsts.append(k)
                members[k] = [k]
            else:
                members[match].append(k)
        for first, copies in members.items():
            if len(copies) == 1:
                continue
            _resolve(survivors, first, copies[1:], cfg, out, dropped)
    return dropped


def _resolve(
    survivors: list[tuple[int, RawRecord, Structure | None, Composition]],
    first: int,
    others: Iterable[int],
    cfg: CleaningConfig,
    out: _Collector,
    dropped: set[int],
) -> None:
    first_order, first_row, _, _ = survivors[first]
    conflicting = [k for k in others if not _labels_agree(survivors[k][1].labels, first_row.labels, cfg)]
    for k in others:
        order, row, _, _ = survivors[k]
        if k not in conflicting:
            out.add(order, row.id, "duplicate", "dropped", f"same structure as {first_row.id} and labels agree")
            dropped.add(k)
    if not conflicting:
        return
    values = f"{first_row.id}: {_fmt(first_row.labels)}; " + "; ".join(
        f"{survivors[k][1].id}: {_fmt(survivors[k][1].labels)}" for k in conflicting
    )
    if cfg.conflicts == "keep_first":
        for k in conflicting:
            order, row, _, _ = survivors[k]
            out.add(
                order,
                row.id,
                "conflicting_duplicate",
                "dropped",
                f"same structure, labels differ ({values}); kept {first_row.id}",
            )
            dropped.add(k)
    elif cfg.conflicts == "mean":
        group = [first, *conflicting]
        names = set().union(*(survivors[k][1].labels for k in group))
        mean = {
            n: float(np.mean([survivors[k][1].labels[n] for k in group if n in survivors[k][1].labels])) for n in names
        }
        first_row.labels.clear()
        first_row.labels.update(mean)
        out.add(
            first_order,
            first_row.id,
            "conflicting_duplicate",
            "modified",
            f"labels replaced by the mean over same-structure copies ({values}) -> {_fmt(mean)}",
        )
        for k in conflicting:
            order, row, _, _ = survivors[k]
            out.add(order, row.id, "conflicting_duplicate", "dropped", f"merged into {first_row.id} (mean labels)")
            dropped.add(k)
    else:
        for k in [first, *conflicting]:
            order, row, _, _ = survivors[k]
            out.add(
                order,
                row.id,
                "conflicting_duplicate",
                "dropped",
                f"same structure, labels differ ({values}); all copies dropped",
            )
            dropped.add(k)
