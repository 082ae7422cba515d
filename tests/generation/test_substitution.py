"""Substitution and ion exchange produce charge-balanced, filtered, unique Li/Na candidates."""

from __future__ import annotations

from pymatgen.core import Lattice, Structure

from generation import GenerateConfig, generate_candidates, load_seeds
from generation.substitution import (
    decorate,
    has_reasonable_distances,
    is_charge_balanced,
    passes_filters,
    substitute,
)


def _li2o() -> Structure:
    return load_seeds(["pymatgen:Li2O"])[0].structure


def test_ion_exchange_li_to_na_scales_the_volume() -> None:
    parent = _li2o()
    cands = substitute(parent, "Li2O", GenerateConfig())
    na2o = [c for c in cands if c.kind == "ion_exchange"]
    assert [c.structure.composition.reduced_formula for c in na2o] == ["Na2O"]
    assert na2o[0].substitutions == {"Li+": "Na+"}
    # Na+ is larger than Li+: the predicted cell must grow (Na2O/Li2O volume ratio ~1.7 in MP)
    assert 1.2 < na2o[0].structure.volume / parent.volume < 2.2


def test_data_mined_substitutions_are_charge_balanced_and_probable() -> None:
    cands = substitute(_li2o(), "Li2O", GenerateConfig())
    subs = [c for c in cands if c.kind == "substitution"]
    formulas = {c.structure.composition.reduced_formula for c in subs}
    assert {"Li2S", "Na2O"} <= formulas
    for c in subs:
        assert c.probability >= 1e-3
        assert decorate(c.structure) is not None


def test_filters_require_li_or_na_and_size() -> None:
    cfg = GenerateConfig()
    cands = generate_candidates([("Li2O", _li2o())], cfg, limit=100)
    assert cands, "Li2O must give candidates"
    for c in cands:
        symbols = {el.symbol for el in c.structure.composition.elements}
        assert symbols & {"Li", "Na"}
        assert not symbols & set(cfg.exclude_elements)
    # K2O and Rb2O are probable substitutions of Li2O but contain neither Li nor Na
    assert not {"K2O", "Rb2O", "Cs2O"} & {c.structure.composition.reduced_formula for c in cands}
    small = generate_candidates([("Li2O", _li2o())], cfg.model_copy(update={"max_sites": 2}), limit=100)
    assert small == []


def test_charge_balance_and_distance_checks() -> None:
    s = _li2o()
    d = decorate(s)
    assert d is not None and is_charge_balanced(d)
    d.replace_species({"Li+": "Mg2+"})
    assert not is_charge_balanced(d)
    squeezed = Structure(Lattice.cubic(1.2), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert not has_reasonable_distances(squeezed, 0.6)
    assert has_reasonable_distances(s, 0.6)


def test_ion_exchange_turns_lifepo4_into_nafepo4() -> None:
    from generation import GENERATORS, GenerationRequest
    from structures.identity import spacegroup_number

    parent = load_seeds(["pymatgen:LiFePO4"])[0].structure
    cands = GENERATORS.get("ion-exchange")().generate(
        GenerationRequest(n=0, parents=[("LiFePO4", parent)]), GenerateConfig()
    )
    assert [c.structure.composition.reduced_formula for c in cands] == ["NaFePO4"]
    nafepo4 = cands[0]
    assert nafepo4.kind == "ion_exchange" and nafepo4.generator == "ion-exchange"
    assert nafepo4.provenance()["parents"] == ["LiFePO4"]
    assert spacegroup_number(nafepo4.structure) == spacegroup_number(parent) == 62  # the olivine frame is kept
    assert nafepo4.structure.volume > parent.volume  # Na+ is larger than Li+
    assert passes_filters(nafepo4.structure, GenerateConfig())


def test_potassium_and_aliovalent_exchanges_on_request() -> None:
    from generation.filters import charge_balanced

    parent = load_seeds(["pymatgen:LiFePO4"])[0].structure
    cfg = GenerateConfig(ion_exchange_pairs=("Li:K",), aliovalent=("Li:Mg",), require_any=())
    cands = substitute(parent, "LiFePO4", cfg, data_mined=False)
    by_kind = {c.kind: c for c in cands}
    assert by_kind["ion_exchange"].structure.composition.reduced_formula == "KFePO4"
    doped = by_kind["aliovalent"].structure
    assert doped.composition["Mg"] == 1 and doped.composition["Li"] == parent.composition["Li"] - 2
    assert len(doped) == len(parent) - 1  # one Li became Mg, one Li left a vacancy
    assert charge_balanced(doped.composition.reduced_formula)


def test_bad_exchange_specs_are_config_errors() -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match="OLD:NEW"):
        GenerateConfig(ion_exchange_pairs=("LiNa",))
    with pytest.raises(pydantic.ValidationError, match="unknown element"):
        GenerateConfig(aliovalent=("Li:Xx",))
