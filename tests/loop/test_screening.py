"""Screening completes the hull of each scored system first and says what every hull held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymatgen.core import Lattice, Structure

from oracle.phases import PhaseSet, default_phase_set


def _li2o() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.63), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]])


def test_screen_completes_hulls_and_reports_their_phases(monkeypatch, tmp_path: Path, shared_data) -> None:
    import loop.screening
    import oracle.labelling
    from loop.screening import COLUMNS, ScreenInput, screen

    monkeypatch.setenv("BATTERY_DISCOVERY_HOME", str(tmp_path))
    monkeypatch.delenv("MP_API_KEY", raising=False)
    base = default_phase_set(competing=False)
    phases = PhaseSet(compounds=base.compounds, mu=base.mu, structure_files=base.structure_files)
    mu = dict(base.mu)

    def energy(structure: Structure, formation: float) -> float:
        comp = structure.composition.fractional_composition
        return formation + sum(float(x) * mu[el.symbol] for el, x in comp.items())

    def fake_relax(oracle: Any, rows: list, structures: dict, valid: list, threads: int) -> dict[int, float]:
        return {i: energy(structures[i], -2.0) for i in valid}  # Li2O: MP says -2.07 eV/atom

    relaxed: list[str] = []

    def fake_label(config: Any, structures: list, *, num_threads: int = 1, on_result: Any = None) -> list:
        out = []
        for i, s in enumerate(structures):
            relaxed.append(s.composition.reduced_formula)
            fields = {"status": "converged", "corrected_energy_per_atom": energy(s, -2.05), "relaxed_structure": None}
            out.append(fields)
            on_result(i, fields)
        return out

    monkeypatch.setattr(loop.screening, "_phase_set", lambda oracle: phases)
    monkeypatch.setattr(loop.screening, "_relax", fake_relax)
    monkeypatch.setattr(oracle.labelling, "label_structures", fake_label)
    said: list[str] = []
    inputs = [ScreenInput(id="li2o", structure=_li2o()), ScreenInput(id="bad", structure=None, reason="no cif")]
    rows = screen(inputs, groups={"relax"}, progress=said.append)
    assert set(COLUMNS) >= {"id", "e_above_hull", "hull_phases", "hull_sources", "thin"}
    li2o, bad = rows
    assert "Li2O" in relaxed  # derived from an alkali oxide and relaxed (here: by the stand-in)
    assert li2o["e_above_hull"] == pytest.approx(0.05, abs=1e-6)  # the computed Li2O at -2.05 is the hull
    assert li2o["decomposition"] == "Li2O:1.000" and li2o["thin"] is False
    sources = dict(part.split(":") for part in li2o["hull_sources"].split(";"))
    assert int(sources["computed"]) >= 1 and sum(map(int, sources.values())) == li2o["hull_phases"]
    assert bad["status"] == "failed" and bad["hull_phases"] is None and bad["thin"] is None
    assert any(m.startswith("completing the hulls of 1 chemical systems") for m in said)
    assert any("relaxed" in m for m in said if m.startswith("hull completion:"))
