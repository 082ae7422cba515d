"""The ``pool`` source: a labelled data set is the whole candidate set (replay benchmarks)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from core.errors import ConfigError
from loop.config import LoopConfig
from loop.registry import SOURCES
from loop.roles import GenerateOutput, Labeler, RoundContext


@SOURCES.register("pool")
@dataclass(frozen=True, kw_only=True)
class PoolSource:
    """Round 0 writes the pool of ``replay.pool`` (labels kept on the candidates, hidden from the loop until a
    labeler reveals them) and returns ``replay.initial`` of them, drawn with ``replay.seed``; later rounds
    generate nothing."""

    name: ClassVar[str] = "pool"
    fixed_pool: ClassVar[bool] = True
    reads: ClassVar[tuple[str, ...]] = ("replay",)

    pool: str
    initial: int
    seed_value: int

    @classmethod
    def from_config(cls, config: LoopConfig) -> PoolSource:
        """The source of ``config``; ConfigError without ``replay.pool``."""
        if not config.replay.pool:
            raise ConfigError("the pool source needs replay.pool (a data set spec, e.g. 'perov5:val.csv')")
        return cls(pool=config.replay.pool, initial=config.replay.initial, seed_value=config.replay.seed)

    def check(self) -> int:
        """Nothing to check before the run (the pool is loaded in round 0); returns 0."""
        return 0

    def seed(self, ctx: RoundContext) -> list[str]:
        """Write the pool; returns the random initial draw (the same for every strategy of one seed)."""
        from ingest import load_dataset
        from ingest.seed import seed_store

        seed_store(load_dataset(self.pool), ctx.store, campaign=ctx.campaign)
        pool = ctx.store.candidate_ids(ctx.campaign, "dataset")
        order = np.random.default_rng(self.seed_value).permutation(len(pool))
        return [pool[i] for i in order[: self.initial]]

    def generate(self, ctx: RoundContext, labeler: Labeler) -> GenerateOutput:
        """Nothing: the pool is the candidate set."""
        start = time.perf_counter()
        return GenerateOutput(n_candidates=0, new_ids=[], n_parents=0, elapsed_s=time.perf_counter() - start)
