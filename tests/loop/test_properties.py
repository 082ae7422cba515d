"""Property providers: which outcomes a campaign scores, the default stability objective, mixed posterior
samples, and multi-objective acquisition over learned targets and properties on mongomock."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from pymatgen.core import Composition

from core.errors import ConfigError
from loop.config import LoopConfig
from loop.plan import build_plan
from loop.properties.base import combine_samples
from loop.testing import StageRunner, register_toy_property, unregister_toy_property
from oracle.testing import register_toy_potential, unregister_toy_potential
from store import open_store
from store.connection import close_all

TOY_ORACLE = {
    "relax": {"potential": "toy", "fmax": 0.1, "max_steps": 30},
    "refine": {"potential": None},
    "reference_source": "auto",
}


@pytest.fixture
def toys() -> Iterator[None]:
    register_toy_potential()
    register_toy_property()
    yield
    unregister_toy_property()
    unregister_toy_potential()
    close_all()


def test_combine_samples_pairs_sources_cyclically() -> None:
    members = np.arange(2 * 3 * 1, dtype=float).reshape(2, 3, 1)  # K=2, n=3, m=1
    exact = np.array([[10.0, 20.0, 30.0]])  # S=1
    four = np.arange(12, dtype=float).reshape(4, 3) + 100  # S=4
    out = combine_samples(members, [exact, four])
    assert out.shape == (4, 3, 3)
    assert np.array_equal(out[:, :, 0], members[[0, 1, 0, 1], :, 0])
    assert np.array_equal(out[:, :, 1], np.repeat(exact, 4, axis=0))
    assert np.array_equal(out[:, :, 2], four)
    with pytest.raises(ValueError, match="expected 3"):
        combine_samples(members, [np.zeros((2, 4))])


def test_stability_is_the_default_objective_on_the_mp_scale() -> None:
    plan = build_plan(LoopConfig(properties=("e_above_hull",), store_uri="mongomock://p"))
    assert plan.outcomes == ("formation_energy_per_atom", "e_above_hull")
    assert [(o.name, o.direction) for o in plan.acquisition.objectives] == [("e_above_hull", "min")]
    # the config's own objectives win
    own = LoopConfig(
        properties=("e_above_hull",),
        acquisition={"objectives": [{"name": "formation_energy_per_atom", "direction": "min"}]},
        store_uri="mongomock://p",
    )
    assert [o.name for o in build_plan(own).acquisition.objectives] == ["formation_energy_per_atom"]


def test_default_properties_are_the_battery_ones_that_apply(toys: None) -> None:
    assert build_plan(LoopConfig(store_uri="mongomock://p")).outcomes == (
        "formation_energy_per_atom",
        "e_above_hull",
        "band_gap",
        "log10_conductivity",
    )
    # a potential off the MP scale has no MP hull: left out of the defaults, an error when asked for
    toy = LoopConfig(oracle=TOY_ORACLE, store_uri="mongomock://p")
    assert "e_above_hull" not in build_plan(toy).outcomes
    with pytest.raises(ConfigError, match="not on the MP energy scale"):
        build_plan(toy.model_copy(update={"properties": ("e_above_hull",)}))
    # replay campaigns score nothing but their pool's labels
    replay = LoopConfig(
        source="pool",
        labeler="replay",
        replay={"pool": "perov5:x.csv", "target": "ind_gap >= 1"},
        store_uri="mongomock://p",
    )
    assert build_plan(replay).properties == ()


def test_outcomes_named_by_acquisition_are_added_and_checked(toys: None) -> None:
    config = LoopConfig(
        properties=(),
        oracle=TOY_ORACLE,
        acquisition={"constraints": [{"name": "toy_fraction", "op": ">=", "value": 0.2}]},
        store_uri="mongomock://p",
    )
    assert build_plan(config).outcomes == ("formation_energy_per_atom", "toy_fraction")
    with pytest.raises(ConfigError, match="unknown property 'nope'"):
        build_plan(config.model_copy(update={"properties": ("nope",)}))
    voltage = LoopConfig(
        properties=(), oracle=TOY_ORACLE, acquisition={"objectives": [{"name": "voltage"}]}, store_uri="mongomock://p"
    )
    with pytest.raises(ConfigError, match="unknown outcome 'voltage'"):
        build_plan(voltage)


@pytest.mark.slow
def test_multi_objective_acquisition_over_targets_and_properties(toys: None) -> None:
    """qLogNEHVI over a learned formation energy and an exact property, with a constraint on the property: every
    pick is feasible, predictions of every outcome are stored on the candidates."""
    config = LoopConfig(
        campaign="mo",
        batch_size=2,
        candidates_per_round=30,
        seeds=("pymatgen:Li2O", "pymatgen:Li2O2"),
        properties=("toy_fraction",),
        oracle=TOY_ORACLE,
        surrogate={"n_members": 2, "epochs": 3},
        acquisition={
            "strategy": "qlognehvi",
            "objectives": [
                {"name": "formation_energy_per_atom", "direction": "min"},
                {"name": "toy_fraction", "direction": "max"},
            ],
            "constraints": [{"name": "toy_fraction", "op": ">=", "value": 0.3}],
        },
        store_uri="mongomock://mo",
    )
    store = open_store(config.store_uri, config.database)
    run = StageRunner(store, config)
    run.prepare_properties()
    ids = run.seed()
    run.record_batch(0, ids)
    run.evaluate(0, ids, seeds=True)
    assert run.retrain(0).model_version == "mo-r0"
    run.generate(1)
    pred = run.predict(1)
    assert pred.outcomes == ("formation_energy_per_atom", "toy_fraction")
    samples = np.asarray(pred.members)
    assert samples.shape == (2, len(pred.pool_ids), 2) and np.isfinite(samples).all()
    assert np.asarray(pred.observed).shape == (2, 2)
    fractions = {c.id: Composition(c.formula).get_atomic_fraction("Li") for c in store.get_candidates(pred.pool_ids)}
    assert np.allclose(samples[0, :, 1], [fractions[i] for i in pred.pool_ids])
    feasible = [i for i in pred.pool_ids if fractions[i] >= 0.3]  # Li2S and Li2Se among Na2O, Na2S, ...
    assert len(feasible) == 2 and len(pred.pool_ids) >= 5  # the constraint bites

    acq = run.acquire(1, pred)
    picked = [e.candidate_id for e in acq.entries]
    assert acq.strategy == "qlognehvi" and set(picked) == set(feasible)
    assert all(set(e.means) == {"formation_energy_per_atom", "toy_fraction"} for e in acq.entries)
    stored = store.get_candidates(pred.pool_ids)
    assert all(set(c.predictions) == {"formation_energy_per_atom", "toy_fraction"} for c in stored)
    assert all(c.predicted_by == "mo-r0" and c.predicted_round == 1 for c in stored)


def test_without_a_model_a_property_objective_gets_a_random_batch(toys: None) -> None:
    """One seed is too few labels to train on: round 1 has no model, yet acquisition over a property (the
    default stability objective in a real run) must still pick, at random, instead of refusing the outcome."""
    config = LoopConfig(
        campaign="nomodel",
        batch_size=1,
        candidates_per_round=5,
        seeds=("pymatgen:Li2O",),
        properties=("toy_fraction",),
        oracle=TOY_ORACLE,
        surrogate={"n_members": 2, "epochs": 3},
        acquisition={"strategy": "ucb", "objectives": [{"name": "toy_fraction", "direction": "max"}]},
        store_uri="mongomock://nomodel",
    )
    store = open_store(config.store_uri, config.database)
    run = StageRunner(store, config)
    run.prepare_properties()
    ids = run.seed()
    run.record_batch(0, ids)
    run.evaluate(0, ids, seeds=True)
    assert run.retrain(0).model_version is None
    run.generate(1)
    pred = run.predict(1)
    assert pred.model_version is None and pred.members == [] and pred.pool_ids
    assert pred.outcomes == ("formation_energy_per_atom", "toy_fraction")
    acq = run.acquire(1, pred)
    assert acq.strategy == "random" and len(acq.entries) == 1
