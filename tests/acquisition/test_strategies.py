"""Strategies pick what they should on problems with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from acquisition import AcquisitionConfig, CandidateSetEnsemble, ConstraintSpec, DiversityConfig, select, select_batch
from core.errors import ConfigError

# Three candidates, four members, target minimised (formation energy, eV/atom):
# 0: mean -1.0, no spread; 1: mean -0.8, large spread; 2: mean 0.0, no spread.
MEMBERS = np.array(
    [[-1.0, 0.2, 0.0], [-1.0, -1.8, 0.0], [-1.0, -0.3, 0.0], [-1.0, -1.3, 0.0]],
)


def test_greedy_takes_the_best_mean() -> None:
    sel = select_batch(MEMBERS, 1, AcquisitionConfig(strategy="greedy"))
    assert sel.indices == [0]
    assert select_batch(MEMBERS, 3, AcquisitionConfig(strategy="greedy")).indices == [0, 1, 2]


def test_greedy_maximise() -> None:
    assert select_batch(MEMBERS, 1, AcquisitionConfig(strategy="greedy", maximize=True)).indices == [2]


def test_ucb_exploits_at_small_beta_and_explores_at_large_beta() -> None:
    assert select_batch(MEMBERS, 1, AcquisitionConfig(strategy="ucb", beta=0.0)).indices == [0]
    assert select_batch(MEMBERS, 1, AcquisitionConfig(strategy="ucb", beta=10.0)).indices == [1]


def test_logei_prefers_the_uncertain_candidate_near_the_incumbent() -> None:
    # best label so far -1.0: candidate 0 cannot improve on it, candidate 1 can
    sel = select_batch(MEMBERS, 1, AcquisitionConfig(strategy="logei"), best_f=-1.0)
    assert sel.indices == [1]
    with pytest.raises(ValueError, match="best_f"):
        select_batch(MEMBERS, 1, AcquisitionConfig(strategy="logei"))


def test_batches_are_unique_and_capped_at_the_pool() -> None:
    for strategy in ("ucb", "logei", "greedy", "random"):
        sel = select_batch(MEMBERS, 5, AcquisitionConfig(strategy=strategy), best_f=-1.0)
        assert sorted(sel.indices) == [0, 1, 2], strategy
        assert len(sel.values) == 3


def test_random_is_seeded() -> None:
    members = np.zeros((1, 50))
    a = select_batch(members, 5, AcquisitionConfig(strategy="random", seed=1)).indices
    b = select_batch(members, 5, AcquisitionConfig(strategy="random", seed=1)).indices
    c = select_batch(members, 5, AcquisitionConfig(strategy="random", seed=2)).indices
    assert a == b and a != c


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="NaN"):
        select_batch(np.array([[np.nan, 1.0]]), 1, AcquisitionConfig())
    with pytest.raises(ValueError, match="s x n"):
        select_batch(np.zeros(3), 1, AcquisitionConfig())
    assert select_batch(np.zeros((2, 0)), 3, AcquisitionConfig()).indices == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"strategy": "magic"}, "strategy"),
        ({"beta": -1}, "beta"),
        ({"num_samples": 0}, "num_samples"),
        ({"betta": 1.0}, "betta"),
    ],
)
def test_invalid_configs_are_rejected(data: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        AcquisitionConfig(**data)


def test_candidate_set_model_shapes() -> None:
    members = torch.arange(12, dtype=torch.double).reshape(3, 4)  # s=3, n=4
    model = CandidateSetEnsemble(members)
    X = torch.tensor([[[1.0], [3.0]]])  # batch 1, q 2
    out = model(X)
    assert out.shape == (1, 3, 2, 1)
    assert out[0, :, :, 0].tolist() == [[1.0, 3.0], [5.0, 7.0], [9.0, 11.0]]
    post = model.posterior(X)
    assert torch.allclose(post.mean[0, :, 0], torch.tensor([5.0, 7.0], dtype=torch.double))


# ------------------------------------------------------------------------------------ select(): m outcomes
def _members(mean: np.ndarray, std: np.ndarray, k: int = 6) -> np.ndarray:
    """``k x n x m`` members with exactly this mean and population std per candidate and outcome."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    z = np.linspace(-1.0, 1.0, k)
    z = (z - z.mean()) / z.std()
    return mean[None] + std[None] * z.reshape(k, *([1] * mean.ndim))


