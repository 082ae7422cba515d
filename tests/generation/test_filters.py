"""The shared filters reject bad candidates with their reason and count each reason."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from generation import Candidate, GenerateConfig, rejection_reason, screen
from generation.filters import REASONS, charge_balanced


def _rocksalt(a: str, b: str, x: float) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(x), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _cand(s: Structure) -> Candidate:
    return Candidate(structure=s, parent="test", kind="test")


def test_a_sound_structure_passes() -> None:
    assert rejection_reason(_rocksalt("Li", "F", 4.03), GenerateConfig()) == ""


def test_a_charge_imbalanced_structure_is_rejected_with_the_reason() -> None:
    li2f = Structure(Lattice.cubic(4.5), ["Li", "Li", "F"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]])
    assert rejection_reason(li2f, GenerateConfig()).startswith("not charge balanced: no oxidation states of Li2F")
    assert rejection_reason(li2f, GenerateConfig(charge_balance=False)) == ""


def test_overlapping_atoms_are_rejected_with_the_reason() -> None:
    close = Structure(Lattice.cubic(5.0), ["Li", "F"], [[0, 0, 0], [0.15, 0, 0]])  # 0.75 Å apart
    assert rejection_reason(close, GenerateConfig()).startswith("atoms too close")


@pytest.mark.parametrize(
    ("structure", "config", "reason"),
    [
        (_rocksalt("K", "F", 5.3), GenerateConfig(), "missing required element"),
        (_rocksalt("Li", "F", 4.03), GenerateConfig(exclude_elements=("F",)), "excluded element"),
        (_rocksalt("Li", "F", 4.03), GenerateConfig(allow_elements=("Li", "O")), "element not allowed"),
        (_rocksalt("Li", "F", 4.03).make_supercell(2, in_place=False), GenerateConfig(max_sites=4), "too many sites"),
        (_rocksalt("Li", "F", 9.0), GenerateConfig(), "implausible density"),
        (Structure(Lattice.cubic(1e4), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]]), GenerateConfig(), "invalid cell"),
    ],
)
def test_each_rule_names_itself(structure: Structure, config: GenerateConfig, reason: str) -> None:
    assert reason in REASONS
    assert rejection_reason(structure, config).split(":")[0] == reason


def test_screen_counts_reasons_and_drops_duplicates_in_the_batch_and_of_known_structures() -> None:
    lif = _rocksalt("Li", "F", 4.03)
    naf = _rocksalt("Na", "F", 4.63)
    strained = lif.copy()
    strained.scale_lattice(lif.volume * 1.05)  # the same structure, a little bigger
    li2f = Structure(Lattice.cubic(4.5), ["Li", "Li", "F"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]])
    report = screen([_cand(s) for s in (lif, strained, li2f, naf)], GenerateConfig(), known=[naf])
    assert [c.structure for c in report.passed] == [lif]
    assert report.summary() == {
        "generated": 4,
        "passed": 1,
        "duplicate in batch": 1,
        "not charge balanced": 1,
        "already known": 1,
    }
    assert report.reasons[0] == "" and report.reasons[1].startswith("duplicate in batch")


def test_charge_balance_allows_mixed_valence_transition_metals_only() -> None:
    assert charge_balanced("LiMn2O4") and charge_balanced("Fe3O4") and charge_balanced("LiFePO4")
    assert not charge_balanced("LiS6") and not charge_balanced("LiAl") and not charge_balanced("Li2F")
