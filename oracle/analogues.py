"""Competitor structures from known phases of analogous systems: ion exchange and data-mined substitution.

Pure functions of a :class:`~oracle.phases.PhaseSet` (its MP phases and their CIFs): for a binary or ternary
sub-system, every known compound with as many elements whose elements map one-to-one onto it by an allowed
substitution is a parent. Substitutions keep the oxidation state: their probability is the data-mined conditional
probability of Hautier et al. (Inorg. Chem. 2011, 50, 656; pymatgen's ``SubstitutionProbability``), and elements
of the same group stand in for each other where no oxidation state can be assigned (intermetallics). The new
structure is the parent's primitive cell with its species replaced, its volume rescaled by the ionic (else atomic)
radii (the RLS rule of pymatgen's ``RLSVolumePredictor``); it is not relaxed here (see :mod:`oracle.completion`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import permutations, product
from typing import Any

from pymatgen.analysis.phase_diagram import PDEntry
from pymatgen.core import Composition, Element, Species, Structure

from oracle.phases import PhaseSet, ReferencePhase

__all__ = ["Analogue", "analogue_structures", "rescaled", "substitution_weight"]

#: New compositions per sub-system, at most.
MAX_STRUCTURES = 3
#: Parents (structures relaxed) per new composition, at most: the best ion exchange and the likeliest substitution.
PER_FORMULA = 2
#: Largest analogue cell relaxed (atoms, primitive cell).
MAX_SITES = 40
#: Data-mined pair correlation a substitution needs (1: as likely as chance).
MIN_PAIR_CORR = 1.0
#: Probability given to a same-group substitution where no oxidation state can be assigned (intermetallics); data-mined
#: ones between close ions are 0.01-0.1 (Li+ for Na+ 0.043).
GROUP_WEIGHT = 0.02
#: A parent phase at most this far above its own hull (eV/atom) counts as stable in the ranking.
STABLE_PARENT = 0.025


@dataclass(frozen=True, kw_only=True)
class Analogue:
    """A competitor structure derived from a known phase of an analogous system."""

    formula: str
    """Reduced formula of the new structure."""
    structure: Structure
    """Species replaced, volume rescaled; not relaxed."""
    parent_id: str
    parent_formula: str
    substitution: dict[str, str]
    """Parent element -> new element (replaced ones only)."""
    weight: float
    """Summed substitution probability of every known parent of this composition (its likelihood)."""
    probability: float
    """Substitution probability of this parent (product over the replaced elements)."""
    parent_e_above_hull: float
    """The parent's energy above the hull of its own system's reference phases (eV/atom)."""


@lru_cache(maxsize=1)
def _table() -> Any:
    from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionProbability

    return SubstitutionProbability()


@lru_cache(maxsize=256)
def _states(symbol: str) -> tuple[tuple[int, float], ...]:
    """(oxidation state, ln prior) of every species of ``symbol`` in the data-mined table."""
    table = _table()
    return tuple((int(sp.oxi_state), math.log(table.get_px(sp))) for sp in table.species if sp.symbol == symbol)


@lru_cache(maxsize=65536)
def _charges(formula: str) -> dict[str, int] | None:
    """The likeliest charge-balanced oxidation states (the data-mined species priors; the most electronegative
    element negative), or None when none balance (intermetallics, mixed valence, peroxides)."""
    comp = Composition(formula)
    symbols = [el.symbol for el in comp.elements]
    if len(symbols) < 2:
        return None
    anion = max(symbols, key=lambda s: Element(s).X)
    best: tuple[float, dict[str, int]] | None = None
    for combo in product(*(_states(s) for s in symbols)):
        if sum(comp[s] * q for s, (q, _) in zip(symbols, combo, strict=True)) != 0:
            continue
        if combo[symbols.index(anion)][0] >= 0:
            continue
        score = sum(lp for _, lp in combo)
        if best is None or score > best[0]:
            best = (score, {s: q for s, (q, _) in zip(symbols, combo, strict=True)})
    return None if best is None else best[1]


def _same_group(a: str, b: str) -> bool:
    ea, eb = Element(a), Element(b)
    return "H" not in (a, b) and ea.group == eb.group and ea.block == eb.block


@cache
def substitution_weight(source: str, target: str, charge: float | None) -> float | None:
    """Probability that ``target`` replaces ``source`` at oxidation state ``charge`` (1 for itself), or None when
    the substitution is not allowed.

    Both species in the data-mined table: the conditional probability P(target | source), allowed when their pair
    correlation is at least MIN_PAIR_CORR. Neither in it (no charge, or one the table lacks): GROUP_WEIGHT for
    elements of the same group and block (hydrogen apart). One of them only: not allowed (that oxidation state
    is unknown).
    """
    if source == target:
        return 1.0
    table = _table()
    if charge is not None and float(charge).is_integer() and charge != 0:
        s, t = Species(source, int(charge)), Species(target, int(charge))
        known = (s in table.species, t in table.species)
        if all(known):
            if table.pair_corr(t, s) < MIN_PAIR_CORR:
                return None
            return float(table.cond_prob(t, s))
        if any(known):
            return None
    return GROUP_WEIGHT if _same_group(source, target) else None


@lru_cache(maxsize=256)
def _sources(target: str) -> frozenset[str]:
    """Elements that may be replaced by ``target`` at some oxidation state (itself included)."""
    table = _table()
    out = {target}
    for t in table.species:
        if t.symbol != target:
            continue
        for s in table.species:
            if s.oxi_state == t.oxi_state and table.pair_corr(t, s) >= MIN_PAIR_CORR:
                out.add(s.symbol)
    out.update(e.symbol for e in Element if e.Z <= 94 and _same_group(e.symbol, target))
    return frozenset(out)


def _index(phase_set: PhaseSet, n_elements: int) -> dict[frozenset[str], list[ReferencePhase]]:
    """Known (MP) compounds of ``n_elements`` elements by system; computed phases never parent others."""
    out: dict[frozenset[str], list[ReferencePhase]] = {}
    for system, phases in phase_set.systems(n_elements).items():
        known = [p for p in phases if p.source not in ("computed", "campaign")]
        if known:
            out[system] = known
    return out


def _radius(symbol: str, charge: float | None, ionic: bool) -> float | None:
    if ionic:
        if not charge:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no default ionic radius for Fe4+, using ls data"
            radius = Species(symbol, int(charge)).ionic_radius
        return None if radius is None else float(radius)
    radius = Element(symbol).atomic_radius
    return None if radius is None else float(radius)


def rescaled(parent: Structure, substitution: dict[str, str], charges: dict[str, float] | None) -> Structure:
    """``parent`` with its species replaced and its volume scaled by the cube of the ratio of the summed radii
    (ionic radii at the parent's oxidation states when known, else atomic radii; pymatgen's RLS rule)."""
    comp = parent.composition.element_composition
    ratio = None
    for ionic in (charges is not None and all(float(q).is_integer() and q for q in charges.values()), False):
        try:
            pairs = [
                (
                    _radius(substitution.get(el.symbol, el.symbol), charges.get(el.symbol) if charges else None, ionic),
                    _radius(el.symbol, charges.get(el.symbol) if charges else None, ionic),
                    amount,
                )
                for el, amount in comp.items()
            ]
        except (ValueError, KeyError):
            continue
        if all(a and b for a, b, _ in pairs):
            ratio = sum(a * n ** (1 / 3) for a, _, n in pairs) / sum(b * n ** (1 / 3) for _, b, n in pairs)
            break
    new = parent.copy()
    new.replace_species({Element(k): Element(v) for k, v in substitution.items()})
    new.remove_oxidation_states()
    if ratio is not None and math.isfinite(ratio) and ratio > 0:
        new.scale_lattice(parent.volume * ratio**3)
    return new


def _e_above_hull(phase_set: PhaseSet, phase: ReferencePhase) -> float:
    """MP's energy above hull of a file phase, else its distance to the hull of the reference phases (eV/atom)."""
    if phase.e_above_hull is not None:
        return phase.e_above_hull
    comp = Composition(phase.formula)
    entry = PDEntry(comp, phase.energy_per_atom * comp.num_atoms)
    return float(phase_set.diagram(phase.elements).get_e_above_hull(entry, allow_negative=True))


