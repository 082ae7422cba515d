"""Data-mined ionic substitution and Li<->Na ion exchange applied to parent structures."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache, partial

from pymatgen.analysis.bond_valence import BVAnalyzer
from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionPredictor
from pymatgen.analysis.structure_prediction.volume_predictor import RLSVolumePredictor
from pymatgen.core import Element, Species, Structure
from pymatgen.core import __version__ as pymatgen_version

from generation.base import Candidate, GenerationRequest
from generation.cache import cache_key, cached_candidates
from generation.config import GenerateConfig
from generation.filters import has_reasonable_distances, is_charge_balanced, rejection_reason
from generation.registry import GENERATORS

__all__ = [
    "IonExchangeGenerator",
    "SubstitutionGenerator",
    "aliovalent_exchange",
    "decorate",
    "generate_candidates",
    "has_reasonable_distances",
    "is_charge_balanced",
    "passes_filters",
    "substitute",
]
VERSION = "2"
# the settings `substitute` reads: the key of its per-parent cache (`generation.cache`)
_SUBSTITUTE_FIELDS = (
    "aliovalent",
    "ion_exchange",
    "ion_exchange_pairs",
    "max_substitutions_per_parent",
    "substitution_threshold",
)


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


def passes_filters(
    structure: Structure, config: GenerateConfig, oxidation_states: dict[str, float] | None = None
) -> bool:
    """Composition, size and geometry rules of ``config`` (:func:`generation.filters.rejection_reason`)."""
    return not rejection_reason(structure, config, oxidation_states=oxidation_states)


def _states(decorated: Structure) -> dict[str, float]:
    """Element -> mean oxidation state over its sites."""
    sums: dict[str, list[float]] = {}
    for sp in decorated.species:
        sums.setdefault(sp.symbol, []).append(float(getattr(sp, "oxi_state", 0) or 0))
    return {el: sum(v) / len(v) for el, v in sums.items()}


def _apply(parent: Structure, mapping: dict[Species, Species]) -> tuple[Structure, dict[str, float]] | None:
    """The parent with ``mapping`` applied, volume rescaled, undecorated, with its balanced oxidation states."""
    new = parent.copy()
    new.replace_species({old: new_sp for old, new_sp in mapping.items() if old != new_sp})
    if not is_charge_balanced(new):
        return None
    states = _states(new)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scaled = RLSVolumePredictor().get_predicted_structure(new, parent)
    except Exception:
        scaled = new
    return Structure(scaled.lattice, [sp.symbol for sp in scaled.species], scaled.frac_coords), states


def _ion_exchange_maps(parent: Structure, pairs: Sequence[str]) -> list[dict[Species, Species]]:
    maps = []
    for pair in pairs:
        old, new = pair.split(":")
        olds = [sp for sp in parent.composition if sp.symbol == old]
        if olds:
            maps.append({sp: Species(new, sp.oxi_state) for sp in olds})
    return maps


def aliovalent_exchange(parent: Structure, pair: str) -> Structure | None:
    """``'Li:Mg'``: the first alkali site takes the dopant, the nearest (charge - 1) other alkali sites are
    removed (vacancies), so the cell stays neutral; None when the parent has too few alkali sites."""
    old, new = pair.split(":")
    charge = max((s for s in Element(new).common_oxidation_states if s > 0), default=0)
    sites = [i for i, site in enumerate(parent) if site.specie.symbol == old]
    n_vac = charge - 1
    if charge < 2 or len(sites) < 1 + n_vac:
        return None
    plain = Structure(parent.lattice, [sp.symbol for sp in parent.species], parent.frac_coords)
    first = sites[0]
    nearest = sorted(sites[1:], key=lambda j: plain.get_distance(first, j))[:n_vac]
    plain.replace(first, new)
    plain.remove_sites(nearest)
    return plain


def substitute(
    parent: Structure, parent_name: str, config: GenerateConfig, *, data_mined: bool = True
) -> list[Candidate]:
    """Candidates from one parent: ion exchange, aliovalent exchange and (``data_mined``) the most probable
    data-mined substitutions."""
    decorated = decorate(parent)
    if decorated is None:
        return []
    out: list[Candidate] = []
    params = {"substitution_threshold": config.substitution_threshold}
    if config.ion_exchange:
        for mapping in _ion_exchange_maps(decorated, config.ion_exchange_pairs):
            made = _apply(decorated, mapping)
            if made is not None:
                out.append(
                    Candidate(
                        structure=made[0],
                        oxidation_states=made[1],
                        parent=parent_name,
                        kind="ion_exchange",
                        substitutions={str(k): str(v) for k, v in mapping.items()},
                        generator="substitution" if data_mined else "ion-exchange",
                        version=VERSION,
                    )
                )
    for pair in config.aliovalent:
        s = aliovalent_exchange(parent, pair)
        if s is not None:
            old, new = pair.split(":")
            out.append(
                Candidate(
                    structure=s,
                    parent=parent_name,
                    kind="aliovalent",
                    substitutions={old: new},
                    generator="substitution" if data_mined else "ion-exchange",
                    version=VERSION,
                    parameters={"exchange": pair},
                )
            )
    if not data_mined:
        return out
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
        made = _apply(decorated, mapping)
        if made is None:
            continue
        out.append(
            Candidate(
                structure=made[0],
                oxidation_states=made[1],
                parent=parent_name,
                kind="substitution",
                substitutions={str(k): str(v) for k, v in mapping.items() if k != v},
                probability=float(pred["probability"]),
                generator="substitution",
                version=VERSION,
                parameters=params,
            )
        )
    return out


def generate_candidates(
    parents: Sequence[tuple[str, Structure]], config: GenerateConfig, limit: int, *, data_mined: bool = True
) -> list[Candidate]:
    """Filtered candidates from all parents, ion exchange first, then most probable first, at most ``limit``.

    Args:
        parents: (name, structure) pairs, e.g. seeds and the best evaluated structures.
        config: generation knobs.
        limit: maximum number of candidates returned, 0 for all. De-duplication against a store
            happens later, so a caller that writes only new structures should pass 0 and cap the writes.
    """
    pool = [
        c
        for c in _ordered(parents, config, data_mined=data_mined)
        if passes_filters(c.structure, config, c.oxidation_states)
    ]
    return pool if limit <= 0 else pool[:limit]


@GENERATORS.register("substitution")
class SubstitutionGenerator:
    """Ion exchange (``ion_exchange_pairs``, ``aliovalent``) and data-mined ionic substitution (Hautier et al.
    2011) of each parent."""

    def generate(self, request: GenerationRequest, config: GenerateConfig) -> list[Candidate]:
        """Every candidate of the parents, ion exchange first, then by substitution probability (unfiltered)."""
        return _ordered(request.parents, config, data_mined=True)


@GENERATORS.register("ion-exchange")
class IonExchangeGenerator:
    """Only the ion exchanges of each parent (isovalent pairs and aliovalent options): the baseline that
    Szymanski & Bartel (2025) found hard to beat for stable novel materials."""

    def generate(self, request: GenerationRequest, config: GenerateConfig) -> list[Candidate]:
        """Every ion-exchanged candidate of the parents (unfiltered)."""
        return _ordered(request.parents, config, data_mined=False)


def _ordered(parents: Sequence[tuple[str, Structure]], config: GenerateConfig, *, data_mined: bool) -> list[Candidate]:
    """Unfiltered candidates of every parent small enough to pass (substitution keeps the cell), ion exchange
    first, then aliovalent, then by substitution probability."""
    out: list[Candidate] = []
    generator = "substitution" if data_mined else "ion-exchange"
    version = f"{VERSION}/pymatgen-{pymatgen_version}"
    for name, structure in parents:
        if len(structure) <= config.max_sites:
            key = cache_key(generator, version, structure, config, _SUBSTITUTE_FIELDS)
            make = partial(substitute, structure, name, config, data_mined=data_mined)
            out.extend(cached_candidates(key, name, make))
    order = {"ion_exchange": 0, "aliovalent": 1, "substitution": 2}
    out.sort(key=lambda c: (order.get(c.kind, 3), -c.probability, c.structure.composition.reduced_formula))
    return out
