"""``acquisition.posterior`` in real campaigns: ``recalibrate`` fits the spread scale on held-out predictions of
earlier rounds, and ``kind: gp`` runs (replay labeler on a 60-structure perov_5 pool, a small GNN ensemble)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

from acquisition import select
from loop.config import LoopConfig
from loop.registry import PROPERTIES
from loop.stages.acquire import MIN_CALIBRATION_PAIRS, AcquireOutput
from loop.stages.bookkeeping import begin_round
from loop.testing import StageRunner, ToyFractionProperty, register_toy_property, unregister_toy_property
from store import open_store
from store.connection import close_all
from store.documents import EvaluationDoc
from store.repository import CandidateStore

pytestmark = pytest.mark.slow

BATCH = 8


class ToyShiftProperty(ToyFractionProperty):
    """A derived property double: each ``heat_all`` member plus the Li fraction (a shift, like ``e_above_hull``)."""

    name: ClassVar[str] = "toy_shift"
    unit: ClassVar[str] = "eV/atom"
    needs: ClassVar[tuple[str, ...]] = ("heat_all",)

    def samples(self, ctx: Any, inputs: Any) -> np.ndarray:
        shift = np.array([self._fraction(c) for c in inputs.compositions])
        return np.asarray(inputs.learned["heat_all"]) + shift[None, :]

    def observed(self, ctx: Any, evaluations: list[EvaluationDoc]) -> np.ndarray:
        return np.array([e.labels["heat_all"] + self._fraction(e.formula) for e in evaluations], dtype=float)


@pytest.fixture
def store() -> Iterator[CandidateStore]:
    register_toy_property()
    PROPERTIES.register(ToyShiftProperty.name)(ToyShiftProperty)
    yield open_store("mongomock://posterior", "battery_discovery")
    close_all()
    PROPERTIES.remove(ToyShiftProperty.name)
    unregister_toy_property()


def _config(campaign: str, pool: str, acquisition: dict[str, Any], **extra: Any) -> LoopConfig:
    return LoopConfig.model_validate(
        {
            "campaign": campaign,
            "source": "pool",
            "labeler": "replay",
            "batch_size": BATCH,
            "store_uri": "mongomock://posterior",
            "replay": {"pool": pool, "target": "heat_all <= 0.5", "initial": 20, "seed": 3},
            # 2 members after 3 epochs on 20-36 labels: far too sure of themselves
            "surrogate": {"n_members": 2, "epochs": 3, "hidden_size": "small"},
            "acquisition": {"objectives": [{"name": "heat_all", "direction": "min"}], **acquisition},
            **extra,
        }
    )


def _campaign(run: StageRunner, rounds: int) -> list[tuple[Any, AcquireOutput]]:
    """Round 0 (the initial draw) and ``rounds`` acquisition rounds; the prediction and batch of each."""
    ids = run.seed()
    run.record_batch(0, ids)
    ev = run.evaluate(0, ids, seeds=True)
    run.complete(0, n_generated=0, evaluation=ev, retrain=run.retrain(0), timings={})
    out = []
    for r in range(1, rounds + 1):
        begin_round(run.ctx(r), run.config.model_dump(mode="json"))
        prediction = run.predict(r)
        acquired = run.acquire(r, prediction)
        ev = run.evaluate(r, [e.candidate_id for e in acquired.entries])
        run.complete(r, n_generated=0, evaluation=ev, retrain=run.retrain(r), timings={})
        out.append((prediction, acquired))
    return out


def test_recalibrate_fits_the_spread_scale_on_earlier_rounds_held_out_predictions(
    pool: str, store: CandidateStore
) -> None:
    cfg = _config(
        "recal", pool, {"strategy": "ucb", "posterior": {"recalibrate": True}}, properties=["toy_shift", "toy_fraction"]
    )
    run = StageRunner(store, cfg)
    (_, first), (prediction, second) = _campaign(run, 2)

    # round 1: no round has a prediction and a label yet, so posterior.spread_scale (1) is used and said so
    assert first.calibration_pairs == {"heat_all": 0}
    assert first.spread_scale == {"heat_all": 1.0, "toy_shift": 1.0, "toy_fraction": 1.0}
    assert store.get_round("recal", 1).acquisition_notes[0] == (
        f"spread scale heat_all 1: posterior.spread_scale, 0 held-out pairs (fewer than {MIN_CALIBRATION_PAIRS})"
    )

    # round 2: fitted on round 1's batch, predicted by the round-0 model before the labels existed
    truth = store.candidate_labels("recal", "dataset")  # the pool's known labels, by candidate id
    batch = store.get_round("recal", 1).acquired
    z = np.array([(truth[e.candidate_id]["heat_all"] - e.means["heat_all"]) / e.stds["heat_all"] for e in batch])
    expected = float(np.sqrt(np.mean(z**2)))
    assert second.calibration_pairs == {"heat_all": BATCH} and BATCH >= MIN_CALIBRATION_PAIRS
    scale = second.spread_scale["heat_all"]
    assert scale == pytest.approx(expected, rel=1e-9)
    assert scale > 2.0  # the data say the ensemble is over-confident: its spread is widened
    # a derived property takes its target's factor; an exact one keeps posterior.spread_scale
    assert second.spread_scale["toy_shift"] == scale and second.spread_scale["toy_fraction"] == 1.0
    notes = store.get_round("recal", 2).acquisition_notes
    recorded = re.fullmatch(r"spread scale heat_all ([0-9.]+) fitted on 8 held-out pairs \(round 1\)", notes[0])
    assert recorded is not None and float(recorded.group(1)) == pytest.approx(scale, abs=1e-4)
    assert notes[1] == f"spread scale toy_shift {scale:.4f} (that of heat_all)"

    # the batch is the one the widened spread picks, not the unscaled ensemble's
    members = np.asarray(prediction.members)
    pool_ids = store.candidate_briefs(prediction.pool_ids)
    picked = [e.candidate_id for e in second.entries]
    plain = cfg.acquisition.model_copy(
        update={"posterior": cfg.acquisition.posterior.model_copy(update={"recalibrate": False})}
    )
    args = {"outcome_names": prediction.outcomes, "observed": np.asarray(prediction.observed)}
    scaled = select(members, BATCH, plain, spread_scale=[scale, scale, 1.0], **args)
    assert picked == [pool_ids[i]["_id"] for i in scaled.indices]
    assert picked != [pool_ids[i]["_id"] for i in select(members, BATCH, plain, **args).indices]
    # the batch records the ensemble's own (unscaled) spread: the data later rounds fit on
    chosen = {e.candidate_id: e for e in second.entries}
    i = scaled.indices[0]
    assert chosen[pool_ids[i]["_id"]].stds["heat_all"] == pytest.approx(float(members[:, i, 0].std()))


def test_gp_posterior_campaign_runs_two_rounds(pool: str, store: CandidateStore) -> None:
    cfg = _config("gp", pool, {"strategy": "logei", "posterior": {"kind": "gp"}}, properties=["toy_shift"])
    run = StageRunner(store, cfg)
    rounds = _campaign(run, 2)

    labelled: set[str] = set(store.candidate_ids("gp", "dataset")) - set(store.pending_ids("gp"))
    assert len(labelled) == 20 + 2 * BATCH
    for r, (_, acquired) in enumerate(rounds, start=1):
        doc = store.get_round("gp", r)
        assert doc.status == "completed" and acquired.strategy == "logei" and acquired.spread_scale == {}
        ids = [e.candidate_id for e in acquired.entries]
        assert len(set(ids)) == BATCH and all(np.isfinite(e.acquisition_value) for e in acquired.entries)
        n_labels = 20 + (r - 1) * BATCH
        assert re.fullmatch(rf"posterior gp on {n_labels} labels x \d+ features", doc.acquisition_notes[0])
    # every label of a round was new: the GP never re-picks a labelled structure
    first, second = ({e.candidate_id for e in a.entries} for _, a in rounds)
    assert not first & second
