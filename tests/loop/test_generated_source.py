"""The generated source mixes generators by quota and records per-generator counts in the round document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from acquisition.config import ObjectiveSpec
from generation import GenerateConfig, quota_counts
from generation.testing import RECORDER, register_condition_recorder, unregister_condition_recorder
from loop.config import LoopConfig
from loop.reports import generation_markdown
from loop.stages.bookkeeping import begin_round
from loop.testing import StageRunner, store_documents
from oracle.testing import register_toy_potential, unregister_toy_potential
from store import open_store
from store.connection import close_all


def test_quota_counts_split_a_round_by_largest_remainders() -> None:
    cfg = GenerateConfig(
        generators=("substitution", "learned", "pyxtal"), quotas={"substitution": 2, "learned": 1, "pyxtal": 1}
    )
    assert quota_counts(cfg, 10) == {"substitution": 5, "learned": 3, "pyxtal": 2} or quota_counts(cfg, 10) == {
        "substitution": 5, "learned": 2, "pyxtal": 3,
    }  # fmt: skip
    assert sum(quota_counts(cfg, 7).values()) == 7
    assert quota_counts(GenerateConfig(generators=("substitution", "pyxtal")), 4) == {"substitution": 2, "pyxtal": 2}


def test_quotas_naming_an_unlisted_generator_are_refused() -> None:
    with pytest.raises(ValueError, match="quotas name generators not in"):
        GenerateConfig(generators=("substitution",), quotas={"pyxtal": 1.0})


@pytest.fixture
def config() -> Iterator[LoopConfig]:
    register_toy_potential()
    yield LoopConfig(
        campaign="mix",
        rounds=1,
        batch_size=2,
        candidates_per_round=6,
        seeds=("pymatgen:Li2O", "pymatgen:LiFePO4"),
        generate={"generators": ["substitution", "pyxtal"], "quotas": {"substitution": 0.5, "pyxtal": 0.5}},
        oracle={
            "relax": {"potential": "toy", "fmax": 0.1, "max_steps": 30},
            "refine": {"potential": None},
            "reference_source": "auto",
        },
        properties=(),
        store_uri="mongomock://mix",
    )
    unregister_toy_potential()
    close_all()


def test_a_round_mixes_generators_by_quota_and_records_their_counts(config: LoopConfig) -> None:
    store = open_store(config.store_uri, config.database)
    runner = StageRunner(store, config)
    runner.seed()
    begin_round(runner.ctx(1), config.model_dump(mode="json"))
    out = runner.generate(1)
    assert len(out.new_ids) == 6
    docs = store.get_candidates(out.new_ids)
    by_generator = {d.generator for d in docs}
    assert by_generator == {"substitution", "pyxtal"}
    assert sum(d.generator == "pyxtal" for d in docs) == 3
    pyxtal_doc = next(d for d in docs if d.generator == "pyxtal")
    assert pyxtal_doc.source == "pyxtal" and "space_group" in pyxtal_doc.parameters
    assert pyxtal_doc.generator_version.startswith("pyxtal-")
    # each new candidate is checked known or novel on registration (the seeds are known as themselves)
    assert all(d.novelty is not None and d.novelty.checked_against == "seeds, mp_20, mp_20_test, mpts_52" for d in docs)
    assert {s.novelty.match for s in store.find_seeds("mix")} == {"seed:pymatgen:Li2O", "seed:pymatgen:LiFePO4"}  # type: ignore[union-attr]
    stats = store.get_round("mix", 1).generation
    assert set(stats) == {"substitution", "pyxtal"}
    for s in stats.values():
        assert s["quota"] == 3 and s["new"] == 3 and s["passed"] >= 3 and s["generated"] >= s["passed"]
    table = generation_markdown(stats)
    assert "| pyxtal | 3 |" in table and "| substitution | 3 |" in table
    generated = store_documents(store)
    assert runner.generate(1).new_ids == []  # a re-run of the round adds nothing past the cap
    assert store_documents(store) == generated  # and keeps the round's counts


@pytest.mark.parametrize(
    ("acquisition", "condition"),
    [
        ({}, None),
        ({"objectives": [{"name": "e_above_hull", "direction": "min"}]}, None),
        ({"objectives": [{"name": "band_gap", "direction": "max", "low": 2.0}]}, "band_gap >= 2"),
        ({"objectives": [{"name": "band_gap", "direction": "max"}]}, "band_gap > 0"),
        ({"objectives": [{"name": "band_gap", "direction": "window", "low": 1, "high": 3}]},
         "band_gap >= 1 and band_gap <= 3"),
        ({"objectives": [{"name": "e_above_hull", "direction": "min"}],
          "constraints": [{"name": "band_gap", "op": ">=", "value": 3.5}, {"name": "e_above_hull", "op": "<=",
                                                                              "value": 0.1}]},
         "band_gap >= 3.5"),
    ],
)  # fmt: skip
def test_the_learned_generators_condition_comes_from_the_campaigns_objectives_and_constraints(
    acquisition: dict, condition: str | None
) -> None:
    from acquisition.config import AcquisitionConfig
    from loop.sources.generated import campaign_condition

    assert campaign_condition(AcquisitionConfig(**acquisition), ("band_gap",)) == condition


def test_objectives_no_band_gap_can_meet_are_refused_before_a_round() -> None:
    from core.errors import ConfigError
    from loop.sources.generated import GeneratedSource

    config = LoopConfig(
        generate={"generators": ["substitution", "learned"]},
        acquisition={
            "objectives": [{"name": "band_gap", "direction": "max", "low": 3.0}],
            "constraints": [{"name": "band_gap", "op": "<=", "value": 0.0}],
        },
    )
    with pytest.raises(ConfigError, match="no band gap satisfies"):
        GeneratedSource.from_config(config)
    # without the learned generator nothing is conditioned, and nothing refused
    assert GeneratedSource.from_config(config.model_copy(update={"generate": GenerateConfig()})).condition is None


def test_a_round_passes_the_campaigns_condition_to_a_conditionable_generator_and_records_it(
    config: LoopConfig,
) -> None:
    recorder = register_condition_recorder()
    try:
        config = config.model_copy(
            update={
                "generate": GenerateConfig(generators=("substitution", RECORDER), quotas={RECORDER: 1.0}),
                "acquisition": config.acquisition.model_copy(
                    update={"objectives": (ObjectiveSpec(name="band_gap", direction="max", low=3.0),)}
                ),
            }
        )
        store = open_store(config.store_uri, config.database)
        runner = StageRunner(store, config)
        runner.seed()
        begin_round(runner.ctx(1), config.model_dump(mode="json"))
        out = runner.generate(1)
    finally:
        unregister_condition_recorder()
    assert [r.condition.text for r in recorder.requests] == ["band_gap >= 3"]  # type: ignore[union-attr]
    docs = store.get_candidates(out.new_ids)
    assert {d.formula for d in docs} == {"Na2O", "NaFePO4"}
    assert all(d.generator == RECORDER and d.condition == "band_gap >= 3" for d in docs)
    assert store.get_round("mix", 1).generation_condition == "band_gap >= 3"


def test_the_parent_pool_is_a_parent_every_round_and_never_a_candidate(tmp_path: Path) -> None:
    from pymatgen.core import Structure

    from core.errors import SeedError
    from generation.seeds import bundled_structures_dir
    from loop.sources.generated import GeneratedSource

    pool = tmp_path / "pool"
    pool.mkdir()
    lifepo4 = Structure.from_file(bundled_structures_dir() / "LiFePO4.json")
    (pool / "olivine.json").write_text(lifepo4.to_json())
    register_toy_potential()
    try:
        config = LoopConfig(
            campaign="pool",
            rounds=1,
            batch_size=2,
            candidates_per_round=40,
            seeds=("pymatgen:Li2O",),
            generate={"generators": ["substitution"], "parent_pool": [str(pool)], "parents_per_round": 0},
            oracle={"relax": {"potential": "toy"}, "refine": {"potential": None}, "reference_source": "auto"},
            properties=(),
            store_uri="mongomock://pool",
        )
        store = open_store(config.store_uri, config.database)
        runner = StageRunner(store, config)
        assert runner.seed() and [s.parent for s in store.find_seeds("pool")] == ["pymatgen:Li2O"]
        begin_round(runner.ctx(1), config.model_dump(mode="json"))
        docs = store.get_candidates(runner.generate(1).new_ids)
        from_pool = [d for d in docs if d.parent == str(pool / "olivine.json")]
        assert from_pool  # the pool's olivine has children, and is none of them:
        assert all(Structure.from_dict(d.structure).composition.reduced_formula != "LiFePO4" for d in docs)
        assert {d.parent for d in docs} == {"pymatgen:Li2O", str(pool / "olivine.json")}
        # a pool that cannot be read is refused before a round, like a seed
        bad = config.model_copy(
            update={"generate": config.generate.model_copy(update={"parent_pool": (str(tmp_path / "missing"),)})}
        )
        with pytest.raises(SeedError, match="missing"):
            GeneratedSource.from_config(bad).check()
    finally:
        unregister_toy_potential()
        close_all()
