"""Data-mined ionic substitution and Li<->Na ion exchange applied to parent structures."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

from pymatgen.analysis.bond_valence import BVAnalyzer
from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionPredictor
from pymatgen.analysis.structure_prediction.volume_predictor import RLSVolumePredictor
from pymatgen.core import Element, Species, Structure

from generation.base import Candidate
from generation.config import GenerateConfig
from generation.registry import GENERATORS


@lru_cache(maxsize=8)
def _predictor(threshold: float) -> SubstitutionPredictor:
    return SubstitutionPredictor(threshold=threshold)


def decorate(structure: Structure) -> Structure | None:
    """Oxidation-state decorated copy (bond valence, then composition guess), or None."""
    try:
        return BVAnalyzer().get_oxi_state_decorated_structure(structure)
    except ValueError:
        pass
    copy = structure.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copy.add_oxidation_state_by_guess()
    except Exception:
        return None
    charges = [getattr(s, "oxi_state", None) for s in copy.composition]
    return copy if all(c is not None for c in charges) and any(charges) else None


def is_charge_balanced(structure: Structure) -> bool:
    """True when the oxidation states sum to zero."""
    total = sum(getattr(sp, "oxi_state", 0) or 0 for sp in structure.species)
    return abs(total) < 1e-6


def has_reasonable_distances(structure: Structure, ratio: float) -> bool:
    """No pair closer than ``ratio`` x (sum of the two atomic radii, Å)."""
    if len(structure) < 2:
        return True
    dm = structure.distance_matrix
    radii = [float(Element(sp.symbol).atomic_radius or 1.0) for sp in structure.species]
    n = len(structure)
    for i in range(n):
        for j in range(i + 1, n):
            if dm[i, j] < ratio * (radii[i] + radii[j]):
                return False
    # a site too close to its own periodic image
    return min(structure.lattice.abc) >= ratio * 2 * min(radii)


def passes_filters(structure: Structure, config: GenerateConfig) -> bool:
    """Composition, size and geometry rules of ``config``."""
    symbols = {el.symbol for el in structure.composition.elements}
    if config.require_any and not symbols & set(config.require_any):
        return False
    if symbols & set(config.exclude_elements):
        return False
    if len(structure) > config.max_sites:
        return False
    return has_reasonable_distances(structure, config.min_distance_ratio)


def _apply(parent: Structure, mapping: dict[Species, Species]) -> Structure | None:
    new = parent.copy()
    new.replace_species({old: new_sp for old, new_sp in mapping.items() if old != new_sp})
    if not is_charge_balanced(new):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scaled = RLSVolumePredictor().get_predicted_structure(new, parent)
    except Exception:
        scaled = new
    return Structure(scaled.lattice, [sp.symbol for sp in scaled.species], scaled.frac_coords)


def _ion_exchange_maps(parent: Structure) -> list[dict[Species, Species]]:
    maps = []
    for old, new in (("Li", "Na"), ("Na", "Li")):
        olds = [sp for sp in parent.composition if sp.symbol == old]
        if olds:
            maps.append({sp: Species(new, sp.oxi_state) for sp in olds})
    return maps


def substitute(parent: Structure, parent_name: str, config: GenerateConfig) -> list[Candidate]:
    """Candidates from one parent: ion exchange plus the most probable data-mined substitutions."""
    decorated = decorate(parent)
    if decorated is None:
        return []
    out: list[Candidate] = []
    if config.ion_exchange:
        for mapping in _ion_exchange_maps(decorated):
            s = _apply(decorated, mapping)
            if s is not None:
                out.append(
                    Candidate(
                        structure=s,
                        parent=parent_name,
                        kind="ion_exchange",
                        substitutions={str(k): str(v) for k, v in mapping.items()},
                    )
                )
    species = sorted(set(decorated.composition), key=str)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predictions = _predictor(config.substitution_threshold).list_prediction(species)
    except ValueError:  # a species the data-mined table does not know (e.g. peroxide O-)
        predictions = []
    predictions = sorted(predictions, key=lambda p: -p["probability"])[: config.max_substitutions_per_parent]
    for pred in predictions:
        mapping = {old: new for new, old in pred["substitutions"].items()}  # pymatgen gives new -> old
        if all(old == new for old, new in mapping.items()):
            continue
        s = _apply(decorated, mapping)
        if s is None:
            continue
        out.append(
            Candidate(
                structure=s,
                parent=parent_name,
                kind="substitution",
                substitutions={str(k): str(v) for k, v in mapping.items() if k != v},
                probability=float(pred["probability"]),
            )
        )
    return out


def generate_candidates(
    parents: Sequence[tuple[str, Structure]], config: GenerateConfig, limit: int
) -> list[Candidate]:
    """Filtered candidates from all parents, most probable first, at most ``limit``.

    Args:
        parents: (name, structure) pairs, e.g. seeds and the best evaluated structures.
        config: generation knobs.
        limit: maximum number of candidates returned, 0 for all. De-duplication against a store
            happens later, so a caller that writes only new structures should pass 0 and cap the writes.
    """
    pool: list[Candidate] = []
    for name, structure in parents:
        if len(structure) > config.max_sites:  # substitution keeps the cell: nothing would pass
            continue
        pool.extend(c for c in substitute(structure, name, config) if passes_filters(c.structure, config))
    pool.sort(key=lambda c: (c.kind != "ion_exchange", -c.probability, c.structure.composition.reduced_formula))
    return pool if limit <= 0 else pool[:limit]


@GENERATORS.register("substitution")
class SubstitutionGenerator:
    """Li<->Na ion exchange and data-mined ionic substitution (Hautier et al. 2011) of each parent."""

    def generate(self, parents: Sequence[tuple[str, Structure]], config: GenerateConfig) -> list[Candidate]:
        """Every filtered candidate, ion exchange first, then by substitution probability."""
        return generate_candidates(parents, config, limit=0)
