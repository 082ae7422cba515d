"""Electrochemistry in the loop: the electrode stage on a real cathode, windows and capacities as outcomes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Structure

from loop.config import LoopConfig
from loop.properties.electrochem import CapacityProperty, WindowHighProperty, WindowLowProperty, theoretical_capacity
from loop.stages.electrode import electrode_stage
from loop.testing import StageRunner
from oracle.config import OracleConfig
from store import open_store
from store.connection import close_all


def test_theoretical_capacity_from_the_redox_of_the_other_cations() -> None:
    assert theoretical_capacity("LiFePO4") == pytest.approx(169.9, abs=0.2)  # the textbook 170 mAh/g
    assert theoretical_capacity("LiCoO2") == pytest.approx(273.8, abs=0.3)
    assert theoretical_capacity("Li2O") == 0.0  # no redox-active cation
    assert theoretical_capacity("MgO") == 0.0  # no working ion


def test_windows_and_capacity_are_exact_outcomes_with_a_worst_case_fill(shared_data: Path) -> None:
    oracle = OracleConfig()
    low, high, cap = (
        WindowLowProperty(oracle=oracle),
        WindowHighProperty(oracle=oracle),
        CapacityProperty(oracle=oracle),
    )
    # Li3PO4: Zhu, He & Mo 2015 give 0.69-4.21 V; the offline phases reproduce the oxidation limit
    assert 0.0 <= low.value("Li3PO4") < high.value("Li3PO4")
    assert high.value("Li3PO4") == pytest.approx(4.21, abs=0.3)
    assert low.value("MgO") == WindowLowProperty.worst and high.value("MgO") == WindowHighProperty.worst
    assert cap.value("LiFePO4") == pytest.approx(169.9, abs=0.2) and cap.value("MgO") == 0.0


def _lmo(shared_data: Path, folder: Path) -> str:
    df = pd.read_csv(shared_data / "mp_20_biternary" / "val.csv.gz")
    row = df[df.material_id == "mp-22584"].iloc[0]  # spinel LiMn2O4 (Fd-3m)
    path = folder / f"{row.material_id}.cif"
    Structure.from_str(row.cif, fmt="cif").to(filename=str(path))
    return str(path)


@pytest.mark.slow
def test_electrode_stage_on_spinel_limn2o4(shared_data: Path, tmp_path: Path) -> None:
    """LiMn2O4 (spinel, 14 atoms) against its CHGNet-relaxed Mn2O4: a voltage near experiment (4.0-4.1 V), the
    theoretical capacity, a small shrinkage; Li2O gets a stored failure with its reason, not a retry."""
    config = LoopConfig(
        campaign="lmo",
        rounds=0,
        seeds=(_lmo(shared_data, tmp_path), "pymatgen:Li2O"),
        properties=("e_above_hull",),
        oracle={"relax_seeds": True, "electrode": {"top_k": 2}},
        store_uri="mongomock://lmo",
    )
    store = open_store(config.store_uri, config.database)
    try:
        run = StageRunner(store, config)
        ids = run.seed()
        run.record_batch(0, ids)
        run.evaluate(0, ids, seeds=True)
        run.finish(0)
        out = run.electrode(0)
        assert len(out.results) == 1  # top_k counts only compounds whose cations can be oxidised
        by_formula = {e.formula: e for e in store.labelled("lmo", config.oracle.key())}
        lmo = by_formula["LiMn2O4"].electrode
        assert lmo["status"] == "ok" and lmo["charged_formula"] == "MnO2"
        assert 3.3 < lmo["average_voltage"] < 4.8, lmo["average_voltage"]
        assert lmo["capacity_mAh_g"] == pytest.approx(148.2, abs=0.5)
        assert lmo["energy_density_Wh_kg"] == pytest.approx(lmo["average_voltage"] * lmo["capacity_mAh_g"], rel=1e-6)
        assert -0.2 < lmo["volume_change"] < 0.0
        assert by_formula["Li2O"].electrode is None
        assert run.electrode(0).results == {}  # stored, not recomputed
        # when voltage is learned every Li/Na label is tried: Li2O gets a stored failure with its reason
        learned = electrode_stage(config.oracle, run.ctx(0), learn=True, last_round=True)
        assert list(learned.results.values()) == [None]
        li2o = store.get_evaluations([by_formula["Li2O"].candidate_id], config.oracle.key())
        li2o_electrode = next(iter(li2o.values())).electrode
        assert li2o_electrode["status"] == "failed" and "redox" in li2o_electrode["reason"]
        window = by_formula["LiMn2O4"].window
        assert window["status"] == "ok" and window["low_V"] <= window["high_V"]
    finally:
        close_all()