def _candidates(phase_set: PhaseSet, target: frozenset[str]) -> list[tuple[str, float, ReferencePhase, dict[str, str]]]:
    """(new reduced formula, substitution probability, parent, substitution) for every allowed parent."""
    allowed = {s: _sources(s) for s in target}
    out = []
    for system, parents in _index(phase_set, len(target)).items():
        if system == target:
            continue
        for order in permutations(sorted(system)):
            mapping = dict(zip(order, sorted(target), strict=True))
            if not all(t in allowed[s] for t, s in mapping.items()):
                continue
            for parent in parents:
                charges = _charges(parent.formula)
                weights = [substitution_weight(t, s, charges.get(t) if charges else None) for t, s in mapping.items()]
                if any(w is None for w in weights):
                    continue
                formula = Composition({mapping[el.symbol]: n for el, n in Composition(parent.formula).items()})
                substitution = {t: s for t, s in mapping.items() if t != s}
                out.append((formula.reduced_formula, math.prod(weights), parent, substitution))  # type: ignore[arg-type]
    return out


def analogue_structures(
    phase_set: PhaseSet,
    subsystem: Iterable[str],
    *,
    max_structures: int = MAX_STRUCTURES,
    per_formula: int = PER_FORMULA,
    max_sites: int = MAX_SITES,
    held: Iterable[str] | None = None,
) -> list[Analogue]:
    """Competitor structures for ``subsystem`` from the known phases of analogous systems, likeliest first.

    Every known compound with as many elements whose elements map one-to-one onto the sub-system's by allowed
    substitutions (:func:`substitution_weight` at the parent's likeliest oxidation states) is a parent. A new
    composition's likelihood is the summed substitution probability of its parents (those more than
    STABLE_PARENT above their own hull count a tenth): a stoichiometry many analogous systems form comes first
    (Li2O: Ag2O, Na2O, Tl2O, K2O). The ``max_structures`` likeliest compositions the sub-system does not hold yet
    each take up to ``per_formula`` stable parents: the best ion exchange (every replaced element by one of its
    group: Li2O from K2O), then the likeliest substitution (NiO from CoO), the smallest cell on a tie; primitive
    cells of at most ``max_sites`` atoms. The relaxation decides between them: the hull keeps the lower.

    Args:
        held: reduced formulas the sub-system holds (default: asked of ``phase_set``).
    """
    target = frozenset(subsystem)
    have = set(held) if held is not None else {p.formula for p in phase_set.phases_of(target)}
    by_formula: dict[str, list[tuple[float, float, bool, ReferencePhase, dict[str, str]]]] = {}
    weight: dict[str, float] = {}
    for formula, probability, parent, substitution in _candidates(phase_set, target):
        if formula in have:
            continue
        e_hull = _e_above_hull(phase_set, parent)
        weight[formula] = weight.get(formula, 0.0) + probability * (1.0 if e_hull <= STABLE_PARENT else 0.1)
        exchange = all(_same_group(t, s) for t, s in substitution.items())
        by_formula.setdefault(formula, []).append((probability, e_hull, exchange, parent, substitution))
    out: list[Analogue] = []
    for formula in sorted(weight, key=lambda f: (-weight[f], f))[:max_structures]:
        options = by_formula[formula]
        orders = [
            sorted(options, key=lambda o: (o[1] > STABLE_PARENT, not o[2], -o[0], o[1], _size(o[3]), o[3].entry_id)),
            sorted(options, key=lambda o: (o[1] > STABLE_PARENT, -o[0], o[1], _size(o[3]), o[3].entry_id)),
        ]
        chosen: list[str] = []
        for order in orders[:per_formula]:
            for probability, e_hull, _, parent, substitution in order:
                if parent.entry_id in chosen:
                    break  # this order's best is already taken
                structure = phase_set.structure(parent.entry_id)
                if structure is None:
                    continue
                structure = structure.get_primitive_structure()
                if len(structure) > max_sites:
                    continue
                chosen.append(parent.entry_id)
                out.append(
                    Analogue(
                        formula=formula,
                        structure=rescaled(structure, substitution, _charges(parent.formula)),
                        parent_id=parent.entry_id,
                        parent_formula=parent.formula,
                        substitution=substitution,
                        weight=weight[formula],
                        probability=probability,
                        parent_e_above_hull=e_hull,
                    )
                )
                break
    return out


def _size(phase: ReferencePhase) -> float:
    return Composition(phase.formula).num_atoms
