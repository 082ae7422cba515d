"""Test doubles for the loop: run single stages of a campaign without Prefect.

``StageRunner(store, config)`` builds the campaign's roles once and calls each stage with the right
context, so a test reads like the round it checks::

    run = StageRunner(store, config)
    ids = run.seed()
    run.evaluate(0, ids, seeds=True)
    gen = run.generate(1)

:class:`ToyFractionProperty` is a property provider double (``register_toy_property()``).
``count_trainings()`` records every surrogate training (a re-run that keeps its model trains nothing);
``store_documents(store)`` and ``model_file_hashes(store)`` capture everything a re-run must leave as it was.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

import numpy as np

from loop.config import LoopConfig
from loop.plan import LoopPlan, build_plan
from loop.properties.base import PropertyInputs
from loop.registry import PROPERTIES
from loop.roles import GenerateOutput, Progress, RoundContext
from loop.stages.acquire import AcquireOutput, acquire_stage
from loop.stages.bookkeeping import complete_round, record_batch, resumed_generation, resumed_prediction
from loop.stages.electrode import ElectrodeOutput, electrode_stage
from loop.stages.evaluate import EvaluateOutput, evaluate_stage
from loop.stages.predict import PredictOutput, predict_stage
from loop.stages.retrain import RetrainOutput, retrain_stage, wants_model
from loop.stages.transport import TransportOutput, transport_stage
from store.candidates import register_structures
from store.documents import BatchEntry, EvaluationDoc, RoundDoc
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

    def prepare_properties(self) -> None:
        """Each property provider's set-up (as the prepare-properties task)."""
        for prop in self.plan.properties:
            prop.prepare(self.ctx(0))

    def record_batch(self, round_index: int, ids: list[str]) -> list[BatchEntry]:
        """Record ``ids`` as the round's batch."""
        return record_batch(self.ctx(round_index), ids, self.config.model_dump(mode="json"))

    def generate(self, round_index: int) -> GenerateOutput:
        """The source's new candidates (as the generate task: none when the round's batch is already recorded)."""
        ctx = self.ctx(round_index)
        return resumed_generation(ctx) or self.plan.source.generate(ctx, self.plan.labeler)

    def predict(self, round_index: int) -> PredictOutput:
        """Predictions of the newest model (as the predict task: none when the round's batch is already recorded)."""
        ctx = self.ctx(round_index)
        return resumed_prediction(ctx) or predict_stage(
            ctx, fixed_pool=self.plan.source.fixed_pool, properties=self.plan.properties
        )

    def acquire(self, round_index: int, prediction: PredictOutput) -> AcquireOutput:
        """The round's batch."""
        return acquire_stage(
            self.plan.acquisition, self.ctx(round_index), prediction, batch_size=self.config.batch_size
        )

    def evaluate(
        self, round_index: int, ids: list[str], *, seeds: bool = False, progress: Progress | None = None
    ) -> EvaluateOutput:
        """Label ``ids``."""
        return evaluate_stage(
            self.plan.labeler,
            self.ctx(round_index),
            ids,
            acquisition=None if seeds else self.plan.acquisition.model_dump(),
            seeds=seeds,
            progress=progress,
        )

    def retrain(self, round_index: int) -> RetrainOutput:
        """Train and register the round's model (as the retrain task decides whether to train)."""
        c = self.config
        train = wants_model(c.acquisition.strategy, final_model=c.final_model, round_index=round_index, rounds=c.rounds)
        return retrain_stage(self.config.surrogate, self.ctx(round_index), train=train)

    def finish(self, round_index: int) -> dict[str, Any]:
        """The labeler's end-of-round analysis (e.g. the hull)."""
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
            properties=self.plan.properties,
        )

    def electrode(self, round_index: int) -> ElectrodeOutput:
        """Electrode results of the round (nothing when the plan has no electrode stage)."""
        if self.plan.electrode is None:
            return ElectrodeOutput(results={}, elapsed_s=0.0)
        last = round_index == self.config.rounds
        return electrode_stage(
            self.plan.electrode, self.ctx(round_index), learn=self.plan.learn_electrode, last_round=last
        )

    def transport(self, round_index: int) -> TransportOutput:
        """MD of the best labels (nothing when the plan has no MD)."""
        if self.plan.md is None:
            return TransportOutput(results={}, elapsed_s=0.0)
        return transport_stage(self.plan.md, self.ctx(round_index), potential=self.config.oracle.relax.potential)


