"""Substitution's per-parent disk cache: a hit gives the same candidates without recomputing; a changed setting,
structure or a broken file recomputes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

import generation.substitution as substitution
from generation import GenerateConfig
from generation.cache import cache_dir


def _li2o(a: float = 4.65) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]])


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fresh data home; the names of the parents `substitute` really computes."""
    monkeypatch.setenv("BATTERY_DISCOVERY_HOME", str(tmp_path / "home"))
    seen: list[str] = []
    real = substitution.substitute

    def counting(parent: Structure, name: str, config: GenerateConfig, *, data_mined: bool = True) -> list:
        seen.append(name)
        return real(parent, name, config, data_mined=data_mined)

    monkeypatch.setattr(substitution, "substitute", counting)
    return seen


def _key(c: substitution.Candidate) -> tuple:
    return (c.kind, c.parent, c.probability, c.substitutions, c.oxidation_states, c.structure.as_dict())


def test_a_second_call_reads_the_cache_and_renames_the_parent(calls: list[str]) -> None:
    config = GenerateConfig()
    first = substitution._ordered([("a", _li2o())], config, data_mined=True)
    assert calls == ["a"] and len(first) > 5
    again = substitution._ordered([("b", _li2o())], config, data_mined=True)
    assert calls == ["a"]  # the same structure and settings under another name: read, not recomputed
    assert [(_key(x)[0], _key(x)[2:]) for x in again] == [(_key(x)[0], _key(x)[2:]) for x in first]
    assert {c.parent for c in again} == {"b"}
    assert len(list(cache_dir().glob("*.json.gz"))) == 1


def test_a_changed_setting_or_structure_recomputes(calls: list[str]) -> None:
    substitution._ordered([("a", _li2o())], GenerateConfig(), data_mined=True)
    substitution._ordered([("a", _li2o())], GenerateConfig(max_substitutions_per_parent=3), data_mined=True)
    substitution._ordered([("a", _li2o(4.70))], GenerateConfig(), data_mined=True)
    substitution._ordered([("a", _li2o())], GenerateConfig(), data_mined=False)  # ion exchange only: its own key
    assert calls == ["a", "a", "a", "a"]
    # a setting substitution does not read (the generator list) shares the entry
    substitution._ordered([("a", _li2o())], GenerateConfig(generators=("substitution", "pyxtal")), data_mined=True)
    assert len(calls) == 4


def test_an_unreadable_file_is_recomputed_and_rewritten(calls: list[str]) -> None:
    first = substitution._ordered([("a", _li2o())], GenerateConfig(), data_mined=True)
    (path,) = cache_dir().glob("*.json.gz")
    path.write_bytes(path.read_bytes()[:20])  # truncated by a crash
    again = substitution._ordered([("a", _li2o())], GenerateConfig(), data_mined=True)
    assert calls == ["a", "a"] and [_key(c) for c in again] == [_key(c) for c in first]
    substitution._ordered([("a", _li2o())], GenerateConfig(), data_mined=True)
    assert calls == ["a", "a"]  # rewritten whole
