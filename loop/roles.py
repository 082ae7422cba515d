"""The roles a round is made of (CAMD's candidate source, experiment and agent, without a god object).

- :class:`RoundContext`: the few things every stage needs (store, campaign, round, labeler key, targets).
- :class:`CandidateSource`: what the loop can pick from (generated from parents; a labelled pool).
- :class:`Labeler`: what a pick is worth (relaxation with a potential; replay of known labels).

Concrete roles live in :mod:`loop.sources` and :mod:`loop.labelers`, registered by name in
:mod:`loop.registry`; :func:`loop.plan.build_plan` picks them from the config, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from core import __version__
from store.documents import BatchEntry, CandidateDoc, Provenance, RoundDoc
from store.repository import CandidateStore

#: ``progress(done, total, formula)``: called as each label is stored (done counts from 0).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, kw_only=True)
class RoundContext:
    """What every stage of one round shares."""

    store: CandidateStore
    campaign: str
    round_index: int
    labeler_key: str
    """Identity of the labeler's results (a hash of its settings): labels under another key are not reused."""
    targets: tuple[str, ...]
    """Outcomes the surrogate learns and acquisition reads, in order."""
    num_threads: int = 1
    """torch threads for this process's work."""
    store_uri: str = ""
    database: str = ""

    def provenance(self, **extra: Any) -> Provenance:
        """Provenance of a document written in this round."""
        return Provenance(campaign=self.campaign, round=self.round_index, code_version=__version__, **extra)


@dataclass(frozen=True, kw_only=True)
class GenerateOutput:
    """What a source wrote in one round."""

    n_candidates: int
    new_ids: list[str]
    n_parents: int
    elapsed_s: float


class CandidateSource(Protocol):
    """Where candidates come from."""

    name: ClassVar[str]
    fixed_pool: ClassVar[bool]
    """True when the candidate set never changes within a campaign (predictions may cache its graphs)."""

    def check(self) -> int:
        """Check the source's inputs before anything is written (e.g. read the seeds); returns how many."""
        ...

    def seed(self, ctx: RoundContext) -> list[str]:
        """Round 0: write the initial candidates; returns the ids labelled in round 0 (input order)."""
        ...

    def generate(self, ctx: RoundContext, labeler: Labeler) -> GenerateOutput:
        """Rounds >= 1: write new candidates (idempotent: a re-run of the round tops up, never past the cap);
        ``labeler`` ranks the labelled structures that may serve as parents."""
        ...


class Labeler(Protocol):
    """What a candidate is worth: labels written to the store as evaluations."""

    name: ClassVar[str]
    key: str
    """Stable identity derived from the labeler's full settings."""
    targets: tuple[str, ...]
    """Outcomes it provides by default (empty: any label the candidates carry)."""
    # Optional: ``default_properties: tuple[str, ...]``, the property providers (loop.registry.PROPERTIES)
    # a campaign of this labeler scores candidates on when its config names none (absent: none).
    # Optional on sources, labelers and properties: ``reads: tuple[str, ...]``, the role-specific config sections
    # it reads (of loop.plan.ROLE_SECTIONS); a changed setting in a section no role of the campaign reads is
    # refused (absent: none).

    def label(
        self,
        ctx: RoundContext,
        candidates: list[CandidateDoc],
        *,
        seeds: bool,
        provenance: Provenance,
        progress: Progress | None = None,
    ) -> int:
        """Label ``candidates`` (none labelled yet under ``key``), storing each result as soon as it exists;
        returns how many were stored. ``seeds``: round 0's batch (a relaxation labeler may single-point it)."""
        ...

    def prepare(self, ctx: RoundContext, candidates: list[CandidateDoc]) -> None:
        """Work shared by all shares of a batch, done once before parallel labelling (may do nothing)."""
        ...

    def finish_round(self, ctx: RoundContext) -> dict[str, Any]:
        """After the round's labels: campaign-wide analysis (e.g. the convex hull); returns round metrics."""
        ...

    def best(self, ctx: RoundContext, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` best labelled candidates so far, as rows (candidate_id, formula, values)."""
        ...

    def parent_rank(self, ctx: RoundContext) -> list[tuple[str, dict[str, Any]]]:
        """Labelled candidates with a structure, best first: (candidate id, relaxed structure dict)."""
        ...

    def batch_row(self, entry: BatchEntry, targets: tuple[str, ...]) -> dict[str, Any]:
        """One row of the round's batch artifact."""
        ...

    def best_markdown(self, doc: RoundDoc, targets: tuple[str, ...]) -> str:
        """The "best so far" section of the round's summary artifact."""
        ...
