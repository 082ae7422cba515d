"""Test doubles for the loop: run single stages of a campaign without Prefect.

``StageRunner(store, config)`` builds the campaign's roles once and calls each stage with the right
context, so a test reads like the round it checks::

    run = StageRunner(store, config)
    ids = run.seed()
    run.evaluate(0, ids, seeds=True)
    gen = run.generate(1)
"""

from __future__ import annotations

from typing import Any

from loop.config import LoopConfig
from loop.plan import LoopPlan, build_plan
from loop.roles import GenerateOutput, Progress, RoundContext
from loop.stages.acquire import AcquireOutput, acquire_stage
from loop.stages.bookkeeping import complete_round, record_batch
from loop.stages.evaluate import EvaluateOutput, evaluate_stage
from loop.stages.predict import PredictOutput, predict_stage
from loop.stages.retrain import RetrainOutput, retrain_stage, wants_model
from loop.stages.transport import TransportOutput, transport_stage
from store.candidates import register_structures
from store.documents import BatchEntry, RoundDoc
from store.repository import CandidateStore


class StageRunner:
    """The stages of one campaign (``config``) on ``store``, one call each."""

    def __init__(self, store: CandidateStore, config: LoopConfig) -> None:
        self.store = store
        self.config = config
        self.plan: LoopPlan = build_plan(config)

    def ctx(self, round_index: int) -> RoundContext:
        """The round's context."""
        return self.plan.context(self.store, round_index)

    def register(
        self, round_index: int, items: list[tuple[Any, dict[str, Any]]], limit: int
    ) -> tuple[list[str], list[str]]:
        """:func:`store.candidates.register_structures` for this campaign."""
        return register_structures(
            self.store, campaign=self.config.campaign, round_index=round_index, items=items, limit=limit
        )

    def seed(self) -> list[str]:
        """Round 0's initial candidates."""
        return self.plan.source.seed(self.ctx(0))

    def record_batch(self, round_index: int, ids: list[str]) -> list[BatchEntry]:
        """Record ``ids`` as the round's batch."""
        return record_batch(self.ctx(round_index), ids, self.config.model_dump(mode="json"))

    def generate(self, round_index: int) -> GenerateOutput:
        """The source's new candidates."""
        return self.plan.source.generate(self.ctx(round_index), self.plan.labeler)

    def predict(self, round_index: int) -> PredictOutput:
        """Predictions of the newest model."""
        return predict_stage(self.ctx(round_index), fixed_pool=self.plan.source.fixed_pool)

    def acquire(self, round_index: int, prediction: PredictOutput) -> AcquireOutput:
        """The round's batch."""
        return acquire_stage(
            self.config.acquisition, self.ctx(round_index), prediction, batch_size=self.config.batch_size
        )

    def evaluate(
        self, round_index: int, ids: list[str], *, seeds: bool = False, progress: Progress | None = None
    ) -> EvaluateOutput:
        """Label ``ids``."""
        return evaluate_stage(
            self.plan.labeler,
            self.ctx(round_index),
            ids,
            acquisition=None if seeds else self.config.acquisition.model_dump(),
            seeds=seeds,
            progress=progress,
        )

    def retrain(self, round_index: int) -> RetrainOutput:
        """Train and register the round's model (as the retrain task decides whether to train)."""
        c = self.config
        train = wants_model(c.acquisition.strategy, final_model=c.final_model, round_index=round_index, rounds=c.rounds)
        return retrain_stage(self.config.surrogate, self.ctx(round_index), train=train)

    def finish(self, round_index: int) -> dict[str, Any]:
        """The labeller's end-of-round analysis (e.g. the hull)."""
        return self.plan.labeler.finish_round(self.ctx(round_index))

    def complete(
        self,
        round_index: int,
        *,
        n_generated: int,
        evaluation: EvaluateOutput,
        retrain: RetrainOutput,
        timings: dict[str, float],
    ) -> RoundDoc:
        """Complete the round."""
        return complete_round(
            self.plan.labeler,
            self.ctx(round_index),
            n_generated=n_generated,
            evaluation=evaluation,
            retrain=retrain,
            timings=timings,
            config=self.config.model_dump(mode="json"),
        )

    def transport(self, round_index: int) -> TransportOutput:
        """MD of the best labels (nothing when the plan has no MD)."""
        if self.plan.md is None:
            return TransportOutput(results={}, elapsed_s=0.0)
        return transport_stage(self.plan.md, self.ctx(round_index), potential=self.config.oracle.relax.potential)
