"""A base for simple labelers: compute labels of one structure at a time; the rest has defaults.

Subclass, name the targets, implement :meth:`SimpleLabeler.compute`, register::

    @LABELERS.register("atom-count")
    class AtomCount(SimpleLabeler):
        targets = ("n_atoms",)

        def compute(self, structure):
            return {"n_atoms": float(len(structure))}

The labels are stored in ``EvaluationDoc.labels`` (the structure counts as relaxed); "best" means the
lowest value of the first target unless ``maximize`` is set.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any, ClassVar

from pymatgen.core import Structure

from loop.config import LoopConfig
from loop.labelers.rows import labels_table, target_batch_row
from loop.roles import Progress, RoundContext
from store.documents import BatchEntry, CandidateDoc, EvaluationDoc, Provenance, RoundDoc


class SimpleLabeler:
    """Labels from a pure function of the structure; sensible defaults for every other role method."""

    name: ClassVar[str] = "simple"
    targets: ClassVar[tuple[str, ...]] = ()
    maximize: ClassVar[bool] = False
    version: ClassVar[str] = "1"
    """Bump when :meth:`compute` changes: it is part of the key, so old labels are not reused."""

    @classmethod
    def from_config(cls, config: LoopConfig) -> SimpleLabeler:
        """No settings of its own."""
        return cls()

    def settings(self) -> dict[str, Any]:
        """Everything that can change a label (hashed into :attr:`key`)."""
        return {"class": type(self).__qualname__, "version": self.version, "targets": list(self.targets)}

    @property
    def key(self) -> str:
        """``<name>|<hash of settings()>``."""
        digest = hashlib.sha256(json.dumps(self.settings(), sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.name}|{digest}"

    def compute(self, structure: Structure) -> dict[str, float]:
        """The labels of one structure (target name -> value); raise or return NaN to fail it."""
        raise NotImplementedError

    def label(
        self,
        ctx: RoundContext,
        candidates: list[CandidateDoc],
        *,
        seeds: bool,
        provenance: Provenance,
        progress: Progress | None = None,
    ) -> int:
        """Compute and store each candidate's labels; a failure is stored with its reason."""
        provenance = provenance.model_copy(update={"oracle": self.name, "oracle_version": self.version})
        for k, cand in enumerate(candidates):
            start = time.perf_counter()
            try:
                labels = {t: float(v) for t, v in self.compute(Structure.from_dict(cand.structure)).items()}
                bad = [t for t in ctx.targets if not math.isfinite(labels.get(t, math.nan))]
                status, reason = ("failed", f"no finite {', '.join(bad)}") if bad else ("converged", "")
            except Exception as exc:  # a labeler's failure is a property of this candidate
                labels, status, reason = {}, "failed", f"{type(exc).__name__}: {exc}"
            doc = EvaluationDoc.for_candidate(
                cand,
                oracle_key=self.key,
                provenance=provenance,
                status=status,
                reason=reason,
                labels={t: v for t, v in labels.items() if math.isfinite(v)},
                relaxed_structure=cand.structure,
                potential=self.name,
                potential_version=self.version,
                fmax=0.0,
                max_steps=0,
                elapsed_s=time.perf_counter() - start,
            )
            ctx.store.put_evaluation(doc)
            if progress is not None:
                progress(k, len(candidates), cand.formula)
        return len(candidates)

    def prepare(self, ctx: RoundContext, candidates: list[CandidateDoc]) -> None:
        """Nothing to prepare."""

    def finish_round(self, ctx: RoundContext) -> dict[str, Any]:
        """No campaign-wide analysis; no metrics."""
        return {}

    def _ranked(self, ctx: RoundContext) -> list[dict[str, Any]]:
        first = (ctx.targets or self.targets)[0]
        rows = [
            r
            for r in ctx.store.evaluation_rows(ctx.campaign, self.key, ["formula", "labels"])
            if first in (r.get("labels") or {})
        ]
        return sorted(rows, key=lambda r: r["labels"][first], reverse=self.maximize)

    def best(self, ctx: RoundContext, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` best by the first target."""
        return [
            {"candidate_id": r["candidate_id"], "formula": r["formula"], **r["labels"]} for r in self._ranked(ctx)[:n]
        ]

    def parent_rank(self, ctx: RoundContext) -> list[tuple[str, dict[str, Any]]]:
        """Labelled structures, best first by the first target."""
        ids = [r["candidate_id"] for r in self._ranked(ctx)]
        found = {c.id: c.structure for c in ctx.store.get_candidates(ids)}
        return [(cid, found[cid]) for cid in ids if cid in found]

    def batch_row(self, entry: BatchEntry, targets: tuple[str, ...]) -> dict[str, Any]:
        """Formula, id, predicted mean and std per target, acquisition value, status."""
        return target_batch_row(entry, targets)

    def best_markdown(self, doc: RoundDoc, targets: tuple[str, ...]) -> str:
        """The best labels so far."""
        return f"## Best so far ({self.name})\n{labels_table(doc.best, targets)}"
