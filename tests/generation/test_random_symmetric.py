"""PyXtal structures have the composition and space group asked for; the generator's output is usable."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition

from generation import GENERATORS, GenerateConfig, GenerationRequest, screen
from generation.compositions import random_compositions
from generation.filters import charge_balanced
from generation.random_symmetric import _pyxtal_structure, symmetric_structure
from structures.identity import spacegroup_number


@pytest.mark.parametrize(
    ("sg", "species", "num_ions"),
    [(225, ["Li", "F"], [4, 4]), (62, ["Li", "Fe", "P", "O"], [4, 4, 4, 16]), (166, ["Li", "Co", "O"], [3, 3, 6])],
)
def test_pyxtal_output_has_the_requested_composition_and_space_group(
    sg: int, species: list[str], num_ions: list[int]
) -> None:
    s = _pyxtal_structure(sg, species, num_ions, seed=7)
    assert s is not None
    assert s.composition == Composition(dict(zip(species, num_ions, strict=True)))
    assert spacegroup_number(s, symprec=0.01) == sg


def test_compositions_are_charge_balanced_distinct_and_hold_a_required_element() -> None:
    comps = random_compositions(np.random.default_rng(3), 25, require_any=("Li", "Na"))
    formulas = [c.reduced_formula for c in comps]
    assert len(formulas) == 25 == len(set(formulas))
    for c in comps:
        assert charge_balanced(c.reduced_formula)
        assert {"Li", "Na"} & {el.symbol for el in c.elements}


def test_symmetric_structure_keeps_the_composition_and_reports_its_space_group() -> None:
    made = symmetric_structure(Composition("Li2O"), np.random.default_rng(0), GenerateConfig())
    assert made is not None
    structure, params = made
    assert structure.composition.reduced_formula == "Li2O"
    assert 1 <= params["space_group"] <= 230 and len(structure) <= 30


def test_the_pyxtal_generator_is_reproducible_and_mostly_passes_the_filters() -> None:
    cfg = GenerateConfig(allow_elements=("Li", "Na", "Mg", "Al", "O", "S", "F", "Cl", "P"))
    first = GENERATORS.get("pyxtal")().generate(GenerationRequest(n=8, seed=5), cfg)
    again = GENERATORS.get("pyxtal")().generate(GenerationRequest(n=8, seed=5), cfg)
    assert [c.structure for c in first] == [c.structure for c in again]
    assert len(first) >= 6
    for c in first:
        assert c.generator == "pyxtal" and c.version.startswith("pyxtal-") and "space_group" in c.parameters
        assert {el.symbol for el in c.structure.composition.elements} <= set(cfg.allow_elements)
    assert len(screen(first, cfg).passed) >= len(first) // 2