class ToyFractionProperty:
    """A property test double: the atomic fraction of one element (exact, one sample), from the composition.

    Register it with :func:`register_toy_property` (name ``toy_fraction``) and list it in ``properties``.
    """

    name: ClassVar[str] = "toy_fraction"
    unit: ClassVar[str] = "atom fraction"
    needs: ClassVar[tuple[str, ...]] = ()
    element: ClassVar[str] = "Li"

    @classmethod
    def applies(cls, config: LoopConfig) -> bool:
        """Any campaign."""
        return True

    @classmethod
    def from_config(cls, config: LoopConfig) -> ToyFractionProperty:
        """No settings."""
        return cls()

    def describe(self) -> dict[str, Any]:
        """What it computes."""
        return {"fraction_of": self.element}

    def version(self, ctx: RoundContext) -> str:
        """Fixed."""
        return "toy-1"

    def prepare(self, ctx: RoundContext, *, on_stage: Any = None) -> None:
        """Nothing to prepare."""

    def _fraction(self, formula: Any) -> float:
        from pymatgen.core import Composition

        return float(Composition(formula).get_atomic_fraction(self.element))

    def samples(self, ctx: RoundContext, inputs: PropertyInputs) -> np.ndarray:
        """``1 x n`` exact fractions."""
        return np.array([[self._fraction(c) for c in inputs.compositions]])

    def observed(self, ctx: RoundContext, evaluations: list[EvaluationDoc]) -> np.ndarray:
        """The fraction of each labelled structure."""
        return np.array([self._fraction(e.formula) for e in evaluations], dtype=float)


def register_toy_property() -> None:
    """Add :class:`ToyFractionProperty` as ``toy_fraction`` to :data:`loop.registry.PROPERTIES`."""
    PROPERTIES.register(ToyFractionProperty.name)(ToyFractionProperty)


def unregister_toy_property() -> None:
    """Remove ``toy_fraction`` again."""
    PROPERTIES.remove(ToyFractionProperty.name)


@contextmanager
def count_trainings() -> Iterator[list[tuple[str, str]]]:
    """Record ``(version, property_name)`` of every surrogate fitted (``GNNEnsemble.fit``,
    ``DescriptorSurrogate.fit``) in any thread of this process until the block ends."""
    from surrogates import GNNEnsemble
    from surrogates.descriptor_surrogate import DescriptorSurrogate

    trained: list[tuple[str, str]] = []
    lock = threading.Lock()

    def counting(real: Any) -> classmethod:
        def fit(cls: type, *args: Any, **kwargs: Any) -> Any:
            with lock:
                trained.append((kwargs.get("version", ""), kwargs.get("property_name", "")))
            return real(cls, *args, **kwargs)

        return classmethod(fit)

    with ExitStack() as stack:
        for family in (GNNEnsemble, DescriptorSurrogate):
            real = family.__dict__["fit"].__func__
            stack.enter_context(mock.patch.object(family, "fit", counting(real)))
        yield trained


#: The collections a round writes.
ROUND_COLLECTIONS = ("candidates", "evaluations", "rounds", "models")


def store_documents(store: CandidateStore) -> dict[str, list[dict[str, Any]]]:
    """Every document of the round's collections, whole (timestamps included), in ``_id`` order."""
    return {name: list(store.db[name].find().sort("_id", 1)) for name in ROUND_COLLECTIONS}


def model_file_hashes(store: CandidateStore) -> dict[str, dict[str, str]]:
    """SHA-256 of every file of every registered model: model id -> path inside its folder -> digest."""
    out: dict[str, dict[str, str]] = {}
    for model in store.list_models():
        root = Path(model.path)
        out[model.id] = {
            str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*"))
            if f.is_file()
        }
    return out
