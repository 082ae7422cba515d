"""MP competing phases: fetched once per chemical system, cached, used as hull context."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from core.errors import ConfigError
from oracle.competing import CompetingPhases, Phase
from oracle.config import OracleConfig, RefineConfig
from oracle.labelling import competing_phase_entries
from oracle.relax import RelaxConfig

NO_REFINE = RefineConfig(potential=None)  # the first tier alone

LI_O = [
    Phase(entry_id="mp-1960", formula="Li2O", energy_per_atom=-4.93),
    Phase(entry_id="mp-841", formula="Li2O2", energy_per_atom=-5.05),
    Phase(entry_id="mp-135", formula="Li", energy_per_atom=-1.91),
    Phase(entry_id="mp-999", formula="NaCl", energy_per_atom=-3.4),  # outside the system: dropped
]


def test_phases_are_fetched_once_and_cached(tmp_path: Path) -> None:
    asked: list[list[str]] = []

    def fetch(elements: list[str]) -> list[Phase]:
        asked.append(elements)
        return LI_O

    source = CompetingPhases(fetch, tmp_path)
    phases = source.phases({"O", "Li"})
    assert [p.formula for p in phases] == ["Li2O", "Li2O2", "Li"]
    assert source.phases(["Li", "O"]) == phases and asked == [["Li", "O"]]
    offline = CompetingPhases(None, tmp_path)  # no key, cache only
    assert offline.phases(["O", "Li"]) == phases
    assert offline.phases(["Na", "Cl"]) == []
    assert (tmp_path / "Li-O.json").is_file()


def test_for_systems_fetches_only_the_largest_systems(tmp_path: Path) -> None:
    asked: list[list[str]] = []
    source = CompetingPhases(lambda els: asked.append(els) or LI_O, tmp_path)
    phases = source.for_systems([["Li", "O"], ["Li"], ["O", "Li"]])
    assert asked == [["Li", "O"]] and len(phases) == 3


def test_without_a_key_nothing_is_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MP_API_KEY", raising=False)
    assert CompetingPhases.from_env() is None
    assert competing_phase_entries(OracleConfig(), [["Li", "O"]]) == []


@pytest.mark.slow
def test_the_oracle_uses_mp_phases_when_a_key_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import oracle.competing as competing

    monkeypatch.setenv("MP_API_KEY", "test-key")
    monkeypatch.setattr(competing, "mp_api_fetcher", lambda key: lambda els: LI_O)
    phases = competing_phase_entries(OracleConfig(), [["Li", "O"]])
    assert ("mp:mp-1960", "Li2O", -4.93) in phases and len(phases) == 3
    off = OracleConfig(competing_phases="off")
    assert competing_phase_entries(off, [["Li", "O"]]) == []
    scan = OracleConfig(relax=RelaxConfig(potential="chgnet:r2scan"), refine=NO_REFINE)  # not on the MP scale
    assert competing_phase_entries(scan, [["Li", "O"]]) == []


def test_key_without_client_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mp_api" else real(name, *a))
    monkeypatch.setenv("MP_API_KEY", "x" * 32)
    with pytest.raises(ConfigError, match="mp-api client is not installed"):
        CompetingPhases.from_env()
    monkeypatch.delenv("MP_API_KEY")
    assert CompetingPhases.from_env() is None