def test_select_greedy_on_the_named_outcome() -> None:
    # outcome a favours candidate 0, outcome b favours candidate 2
    members = _members(np.array([[3.0, 0.0], [2.0, 1.0], [1.0, 5.0]]), np.zeros((3, 2)))
    cfg = AcquisitionConfig(strategy="greedy", objectives=[{"name": "b"}])
    sel = select(members, 2, cfg, outcome_names=["a", "b"])
    assert sel.indices == [2, 1] and sel.values == pytest.approx([5.0, 1.0])
    cfg = AcquisitionConfig(strategy="greedy", objectives=[{"name": "b", "direction": "min"}])
    assert select(members, 1, cfg, outcome_names=["a", "b"]).indices == [0]


def test_window_objective_pulls_into_the_window() -> None:
    # band gap near 2-4 eV: 3.0 and 2.1 are inside (objective 0), 4.5 is 0.5 away, 0.5 is 1.5 away
    members = _members(np.array([[0.5], [4.5], [3.0], [2.1]]), np.zeros((4, 1)))
    cfg = AcquisitionConfig(
        strategy="greedy", objectives=[{"name": "band_gap", "direction": "window", "low": 2.0, "high": 4.0}]
    )
    sel = select(members, 4, cfg, outcome_names=["band_gap"])
    assert sel.indices == [2, 3, 1, 0]
    assert sel.values == pytest.approx([0.0, 0.0, -0.5, -1.5])


def test_target_probability_picks_the_candidates_inside_the_targets() -> None:
    # targets: ind_gap >= 1.5 and heat_all <= 0.5; std 0.1 on every outcome
    mean = np.array([[0.5, 0.2], [2.0, 0.3], [1.6, 0.9], [3.0, 0.1], [1.4, 0.2]])
    members = _members(mean, np.full((5, 2), 0.1))
    cfg = AcquisitionConfig(
        strategy="target_probability",
        objectives=[
            {"name": "ind_gap", "direction": "max", "low": 1.5},
            {"name": "heat_all", "direction": "min", "high": 0.5},
        ],
    )
    sel = select(members, 3, cfg, outcome_names=["ind_gap", "heat_all"])
    assert sorted(sel.indices[:2]) == [1, 3]
    assert sel.values[0] == pytest.approx(1.0, abs=1e-4)
    # third: candidate 4, P(gap >= 1.5) = Phi(-1), P(heat <= 0.5) = Phi(3)
    phi = torch.distributions.Normal(0.0, 1.0).cdf
    assert sel.indices[2] == 4
    assert sel.values[2] == pytest.approx(float(phi(torch.tensor(-1.0)) * phi(torch.tensor(3.0))), rel=1e-6)
    # with the ensemble fraction, candidate 4 has no member above 1.5 and candidate 2 none below 0.5
    ens = cfg.model_copy(update={"probability": "ensemble"})
    sel = select(members, 2, ens, outcome_names=["ind_gap", "heat_all"])
    assert sorted(sel.indices) == [1, 3] and sel.values == [1.0, 1.0]


def test_thompson_is_seeded_and_follows_the_draws() -> None:
    rng = np.random.default_rng(0)
    members = rng.normal(size=(8, 40, 1))
    members[:, 7, 0] = 10.0  # best in every draw
    cfg = AcquisitionConfig(strategy="thompson", maximize=True, seed=3)
    a = select(members, 5, cfg, outcome_names=["x"])
    b = select(members, 5, cfg, outcome_names=["x"])
    c = select(members, 5, cfg.model_copy(update={"seed": 4}), outcome_names=["x"])
    assert a == b and a.indices != c.indices
    assert a.indices[0] == 7 and a.values[0] == 10.0
    assert len(set(a.indices)) == 5
    # each later slot is the best remaining candidate under one member (its draw)
    for idx, value in zip(a.indices[1:], a.values[1:], strict=True):
        assert value == members[:, idx, 0][np.isclose(members[:, idx, 0], value)][0]
        k = int(np.flatnonzero(np.isclose(members[:, idx, 0], value))[0])
        chosen_before = a.indices[: a.indices.index(idx)]
        rest = np.delete(members[k, :, 0], chosen_before)
        assert value == rest.max()


