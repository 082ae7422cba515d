"""Filters every generator's output goes through, each rejection counted with its reason.

Order: a plausible cell (:func:`structures.sanity.structure_problem`), element rules (required, excluded,
allowed), size, charge balance (pymatgen's oxidation-state guess), interatomic distances, density; then
de-duplication within the batch and against known structures (the store). Novelty against the training data is a
flag, not a rejection (:class:`generation.data.NoveltyIndex`).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from pymatgen.core import Composition, Element, Structure

from generation.base import Candidate
from generation.config import GenerateConfig
from structures.identity import same_structure
from structures.sanity import structure_problem

#: Rejection reasons, in the order the checks run (the keys of :attr:`FilterReport.rejected`).
REASONS: tuple[str, ...] = (
    "invalid cell",
    "missing required element",
    "excluded element",
    "element not allowed",
    "too many sites",
    "not charge balanced",
    "atoms too close",
    "implausible density",
    "duplicate in batch",
    "already known",
)


@lru_cache(maxsize=20000)
def charge_balanced(formula: str) -> bool:
    """True when pymatgen's oxidation-state guess finds a charge-neutral assignment of common oxidation states
    to ``formula`` in which only transition metals may take a non-integer average state (mixed valence, as in Fe3O4
    or LiMn2O4): LiS6 (S at -1/6), peroxides (O at -1) and intermetallics such as LiAl are not balanced."""
    comp = Composition(formula)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            guesses = comp.oxi_state_guesses(max_sites=-50)
        except Exception:  # pymatgen raises on exotic species; unknown means unbalanced here
            return False
    return any(all(abs(v - round(v)) < 1e-6 or Element(el).is_transition_metal for el, v in g.items()) for g in guesses)


def is_charge_balanced(structure: Structure) -> bool:
    """True when the oxidation states of a decorated structure sum to zero."""
    total = sum(getattr(sp, "oxi_state", 0) or 0 for sp in structure.species)
    return abs(total) < 1e-6


def has_reasonable_distances(structure: Structure, ratio: float) -> bool:
    """No pair closer than ``ratio`` x (sum of the two atomic radii, Å), periodic images included."""
    radii = [float(Element(sp.symbol).atomic_radius or 1.0) for sp in structure.species]
    if min(structure.lattice.abc) < ratio * 2 * min(radii):  # a site too close to its own image
        return False
    if len(structure) < 2:
        return True
    dm = structure.distance_matrix
    n = len(structure)
    return all(dm[i, j] >= ratio * (radii[i] + radii[j]) for i in range(n) for j in range(i + 1, n))


def balanced_states(states: dict[str, float], composition: Composition) -> bool:
    """True when ``states`` (element -> mean oxidation state) cover ``composition`` and sum to zero over it."""
    if not states or any(el.symbol not in states for el in composition.elements):
        return False
    return abs(sum(states[el.symbol] * amount for el, amount in composition.items())) < 1e-6


def rejection_reason(
    structure: Structure, config: GenerateConfig, *, oxidation_states: dict[str, float] | None = None
) -> str:
    """The first rule of ``config`` that ``structure`` breaks, as ``'<reason>: <detail>'``, or ''.

    ``oxidation_states``: states the generator assigned (see ``Candidate.oxidation_states``); when they balance
    the composition the charge-balance rule accepts them instead of pymatgen's guess.
    """
    problem = structure_problem(structure)
    if problem:
        return f"invalid cell: {problem}"
    symbols = {el.symbol for el in structure.composition.elements}
    if config.require_any and not symbols & set(config.require_any):
        return f"missing required element: none of {', '.join(config.require_any)}"
    excluded = sorted(symbols & set(config.exclude_elements))
    if excluded:
        return f"excluded element: {', '.join(excluded)}"
    if config.allow_elements:
        other = sorted(symbols - set(config.allow_elements))
        if other:
            return f"element not allowed: {', '.join(other)}"
    if len(structure) > config.max_sites:
        return f"too many sites: {len(structure)} > {config.max_sites}"
    formula = structure.composition.reduced_formula
    trusted = balanced_states(oxidation_states or {}, structure.composition)
    if config.charge_balance and not trusted and not charge_balanced(formula):
        return f"not charge balanced: no oxidation states of {formula} sum to zero"
    if not has_reasonable_distances(structure, config.min_distance_ratio):
        return f"atoms too close: a pair nearer than {config.min_distance_ratio:g} x the summed atomic radii"
    low, high = config.density_range
    if not low <= structure.density <= high:
        return f"implausible density: {structure.density:.2f} g/cm³ outside {low:g}-{high:g}"
    return ""


@dataclass
class FilterReport:
    """What a batch of generated candidates became: counts per reason, and the survivors."""

    n_in: int = 0
    passed: list[Candidate] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    reasons: list[str] = field(default_factory=list)
    """One entry per input candidate, in input order: '' for the passed ones, else the full reason."""

    def summary(self) -> dict[str, int]:
        """``{'generated': n, 'passed': k, <reason>: count, ...}`` (reasons with a count only)."""
        return {"generated": self.n_in, "passed": len(self.passed), **dict(self.rejected)}


def screen(
    candidates: Sequence[Candidate],
    config: GenerateConfig,
    *,
    known: Iterable[Structure] = (),
) -> FilterReport:
    """Apply the rules of ``config``, then drop duplicates within the batch and of ``known`` structures."""
    report = FilterReport(n_in=len(candidates))
    seen: dict[str, list[Structure]] = {}
    for s in known:
        seen.setdefault(s.composition.reduced_formula, []).append(s)
    n_known = {formula: len(group) for formula, group in seen.items()}
    for cand in candidates:
        reason = rejection_reason(cand.structure, config, oxidation_states=cand.oxidation_states)
        if not reason:
            formula = cand.structure.composition.reduced_formula
            group = seen.setdefault(formula, [])
            for i, other in enumerate(group):
                if same_structure(cand.structure, other):
                    known_one = i < n_known.get(formula, 0)
                    reason = (
                        "already known: matches a stored structure"
                        if known_one
                        else "duplicate in batch: matches an earlier candidate"
                    )
                    break
            else:
                group.append(cand.structure)
        report.reasons.append(reason)
        if reason:
            report.rejected[reason.split(":", 1)[0]] += 1
        else:
            report.passed.append(cand)
    return report
