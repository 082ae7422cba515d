"""The relax labeler against real competing phases: CHGNet relaxations of MP phases that lie on MP's hull land
close to the hull of the MP reference phases, signed, with what each value rests on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Structure

from loop.config import LoopConfig
from loop.testing import StageRunner
from store import open_store
from store.connection import close_all


def _on_hull_li_phases(shared_data: Path, folder: Path, n: int = 3) -> list[str]:
    """CIF files of the first ``n`` small Li/Na compounds (by material id) on MP's hull in the MP-20 file."""
    df = pd.read_csv(shared_data / "mp_20_biternary" / "val.csv.gz")
    df = df[(df.e_above_hull == 0) & df.pretty_formula.str.contains(r"Li|Na")].sort_values("material_id")
    paths = []
    for mid, cif in zip(df.material_id, df.cif, strict=True):
        structure = Structure.from_str(cif, fmt="cif")
        if len(structure) <= 6:
            path = folder / f"{mid}.cif"
            structure.to(filename=str(path))
            paths.append(str(path))
        if len(paths) == n:
            break
    return paths


@pytest.mark.slow
def test_mp_hull_phases_relaxed_by_chgnet_sit_near_the_mp_hull(shared_data: Path, tmp_path: Path) -> None:
    seeds = _on_hull_li_phases(shared_data, tmp_path)
    config = LoopConfig(
        campaign="hull",
        seeds=tuple(seeds),
        properties=("e_above_hull",),
        oracle={"relax_seeds": True, "relax": {"fmax": 0.05}},
        store_uri="mongomock://hull",
    )
    store = open_store(config.store_uri, config.database)
    try:
        run = StageRunner(store, config)
        ids = run.seed()
        run.record_batch(0, ids)
        run.evaluate(0, ids, seeds=True)
        run.finish(0)
        labelled = store.labelled("hull", config.oracle.key())
        assert len(labelled) == len(seeds) == 3
        for e in labelled:
            assert e.energy_above_hull is not None and abs(e.energy_above_hull) < 0.1, (e.formula, e.energy_above_hull)
            assert e.hull["n_phases"] >= 1 and sum(e.hull["sources"].values()) == e.hull["n_phases"]
            assert set(e.hull["sources"]) <= {"mp_20", "mp_20_test", "mpts_52", "computed", "campaign"}
            assert isinstance(e.hull["thin"], bool)
            assert e.decomposition and abs(sum(e.decomposition.values()) - 1) < 1e-4
    finally:
        close_all()