OBSERVED_FRONT = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
# pool: 0 dominated, 1 improves the front a lot, 2 duplicates a front point, 3 extends it, 4 dominated
POOL_MEANS = np.array([[0.2, 0.2], [0.9, 0.9], [0.5, 0.5], [1.2, 0.1], [0.1, 0.1]])


def test_qlognehvi_picks_pareto_improving_points() -> None:
    members = _members(POOL_MEANS, np.full((5, 2), 0.02))
    cfg = AcquisitionConfig(strategy="qlognehvi", objectives=[{"name": "a"}, {"name": "b"}], ref_point=[-0.1, -0.1])
    sel = select(members, 2, cfg, outcome_names=["a", "b"], observed=OBSERVED_FRONT)
    assert sel.indices == [1, 3]
    assert sel.values[0] > sel.values[1] > -20
    # minimising both outcomes of the negated problem gives the same picks
    neg = AcquisitionConfig(
        strategy="qlognehvi",
        objectives=[{"name": "a", "direction": "min"}, {"name": "b", "direction": "min"}],
        ref_point=[0.1, 0.1],
    )
    assert select(-members, 2, neg, outcome_names=["a", "b"], observed=-OBSERVED_FRONT).indices == [1, 3]
    # without labels (baseline: the pool) and an inferred reference point the best points still win
    auto = cfg.model_copy(update={"ref_point": None})
    assert select(members, 1, auto, outcome_names=["a", "b"]).indices == [1]


# Constraint test problem: maximise x; candidate 0 has the best x but is unstable (e_above_hull 0.2).
CONSTRAINED = _members(np.array([[5.0, 0.2], [4.0, 0.0], [1.0, 0.01], [0.5, 0.3]]), np.full((4, 2), 0.01))
OBSERVED_X = np.array([[0.0, 0.0]])


@pytest.mark.parametrize("strategy", ["greedy", "ucb", "logei", "thompson", "target_probability"])
def test_a_constraint_excludes_infeasible_candidates(strategy: str) -> None:
    objectives = [{"name": "x", "low": 0.8}]  # target_probability: x >= 0.8
    cfg = AcquisitionConfig(strategy=strategy, objectives=objectives)
    names = ["x", "e_above_hull"]
    if strategy != "target_probability":  # without the constraint the unstable one wins
        assert select(CONSTRAINED, 1, cfg, outcome_names=names, observed=OBSERVED_X).indices == [0]
    cfg = cfg.model_copy(update={"constraints": (ConstraintSpec(name="e_above_hull", op="<", value=0.05),)})
    sel = select(CONSTRAINED, 2, cfg, outcome_names=names, observed=OBSERVED_X)
    assert sel.indices[0] == 1
    assert 0 not in sel.indices


def test_qlognehvi_with_a_constraint() -> None:
    # candidate 3 now dominates everything but is unstable (e_above_hull 1.0 eV/atom)
    means = np.concatenate([POOL_MEANS, np.array([[0.0], [0.0], [0.0], [1.0], [0.0]])], axis=1)
    means[3, :2] = [1.5, 1.5]
    members = _members(means, np.full((5, 3), 0.02))
    cfg = AcquisitionConfig(strategy="qlognehvi", objectives=[{"name": "a"}, {"name": "b"}], ref_point=[-0.1, -0.1])
    names = ["a", "b", "e_above_hull"]
    observed = np.concatenate([OBSERVED_FRONT, np.zeros((3, 1))], axis=1)
    assert select(members, 1, cfg, outcome_names=names, observed=observed).indices == [3]
    stable = cfg.model_copy(update={"constraints": (ConstraintSpec(name="e_above_hull", op="<=", value=0.05),)})
    sel = select(members, 1, stable, outcome_names=names, observed=observed)
    assert sel.indices == [1]


KEYS = ["LiFePO4", "LiFePO4", "LiFePO4", "NaFePO4", "Li2O", "Li2O2"]
DESCENDING = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]]).repeat(3, axis=0)


