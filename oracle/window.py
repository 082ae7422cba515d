"""Electrochemical stability window vs the working ion's metal, after Zhu, He & Mo (ACS AMI 2015, 7, 23685).

The compound is in contact with a reservoir of the working ion at chemical potential mu (Li or Na open, every
other element conserved). It neither takes up nor releases ions while it lies on the hull of the grand
potential Phi = E - mu N_ion; that is, while mu lies inside the projection onto mu_ion of its stability
region in chemical-potential space. That region's vertices are the facets of the ordinary phase diagram
that contain the compound, so the window is [min, max] of mu_ion over those facets, turned into volts vs the
metal: V = -(mu - mu_metal) / e. Below the low limit it is reduced (takes up ions), above the high limit it is
oxidised (releases them); the products are the grand-potential decomposition just outside each limit.

Pure function of values: a composition, an energy per atom (or None) and the reference phases as pymatgen
``PDEntry`` objects (e.g. ``PhaseSet.entries(elements)`` from :mod:`oracle.phases`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from pymatgen.analysis.phase_diagram import GrandPotentialPhaseDiagram, PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element

from oracle.electrode import ION_SYMBOLS
from oracle.phases import MIN_COMPOUNDS

__all__ = ["HULL_OFFSET", "StabilityWindow", "stability_window"]

#: A compound on or above the hull is placed this far below it (eV/atom) so that it is a vertex of the hull;
#: its window is then (to within a few mV) the overlap of the windows of the phases it would decompose into.
HULL_OFFSET = 1e-4
#: How far outside a limit the products are read (eV), at most: half the way to the next transition.
_STEP = 0.05


class StabilityWindow(BaseModel):
    """The electrochemical stability window of one compound against one reference phase set."""

    model_config = ConfigDict(frozen=True)

    formula: str = Field(description="Reduced formula of the compound.")
    ion: str = Field(description="Working ion whose chemical potential is open (Li or Na).")
    low_V: float = Field(
        description="Reduction limit (V vs the ion's metal): below it the compound takes up ions; 0 when it is "
        "stable against the metal."
    )
    high_V: float | None = Field(
        description="Oxidation limit (V vs the ion's metal): above it the compound releases ions; None when it "
        "holds no working ion (it cannot release any; other oxidation, e.g. O2 loss, is not in this model)."
    )
    reduction_products: tuple[str, ...] = Field(
        description="Phases just below low_V (reduced formulas, the open ion not listed); () when low_V = 0."
    )
    oxidation_products: tuple[str, ...] = Field(
        description="Phases just above high_V (reduced formulas, the open ion not listed); () when high_V is None."
    )
    energy_per_atom: float = Field(description="Energy of the compound used in the diagram (eV/atom).")
    e_above_hull: float | None = Field(
        description="Signed distance of the given energy to the reference hull (eV/atom); None when no energy "
        "was given."
    )
    placed_at_hull: bool = Field(
        description="True when the compound was put HULL_OFFSET below the hull: no energy given, or the given "
        "energy is on or above the hull (a metastable compound gets the window of its hull point)."
    )
    hull_decomposition: tuple[str, ...] = Field(
        description="Reference phases of the hull at the composition, the compound left out (reduced formulas, "
        "elements included); the compound itself when it is a reference phase on the hull."
    )
    degenerate: bool = Field(
        description="True when the compound was placed at the hull inside a full facet (as many decomposition "
        "phases as elements): its window is then one potential (width ~ HULL_OFFSET), the potential at which "
        "those phases coexist; an interval needs a decomposition into fewer phases (LGPS = Li4GeS4 + 2 Li3PS4)."
    )
    n_phases: int = Field(description="Reference compounds (two or more elements) in the chemical system.")
    missing_ion_binaries: tuple[str, ...] = Field(
        description="Ion binaries absent from the references, e.g. 'Li-O' when no Li-O compound is there."
    )
    thin: bool = Field(
        description="True when the window rests on a thin hull: fewer compounds than oracle.phases.MIN_COMPOUNDS "
        "for its number of elements, none with all but one of its elements, or no binary of the ion with the "
        "compound's most electronegative element (e.g. no Li2O for an oxide)."
    )


def _system_entries(entries: Sequence[PDEntry], system: set[str]) -> list[PDEntry]:
    kept = [e for e in entries if {el.symbol for el in e.composition.elements} <= system]
    have = {e.composition.elements[0].symbol for e in kept if e.composition.is_element}
    missing = sorted(system - have)
    if missing:
        raise ValueError(f"no elemental reference entry for {', '.join(missing)}")
    return kept


def _products(entries: list[PDEntry], comp: Composition, ion: str, mu: float) -> tuple[str, ...]:
    """The grand-potential decomposition of ``comp`` at ion chemical potential ``mu`` (eV)."""
    gpd = GrandPotentialPhaseDiagram(entries, {Element(ion): mu})
    open_free = Composition({el: amt for el, amt in comp.items() if el.symbol != ion})
    decomposition = gpd.get_decomposition(open_free)
    names = {getattr(e, "original_entry", e).composition.reduced_formula for e, f in decomposition.items() if f > 1e-6}
    return tuple(sorted(names))


def _thin(comp: Composition, ion: str, compounds: list[PDEntry]) -> tuple[bool, tuple[str, ...]]:
    system = {el.symbol for el in comp.elements} | {ion}
    k = len(system)
    sets = [frozenset(el.symbol for el in e.composition.elements) for e in compounds]
    widest = max((len(s) for s in sets), default=1)
    others = sorted(system - {ion})
    missing = tuple(f"{ion}-{x}" for x in others if frozenset({ion, x}) not in sets)
    thin = k >= 2 and (len(compounds) < MIN_COMPOUNDS.get(k, MIN_COMPOUNDS[4]) or widest < k - 1)
    if others:
        anion = max(others, key=lambda s: Element(s).X)
        thin = thin or f"{ion}-{anion}" in missing
    return thin, missing


def stability_window(
    composition: Composition | str,
    energy_per_atom: float | None,
    entries: Sequence[PDEntry],
    *,
    ion: str | None = None,
    hull_offset: float = HULL_OFFSET,
) -> StabilityWindow:
    """The window in which ``composition`` takes up or releases no working ion (Zhu, He & Mo 2015).

    Args:
        energy_per_atom: the compound's energy on the scale of ``entries`` (eV/atom), or None to place it at
            the hull. A value below the hull is used as is (it widens the window: check ``e_above_hull``).
        entries: reference phases (total energies, eV) with an elemental entry for every element of the
            compound and the ion; entries outside that chemical system are ignored.
        ion: the open ion; default the one of Li/Na the compound holds (required when it holds neither or both).
    """
    comp = Composition(composition).element_composition
    present = [s for s in ION_SYMBOLS if comp[s] > 0]
    if ion is None:
        if len(present) != 1:
            raise ValueError(f"{comp.reduced_formula}: pass ion= (holds {' and '.join(present) or 'no Li or Na'})")
        ion = present[0]
    elif ion not in ION_SYMBOLS:
        raise ValueError(f"unknown working ion {ion!r}; known: {', '.join(ION_SYMBOLS)}")
    system = {el.symbol for el in comp.elements} | {ion}
    refs = _system_entries(entries, system)
    base = PhaseDiagram(refs)
    hull = float(base.get_hull_energy_per_atom(comp))
    decomposition = base.get_decomposition(comp)
    hull_phases = tuple(sorted({e.composition.reduced_formula for e, f in decomposition.items() if f > 1e-6}))
    e_hull = None if energy_per_atom is None else float(energy_per_atom) - hull
    placed = e_hull is None or e_hull > -hull_offset
    used = hull - hull_offset if placed else float(energy_per_atom)  # type: ignore[arg-type]
    target = PDEntry(comp, used * comp.num_atoms, name="target")
    diagram = PhaseDiagram([*refs, target])
    ion_el = Element(ion)
    mu_metal = float(diagram.el_refs[ion_el].energy_per_atom)
    facets = diagram.get_all_chempots(comp)
    if not facets:
        raise ValueError(f"{comp.reduced_formula} is not a vertex of its hull (numerical trouble)")
    mus = [float(chempots[ion_el]) for chempots in facets.values()]
    mu_high, mu_low = max(mus), min(mus)
    transitions = [float(m) for m in diagram.get_transition_chempots(ion_el)]
    all_entries = [*refs, target]

    reduction: tuple[str, ...] = ()
    low_v = max(0.0, -(mu_high - mu_metal))
    if mu_high < mu_metal - 1e-9:
        above = [m for m in transitions if m > mu_high + 1e-9]
        step = min(_STEP, (min(above) - mu_high) / 2) if above else _STEP
        reduction = _products(all_entries, comp, ion, mu_high + step)
    oxidation: tuple[str, ...] = ()
    high_v: float | None = None
    if comp[ion] > 0:
        high_v = -(mu_low - mu_metal)
        below = [m for m in transitions if m < mu_low - 1e-9]
        step = min(_STEP, (mu_low - max(below)) / 2) if below else _STEP
        oxidation = _products(all_entries, comp, ion, mu_low - step)

    compounds = [e for e in refs if len(e.composition.elements) >= 2]
    thin, missing = _thin(comp, ion, compounds)
    return StabilityWindow(
        formula=comp.reduced_formula,
        ion=ion,
        low_V=low_v,
        high_V=high_v,
        reduction_products=reduction,
        oxidation_products=oxidation,
        energy_per_atom=used,
        e_above_hull=e_hull,
        placed_at_hull=placed,
        hull_decomposition=hull_phases,
        degenerate=placed and len(hull_phases) >= len(system),
        n_phases=len(compounds),
        missing_ion_binaries=missing,
        thin=thin,
    )
