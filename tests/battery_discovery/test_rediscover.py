"""The rediscovery benchmark: split specs, matching, per-round metrics, and a real 2-round campaign (toy oracle)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from battery_discovery.rediscover import (
    CandidateRow,
    FutureIndex,
    Phase,
    RediscoverConfig,
    campaign_metrics,
    drop_matching,
    parse_filtered_spec,
    results_document,
    sample_seeds,
)
from battery_discovery.rediscover_cli import _split_specs


def rocksalt(a: str, b: str, lattice: float = 5.5) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cscl(a: str, b: str) -> Structure:
    return Structure(Lattice.cubic(3.4), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_specs_and_filters_parse() -> None:
    assert parse_filtered_spec("mpts52:val[year <= 2002]") == ("mpts52:val", "year <= 2002")
    assert parse_filtered_spec("mp20:val") == ("mp20:val", "")
    assert _split_specs("mp20:val, mpts52:val[year >= 1990 and year <= 2002],csv:x.csv") == (
        "mp20:val",
        "mpts52:val[year >= 1990 and year <= 2002]",
        "csv:x.csv",
    )
    with pytest.raises(ValueError, match="unknown element"):
        RediscoverConfig(known=("mp20:val",), future="mp20:val", elements=("Xx",))


def test_matching_needs_the_structure_not_only_the_formula() -> None:
    future = FutureIndex([Phase(id="f-nabr", formula="NaBr", structure=rocksalt("Na", "Br", 6.0))])
    assert future.match(rocksalt("Na", "Br", 5.0)) == "f-nabr"  # another volume: the same material
    assert future.match(cscl("Na", "Br")) is None  # same formula, other structure
    assert future.match(rocksalt("Li", "Br")) is None
    known = [
        Phase(id="k1", formula="NaBr", structure=rocksalt("Na", "Br")),
        Phase(id="k2", formula="NaBr", structure=cscl("Na", "Br")),
    ]
    kept, dropped = drop_matching(known, future)
    assert [p.id for p in kept] == ["k2"] and dropped == ["k1"]


def test_seed_samples_are_reproducible_and_hold_the_elements() -> None:
    known = [Phase(id=f"k{i}", formula=f, structure=None) for i, f in enumerate(["LiBr", "NaCl", "KBr", "LiI", "NaI"])]
    a, b = sample_seeds(known, ("Li", "Na"), 2, 0), sample_seeds(known, ("Li", "Na"), 2, 0)
    assert [p.id for p in a] == [p.id for p in b] and all(p.formula != "KBr" for p in a) and len(a) == 2
    assert {p.id for p in sample_seeds(known, ("Li",), 10, 0)} == {"k0", "k3"}


def test_a_future_phase_counts_once_however_many_candidates_match_it() -> None:
    future = FutureIndex(
        [
            Phase(id="f-nabr", formula="NaBr", structure=rocksalt("Na", "Br")),
            Phase(id="f-licl", formula="LiCl", structure=rocksalt("Li", "Cl")),
        ]
    )
    rows = [
        CandidateRow(id="s", round=0, seed=True, structure=rocksalt("Li", "Cl"), evaluated_round=0, e_above_hull=0.0),
        CandidateRow(
            id="a", round=1, seed=False, structure=rocksalt("Na", "Br", 5.9), evaluated_round=1, e_above_hull=0.2
        ),
        CandidateRow(
            id="b", round=1, seed=False, structure=rocksalt("Na", "Br", 6.1), evaluated_round=2, e_above_hull=0.01
        ),
        CandidateRow(id="c", round=2, seed=False, structure=cscl("Na", "Br"), evaluated_round=2, e_above_hull=-0.1),
        CandidateRow(id="d", round=2, seed=False, structure=rocksalt("Li", "Cl", 5.0)),  # generated, never evaluated
    ]
    m = campaign_metrics(rows, future, 2, stable=0.05)
    assert [x.oracle_calls for x in m] == [1, 2, 4]
    assert [x.generated_matches for x in m] == [0, 1, 2]  # the seed's own match never counts
    assert [x.rediscovered for x in m] == [0, 1, 1]  # 'b' matches the phase 'a' already found
    assert [x.rediscovered_stable for x in m] == [0, 0, 1]  # found stable in round 2
    assert m[1].hit_rate == 0.0 and m[2].hit_rate == 0.5 and m[2].hit_rate_01 == 1.0
    assert m[2].rediscovered_ids == ["f-nabr"]

    config = RediscoverConfig(known=("k",), future="f", rounds=2, seeds=2, strategies=("ucb", "random"))
    other = campaign_metrics(rows[:2], future, 2)
    doc = results_document(
        config,
        {("ucb", 0): m, ("ucb", 1): m, ("random", 0): other, ("random", 1): other},
        n_future=2,
        n_known=5,
        n_dropped=0,
        wall={"ucb": 1.0, "random": 2.0},
    )
    ucb = doc["strategies"]["ucb"]
    assert doc["n_future"] == 2 and ucb["rediscovered"] == [0, 1, 1] and ucb["oracle_calls"] == [1, 2, 4]
    assert ucb["per_100_calls"] == 25.0 and ucb["vs_random"] == 1.0 and ucb["per_seed"]["rediscovered"][1] == [0, 1, 1]
    assert set(ucb) >= {"oracle_calls", "generated_matches", "rediscovered", "rediscovered_stable", "hit_rate"}


def _mp20_file(path: Path, rows: list[tuple[str, Structure, float]]) -> Path:
    records = [
        {
            "material_id": mid,
            "formation_energy_per_atom": e_form,
            "band_gap": 0.0,
            "pretty_formula": s.composition.reduced_formula,
            "e_above_hull": 0.0,
            "elements": str([el.symbol for el in s.composition.elements]),
            "cif": str(CifWriter(s)),
            "spacegroup.number": s.get_space_group_info()[1],
        }
        for mid, s, e_form in rows
    ]
    pd.DataFrame(records).to_csv(path, index=False)
    return path


@pytest.fixture
def toy() -> Iterator[None]:
    from oracle.testing import register_toy_potential, unregister_toy_potential

    register_toy_potential()
    yield
    unregister_toy_potential()


@pytest.mark.slow
def test_a_two_round_campaign_rediscovers_a_planted_phase_once(
    tmp_path: Path, toy: None, prefect_harness: None, cli
) -> None:
    """Known: LiBr and NaCl (rock salt). Future: NaBr rock salt (reachable: Li->Na or Cl->Br) and NaBr CsCl-type
    (same formula, not reachable). Every generated candidate is evaluated (batch = candidates per round)."""
    known = _mp20_file(
        tmp_path / "known.csv", [("k-libr", rocksalt("Li", "Br"), -1.8), ("k-nacl", rocksalt("Na", "Cl"), -2.1)]
    )
    future = _mp20_file(
        tmp_path / "future.csv", [("f-nabr", rocksalt("Na", "Br", 6.0), -1.8), ("f-nabr-b2", cscl("Na", "Br"), -1.5)]
    )
    loop = tmp_path / "loop.yaml"
    loop.write_text(
        "properties: []\n"
        "oracle: {relax: {potential: toy, fmax: 0.1, max_steps: 30}, refine: {potential: null},\n"
        "         reference_source: auto}\n"
    )
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    # the embedded store (the default): it does not project dotted paths as mongomock does
    code = cli(
        "rediscover", "--known", f"mp20:{known}", "--future", f"mp20:{future}", "--rounds", "2", "--batch-size", "30",
        "--candidates-per-round", "30", "--strategies", "random", "--seeds", "1", "--workers", "1",
        "--config", str(loop), "--out", str(out), "--plot", str(png), "--store-uri", "embedded",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["n_future"] == 2 and doc["n_known"] == 2 and doc["n_known_dropped"] == 0
    random = doc["strategies"]["random"]
    assert random["rediscovered"] == [0, 1, 1]  # found in round 1, counted once after round 2
    assert random["generated_matches"] == [0, 1, 1] and random["rediscovered_ids"] == [["f-nabr"]]
    assert random["oracle_calls"][0] == 2 and random["oracle_calls"][2] >= random["oracle_calls"][1] > 2
    assert png.stat().st_size > 10_000


def test_parent_pool_makes_the_known_li_na_phases_unlabelled_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from battery_discovery.rediscover_run import loop_parameters, prepare_split
    from generation import load_seeds

    monkeypatch.setenv("BATTERY_DISCOVERY_HOME", str(tmp_path / "home"))
    big = rocksalt("Li", "Cl").make_supercell([2, 2, 2], in_place=False)  # 64 sites: past generate.max_sites
    known = _mp20_file(
        tmp_path / "known.csv",
        [("k-libr", rocksalt("Li", "Br"), -1.8), ("k-kcl", rocksalt("K", "Cl"), -2.2), ("k-big", big, -2.0)],
    )
    future = _mp20_file(tmp_path / "future.csv", [("f-nabr", rocksalt("Na", "Br", 6.0), -1.8)])
    config = RediscoverConfig(known=(f"mp20:{known}",), future=f"mp20:{future}", n_seeds=1, seeds=1, parent_pool=True)
    split = prepare_split(config, say=lambda _: None)
    assert split.parent_dir is not None
    assert sorted(p.name for p in split.parent_dir.iterdir()) == ["k-libr.json"]  # Li/Na only, within max_sites
    params = loop_parameters(config, split, "ucb", 0)
    assert params["generate"]["parent_pool"] == [str(split.parent_dir)]
    assert [s.structure.composition.reduced_formula for s in load_seeds(params["generate"]["parent_pool"])] == ["LiBr"]
    without = loop_parameters(config.model_copy(update={"parent_pool": False}), split, "ucb", 0)
    assert "parent_pool" not in without.get("generate", {})
