"""Stability against a convex hull built from elemental references and evaluated structures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element


@dataclass(frozen=True, kw_only=True)
class HullResult:
    """Energy above the hull (eV/atom, >= 0) and the phases the structure decomposes into."""

    e_above_hull: float
    decomposition: dict[str, float]  # reduced formula -> fraction (by atoms)


def hull_energies(
    entries: Sequence[tuple[str, Composition | str, float]],
    elemental_energies: Mapping[str, float],
    context: Sequence[tuple[str, Composition | str, float]] = (),
) -> dict[str, HullResult]:
    """Energy above hull of every entry, against all entries, ``context`` and the elemental references.

    Args:
        entries: (key, composition, energy per atom in eV/atom) of evaluated structures.
        elemental_energies: element symbol -> reference energy (eV/atom), same potential/scale as entries.
        context: further phases on the same energy scale (e.g. MP competing phases), same layout as
            ``entries``; they shape the hull but get no result of their own.

    Returns:
        key -> HullResult. Each entry is placed on the hull of its own chemical system.
    """
    pd_entries: list[tuple[str, PDEntry]] = []
    for key, comp, e_per_atom in [*entries, *context]:
        composition = Composition(comp)
        pd_entries.append((key, PDEntry(composition, e_per_atom * composition.num_atoms, name=key)))
    keys = {key for key, _, _ in entries}
    refs = [PDEntry(Composition(el), float(e), name=el) for el, e in elemental_energies.items()]
    results: dict[str, HullResult] = {}
    diagrams: dict[frozenset[str], PhaseDiagram] = {}
    for key, entry in pd_entries:
        if key not in keys:
            continue
        system = frozenset(el.symbol for el in entry.composition.elements)
        if system not in diagrams:
            missing = [el for el in system if el not in elemental_energies]
            if missing:
                raise ValueError(f"no elemental reference for {', '.join(sorted(missing))}")
            inside = [e for _, e in pd_entries if {x.symbol for x in e.composition.elements} <= system]
            inside += [r for r in refs if Element(r.composition.elements[0].symbol).symbol in system]
            diagrams[system] = PhaseDiagram(inside)
        decomposition, e_hull = diagrams[system].get_decomp_and_e_above_hull(entry, allow_negative=True)
        results[key] = HullResult(
            e_above_hull=max(float(e_hull), 0.0),
            decomposition={d.composition.reduced_formula: round(float(f), 6) for d, f in decomposition.items()},
        )
    return results
