"""Random symmetric structures (PyXtal) for charge-balanced compositions: the random-structure-search route.

For each composition the space group is drawn from how often each occurs among public structures with the same
number of elements (MP-20's space groups), among the groups whose Wyckoff positions can hold that many atoms;
PyXtal places the atoms on random Wyckoff positions and the cell is rescaled to the volume pymatgen's
data-mined bond lengths predict (``DLSVolumePredictor``).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from pymatgen.core import Composition, Structure

from generation.base import Candidate, GenerationRequest
from generation.compositions import BATTERY_PALETTE, random_compositions
from generation.config import GenerateConfig
from generation.registry import GENERATORS
from generation.wyckoff import pyxtal_random


def pyxtal_version() -> str:
    """Installed PyXtal version."""
    import pyxtal

    return str(pyxtal.__version__)


@lru_cache(maxsize=1)
def spacegroup_prior() -> dict[int, dict[int, float]]:
    """Number of elements (2, 3, 4+) -> space group -> frequency among MP-20 structures (add-one smoothed)."""
    from generation.data import training_rows

    counts: dict[int, Counter[int]] = {2: Counter(), 3: Counter(), 4: Counter()}
    for row in training_rows(("mp_20",)):
        if row.spacegroup:
            k = min(4, len(Composition(row.formula).elements))
            counts[max(2, k)][row.spacegroup] += 1
    counts[4].update(counts[3])  # few quaternaries in MP-20: borrow the ternaries'
    out = {}
    for k, counter in counts.items():
        total = sum(counter.values()) + 230
        out[k] = {sg: (counter.get(sg, 0) + 1) / total for sg in range(1, 231)}
    return out


def _pyxtal_structure(sg: int, species: list[str], num_ions: list[int], seed: int) -> Structure | None:
    return pyxtal_random(sg, species, num_ions, seed)


def rescale_volume(structure: Structure) -> Structure:
    """The cell scaled to pymatgen's data-mined-bond-length volume (unchanged when it cannot predict one)."""
    from pymatgen.analysis.structure_prediction.volume_predictor import DLSVolumePredictor

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            volume = float(DLSVolumePredictor().predict(structure))
        if np.isfinite(volume) and volume > 0:
            structure = structure.copy()
            structure.scale_lattice(volume)
    except Exception:  # no bond-length data for an element pair: keep PyXtal's own estimate
        pass
    return structure


def symmetric_structure(
    composition: Composition, rng: np.random.Generator, config: GenerateConfig, *, tries: int = 12
) -> tuple[Structure, dict[str, object]] | None:
    """A random structure of ``composition`` (some formula units) in a data-informed space group, or None."""
    from pyxtal.symmetry import Group

    species = [el.symbol for el in composition.elements]
    units = [int(composition[el]) for el in composition.elements]
    prior = spacegroup_prior()[max(2, min(4, len(species)))]
    groups = np.arange(1, 231)
    weights = np.array([prior[int(g)] for g in groups])
    for _ in range(tries):
        sg = int(rng.choice(groups, p=weights / weights.sum()))
        group = Group(sg)
        for z in rng.permutation(np.arange(1, config.pyxtal_max_formula_units + 1)).tolist():
            num_ions = [u * z for u in units]
            if sum(num_ions) > 4 * config.max_sites or not group.check_compatible(num_ions)[0]:
                continue
            seed = int(rng.integers(2**31 - 1))
            conv = _pyxtal_structure(sg, species, num_ions, seed)
            if conv is None:
                continue
            prim = conv.get_primitive_structure()
            if len(prim) > config.max_sites:
                continue
            params = {"space_group": sg, "formula_units": z, "pyxtal_seed": seed}
            return rescale_volume(prim), params
    return None


@GENERATORS.register("pyxtal")
class PyXtalGenerator:
    """Random symmetric structures (PyXtal) of random charge-balanced compositions of ``allow_elements`` (default:
    a battery palette), each with one of ``require_any``; space groups drawn as MP-20's structures have them."""

    def generate(self, request: GenerationRequest, config: GenerateConfig) -> list[Candidate]:
        """``request.n`` candidates (fewer when PyXtal fails on some compositions)."""
        if request.condition is not None:
            from core.errors import ConfigError

            raise ConfigError("the pyxtal generator cannot be conditioned on properties; use --generator learned")
        rng = np.random.default_rng(request.seed)
        palette: Sequence[str] = config.allow_elements or [
            e for e in BATTERY_PALETTE if e not in config.exclude_elements
        ]
        comps = random_compositions(
            rng, max(1, request.n), palette=palette, require_any=config.require_any,
            max_elements=config.pyxtal_max_elements,
        )  # fmt: skip
        version = pyxtal_version()
        out: list[Candidate] = []
        for comp in comps:
            made = symmetric_structure(comp, rng, config)
            if made is None:
                continue
            structure, params = made
            out.append(
                Candidate(
                    structure=structure,
                    parent=comp.reduced_formula,
                    kind="pyxtal",
                    generator="pyxtal",
                    version=f"pyxtal-{version}",
                    parameters={**params, "composition": comp.reduced_formula, "seed": request.seed},
                )
            )
        return out
