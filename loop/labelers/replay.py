"""The ``replay`` labeler: reveals the known labels of a pool's candidates (benchmarks).

Replay is just another experiment: the round's stages, acquisition and retraining are the discovery
loop's own; only where the labels come from differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from core.errors import ConfigError
from loop.config import LoopConfig
from loop.labelers.rows import labels_table, target_batch_row
from loop.registry import LABELERS
from loop.roles import Progress, RoundContext
from loop.targets import TargetExpression, parse_target
from store.documents import BatchEntry, CandidateDoc, EvaluationDoc, Provenance, RoundDoc


@LABELERS.register("replay")
@dataclass(frozen=True, kw_only=True)
class ReplayLabeler:
    """Labels = the pool's known values; discoveries = candidates whose labels satisfy ``replay.target``."""

    name: ClassVar[str] = "replay"
    reads: ClassVar[tuple[str, ...]] = ("replay",)

    pool: str
    target: TargetExpression

    @classmethod
    def from_config(cls, config: LoopConfig) -> ReplayLabeler:
        """The labeler of ``config``; ConfigError without ``replay.pool`` and ``replay.target``."""
        if not config.replay.pool or not config.replay.target:
            raise ConfigError(
                "the replay labeler needs replay.pool (a data set spec) and replay.target (an expression)"
            )
        return cls(pool=config.replay.pool, target=parse_target(config.replay.target))

    @property
    def key(self) -> str:
        """Identity of the replayed labels: the pool they come from."""
        return f"replay|{self.pool}"

    @property
    def targets(self) -> tuple[str, ...]:
        """The labels the target expression reads."""
        return self.target.names

    def label(
        self,
        ctx: RoundContext,
        candidates: list[CandidateDoc],
        *,
        seeds: bool,
        provenance: Provenance,
        progress: Progress | None = None,
    ) -> int:
        """Reveal each candidate's finite labels (failed when none of the targets has one)."""
        provenance = provenance.model_copy(update={"oracle": "replay", "oracle_version": self.pool})
        for k, cand in enumerate(candidates):
            labels = {t: float(v) for t, v in cand.labels.items() if isinstance(v, int | float) and math.isfinite(v)}
            missing = [t for t in ctx.targets if t not in labels]
            doc = EvaluationDoc.from_known_labels(
                cand, labels, missing, len(ctx.targets), oracle_key=self.key, provenance=provenance, source=self.pool
            )
            ctx.store.put_evaluation(doc)
            if progress is not None:
                progress(k, len(candidates), cand.formula)
        return len(candidates)

    def prepare(self, ctx: RoundContext, candidates: list[CandidateDoc]) -> None:
        """Nothing to prepare."""

    def finish_round(self, ctx: RoundContext) -> dict[str, Any]:
        """Targets found among the labelled candidates (cumulative) and in the whole pool.

        The pool's counts are read from all its candidates once, in round 0; later rounds reuse round 0's
        (the pool never changes within a campaign, and reading 3,800 label sets costs seconds per round).
        """
        store = ctx.store
        evaluated = store.evaluation_rows(ctx.campaign, self.key, ["labels"])
        found = sorted(e["candidate_id"] for e in evaluated if self.target.holds(e.get("labels", {})))
        first = store.get_round(ctx.campaign, 0) if ctx.round_index > 0 else None
        known = first.metrics if first is not None and first.status == "completed" else {}
        if known.get("target") == self.target.text and {"n_pool", "n_targets_pool"} <= set(known):
            n_pool, n_targets_pool = int(known["n_pool"]), int(known["n_targets_pool"])
        else:
            pool = store.candidate_labels(ctx.campaign, "dataset")
            n_pool, n_targets_pool = len(pool), sum(self.target.holds(labels) for labels in pool.values())
        return {
            "target": self.target.text,
            "n_targets_found": len(found),
            "n_targets_pool": n_targets_pool,
            "n_labelled": len(evaluated),
            "n_pool": n_pool,
            "found": found,
        }

    def best(self, ctx: RoundContext, n: int = 5) -> list[dict[str, Any]]:
        """The first ``n`` targets found (formula, id, labels)."""
        rows = ctx.store.evaluation_rows(ctx.campaign, self.key, ["formula", "labels"])
        hits = [e for e in rows if self.target.holds(e.get("labels", {}))]
        return [{"candidate_id": e["candidate_id"], "formula": e["formula"], **e["labels"]} for e in hits[:n]]

    def parent_rank(self, ctx: RoundContext) -> list[tuple[str, dict[str, Any]]]:
        """No parents: nothing is generated from a pool."""
        return []

    def batch_row(self, entry: BatchEntry, targets: tuple[str, ...]) -> dict[str, Any]:
        """Formula, id, predicted mean and std per target, acquisition value, status."""
        return target_batch_row(entry, targets)

    def best_markdown(self, doc: RoundDoc, targets: tuple[str, ...]) -> str:
        """Targets found so far, of how many in the pool."""
        m = doc.metrics
        return f"""## Targets found: {m.get("n_targets_found", 0)} of {m.get("n_targets_pool", 0)} in a pool of \
{m.get("n_pool", 0)} ({m.get("n_labelled", 0)} labelled; `{self.target.text}`)
{labels_table(doc.best, targets)}"""