def test_diversity_caps_copies_of_a_formula() -> None:
    cfg = AcquisitionConfig(strategy="greedy", maximize=True)
    assert select(DESCENDING, 4, cfg, outcome_names=["x"], keys=KEYS).indices == [0, 1, 2, 3]
    capped = cfg.model_copy(update={"diversity": DiversityConfig(max_per_key=1)})
    assert select(DESCENDING, 4, capped, outcome_names=["x"], keys=KEYS).indices == [0, 3, 4, 5]
    two = cfg.model_copy(update={"diversity": DiversityConfig(max_per_key=2)})
    assert select(DESCENDING, 4, two, outcome_names=["x"], keys=KEYS).indices == [0, 1, 3, 4]
    chemsys = cfg.model_copy(update={"diversity": DiversityConfig(max_per_key=1, group_by="chemsys")})
    sel = select(DESCENDING, 6, chemsys, outcome_names=["x"], keys=KEYS)
    assert sel.indices == [0, 3, 4]  # Li2O2 shares Li-O with Li2O; the batch is shortened, and says so
    assert sel.notes == ("diversity rules left 3 of 6 slots fillable",)
    # LiFePO4 vs NaFePO4: half the L1 distance of atomic fractions is 1/7 < 0.2; Li2O vs Li2O2 is 1/6
    spread = cfg.model_copy(update={"diversity": DiversityConfig(min_composition_distance=0.2)})
    assert select(DESCENDING, 6, spread, outcome_names=["x"], keys=KEYS).indices == [0, 4]
    # the acquisition-function path honours the cap too
    ucb = AcquisitionConfig(strategy="ucb", maximize=True, diversity=DiversityConfig(max_per_key=1))
    assert select(DESCENDING, 3, ucb, outcome_names=["x"], keys=KEYS).indices == [0, 3, 4]
    with pytest.raises(ValueError, match="one key"):
        select(DESCENDING, 3, ucb, outcome_names=["x"])


def test_select_batch_without_keys_skips_diversity_and_says_so() -> None:
    cfg = AcquisitionConfig(strategy="greedy", maximize=True, diversity=DiversityConfig(max_per_key=1))
    sel = select_batch(DESCENDING, 2, cfg)
    assert sel.indices == [0, 1] and sel.notes == ("diversity rules skipped: no candidate keys given",)
    assert select_batch(DESCENDING, 2, cfg, keys=KEYS).indices == [0, 3]


def test_logei_without_labels_falls_back_to_ucb_in_select() -> None:
    sel = select(MEMBERS, 1, AcquisitionConfig(strategy="logei", beta=10.0), outcome_names=["e"])
    assert sel.strategy == "ucb" and sel.indices == [1] and sel.notes == ("logei without labels: ucb used",)


def test_ucb_value_is_the_exact_ensemble_expectation() -> None:
    # MemberSampler enumerates the members once: qUCB(q=1) = mean + sqrt(beta * pi / 2) * mean |y - mean|
    col = MEMBERS[:, 1]
    sel = select(MEMBERS, 1, AcquisitionConfig(strategy="ucb", beta=4.0, maximize=True), outcome_names=["e"])
    expected = col.mean() + np.sqrt(4.0 * np.pi / 2) * np.abs(col - col.mean()).mean()
    assert sel.indices == [1] and sel.values[0] == pytest.approx(expected, rel=1e-12)


def test_select_rejects_bad_inputs() -> None:
    cfg = AcquisitionConfig(constraints=[{"name": "band_gap", "op": ">=", "value": 3.0}])
    with pytest.raises(ConfigError, match=r"acquisition.constraints.0.name: unknown outcome 'band_gap'"):
        select(MEMBERS, 1, cfg, outcome_names=["e_form"])
    with pytest.raises(ValueError, match="m=2 outcomes"):
        select(MEMBERS, 1, AcquisitionConfig(), outcome_names=["a", "b"])
    with pytest.raises(ValueError, match=r"observed must be n_obs x m with m=2 outcomes, got shape \(4,\)"):
        select(MEMBERS[..., None].repeat(2, -1), 1, AcquisitionConfig(), outcome_names=["a", "b"], observed=np.zeros(4))
    with pytest.raises(ValueError, match="needs features"):
        select(None, 1, AcquisitionConfig(posterior={"kind": "gp"}), outcome_names=["a"])
