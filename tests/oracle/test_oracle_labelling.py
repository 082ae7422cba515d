"""From a relaxation to labels (oracle.labelling): corrected and formation energies, failures, references,
competing phases; and the one formation-energy function shared by the relaxation and the references."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ase.calculators.calculator import Calculator
from pymatgen.core import Composition, Structure

from oracle.compat import correct_energy
from oracle.competing import Phase
from oracle.config import OracleConfig, RefineConfig
from oracle.formation import formation_energy_per_atom
from oracle.labelling import competing_phase_entries, elemental_energies, relaxation_fields
from oracle.potentials import Potential, register_potential, unregister_potential
from oracle.references import ElementalReferences, clear_memory_cache
from oracle.relax import RelaxationResult, RelaxConfig, relax_structure

NO_REFINE = RefineConfig(potential=None)  # the first tier alone

Rocksalt = Callable[..., Structure]
MU = {"Li": -1.5, "F": -2.0}  # eV/atom


class _References:
    """Fixed chemical potentials (eV/atom); a missing element raises KeyError."""

    def __init__(self, mu: dict[str, float]) -> None:
        self.mu = mu

    def formation_energy_per_atom(self, composition: Composition | str, energy_total: float) -> float:
        return formation_energy_per_atom(composition, energy_total, self.mu.__getitem__)


def _result(energy_total: float | None, *, status: str = "converged", reason: str = "") -> RelaxationResult:
    return RelaxationResult(
        status=status,
        reason=reason,
        formula="LiF",
        n_sites=2,
        energy_total=energy_total,
        energy_per_atom=None if energy_total is None else energy_total / 2,
        potential="fake:const",
        potential_version="fake 1.0",
        elapsed_s=0.1,
        fmax=0.1,
        max_steps=200,
    )


def _fields(result: RelaxationResult, structure: Structure, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "formula": "LiF",
        "references": _References(MU),
        "energy_scale": "other",
        "correction": "auto",
    }
    return relaxation_fields(result, structure, **{**options, **kwargs})


def test_formation_energy_is_total_minus_references_per_atom() -> None:
    # (E - Σ n_i μ_i) / N = (-8 - (-1.5 - 2.0)) / 2
    assert formation_energy_per_atom("LiF", -8.0, MU.__getitem__) == pytest.approx(-2.25)
    assert formation_energy_per_atom(Composition("Li2F2"), -16.0, MU.__getitem__) == pytest.approx(-2.25)


def test_relaxation_fields_of_a_converged_result(make_rocksalt: Rocksalt) -> None:
    fields = _fields(_result(-8.0), make_rocksalt(4.03))
    assert fields["status"] == "converged" and fields["reason"] == ""
    assert fields["formula"] == "LiF" and fields["energy_total"] == -8.0
    assert fields["corrected_energy_per_atom"] == pytest.approx(-4.0)
    assert fields["energy_correction_per_atom"] == 0.0 and fields["correction_scheme"] == "none"
    assert fields["formation_energy_per_atom"] == pytest.approx(-2.25)
    assert set(RelaxationResult.model_fields) <= set(fields)


def test_relaxation_fields_correct_raw_gga_energies_before_the_formation_energy(make_rocksalt: Rocksalt) -> None:
    structure = make_rocksalt(4.03)
    fields = _fields(_result(-8.0), structure, energy_scale="mp_raw")
    expected = correct_energy(structure, -8.0, energy_scale="mp_raw")
    assert fields["correction_scheme"] == "MP2020"
    assert fields["energy_correction_per_atom"] == pytest.approx(-0.462 / 2, abs=1e-3)  # fluoride, per F
    assert fields["corrected_energy_per_atom"] == pytest.approx(expected.energy_per_atom)
    assert fields["formation_energy_per_atom"] == pytest.approx((2 * expected.energy_per_atom + 3.5) / 2)
    none = _fields(_result(-8.0), structure, energy_scale="mp_raw", correction="none")
    assert none["correction_scheme"] == "none" and none["formation_energy_per_atom"] == pytest.approx(-2.25)


def test_relaxation_fields_fail_without_a_formation_energy(make_rocksalt: Rocksalt) -> None:
    structure = make_rocksalt(4.03)
    unconverged = _result(-8.0, status="unconverged", reason="not converged")
    missing = _fields(unconverged, structure, references=_References({}))
    assert missing["status"] == "failed"
    assert missing["reason"].startswith("not converged; no formation energy: KeyError")
    assert missing.get("formation_energy_per_atom") is None
    infinite = _fields(_result(-8.0), structure, references=_References({"Li": -math.inf, "F": -2.0}))
    assert infinite["status"] == "failed" and infinite["reason"] == "no finite formation energy"


def test_failed_relaxations_are_recorded_as_they_are(make_rocksalt: Rocksalt) -> None:
    result = _result(None, status="failed", reason="atoms too close")
    fields = _fields(result, make_rocksalt(4.03), formula="Li1F1")
    assert fields == {**result.model_dump(), "formula": "Li1F1"}


@pytest.mark.usefixtures("fake_potentials")
def test_relaxation_and_labels_use_the_same_formation_energy(make_rocksalt: Rocksalt) -> None:
    """One formation-energy function: the relaxation's own value, the references' and the label agree."""
    clear_memory_cache()
    config = OracleConfig(relax=RelaxConfig(potential="fake:const"), refine=NO_REFINE, reference_source="ase")
    references, energies = elemental_energies(config, {"Li", "F"})
    structure = make_rocksalt(4.03)
    result = relax_structure(structure, config.relax, references)
    expected = (result.energy_total - energies["Li"] - energies["F"]) / 2
    assert result.formation_energy_per_atom == pytest.approx(expected)
    fields = relaxation_fields(
        result, structure, formula="LiF", references=references, energy_scale="other", correction="auto"
    )
    assert fields["formation_energy_per_atom"] == pytest.approx(result.formation_energy_per_atom, abs=1e-12)


@pytest.mark.usefixtures("fake_potentials")
def test_elemental_energies_follow_the_reference_source() -> None:
    import torch

    clear_memory_cache()
    config = OracleConfig(relax=RelaxConfig(potential="fake:const"), refine=NO_REFINE, reference_source="ase")
    threads = torch.get_num_threads()
    references, energies = elemental_energies(config, {"Li", "F"}, num_threads=2)
    assert torch.get_num_threads() == threads  # restored
    assert isinstance(references, ElementalReferences)
    assert references.potential_spec == "fake:const" and references.source == "ase"
    assert list(energies) == ["F", "Li"]  # sorted
    assert energies == {"F": pytest.approx(-2.0), "Li": pytest.approx(-1.5)}
    auto = OracleConfig(relax=RelaxConfig(potential="fake:const"), refine=NO_REFINE)
    assert elemental_energies(auto, set())[0].source == "auto"  # 'other' energy scale: ASE, MP where missing


class _MPScale(Potential):
    """A potential on the MP2020 scale that is never evaluated."""

    energy_scale = "mp2020"

    def __init__(self, arg: str | None = None) -> None:
        self.name, self.version = "mpscale", "mpscale 1"

    def calculator(self) -> Calculator:
        raise NotImplementedError


@pytest.fixture
def mp_scale() -> Iterator[None]:
    register_potential("mpscale", _MPScale, overwrite=True)
    yield
    unregister_potential("mpscale")


@pytest.mark.usefixtures("mp_scale", "fake_potentials")
def test_competing_phase_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[list[str]] = []

    def fetch(elements: list[str]) -> list[Phase]:
        fetched.append(elements)
        return [Phase(entry_id="mp-1960", formula="Li2O", energy_per_atom=-4.9)]

    monkeypatch.setattr("oracle.competing.mp_api_fetcher", lambda key: fetch)
    on_mp = OracleConfig(relax=RelaxConfig(potential="mpscale"), refine=NO_REFINE)
    monkeypatch.delenv("MP_API_KEY", raising=False)
    assert competing_phase_entries(on_mp, [["Li", "O"]]) == []  # no key: nothing fetched
    monkeypatch.setenv("MP_API_KEY", "test-key")
    assert competing_phase_entries(on_mp, [["Li", "O"], ["O", "Li"]]) == [("mp:mp-1960", "Li2O", -4.9)]
    assert fetched == [["Li", "O"]]
    off = OracleConfig(relax=RelaxConfig(potential="mpscale"), refine=NO_REFINE, competing_phases="off")
    assert competing_phase_entries(off, [["Li", "O"]]) == []
    other_scale = OracleConfig(relax=RelaxConfig(potential="fake:const"), refine=NO_REFINE)
    assert competing_phase_entries(other_scale, [["Li", "O"]]) == []
    doubly_corrected = OracleConfig(
        relax=RelaxConfig(potential="mpscale"), refine=NO_REFINE, energy_correction="mp2020"
    )
    assert competing_phase_entries(doubly_corrected, [["Li", "O"]]) == []
    assert fetched == [["Li", "O"]]
