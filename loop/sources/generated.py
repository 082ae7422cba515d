"""The ``generated`` source: seeds in round 0, then candidates generated from parents every round."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import ClassVar

from pymatgen.core import Structure

from acquisition.config import AcquisitionConfig
from core.errors import ConfigError
from core.expressions import parse_target
from generation import GENERATORS, GenerateConfig, GenerationRequest, load_seeds, quota_counts, screen
from loop.config import LoopConfig
from loop.registry import SOURCES
from loop.roles import GenerateOutput, Labeler, RoundContext
from store.candidates import register_structures
from store.novelty import NoveltyChecker, reference_phases


def campaign_condition(acquisition: AcquisitionConfig, names: tuple[str, ...]) -> str | None:
    """The learned generator's condition (``core.expressions`` syntax) from the campaign's objectives and
    constraints on the properties it is conditioned on (``names``), joined by ``and``; None when there are none.

    A window ``[low, high]`` asks for ``low <= y <= high``; ``max`` asks for ``y >= low`` (``y > 0`` without a
    threshold: gapped, when maximising the band gap); ``min`` asks for ``y <= high`` (``y <= 0`` without one);
    a constraint ``y op value`` is taken as it is. Units are the outcome's (band gap: eV).
    """
    parts: list[str] = []
    for o in acquisition.objectives:
        if o.name not in names:
            continue
        if o.direction == "window":
            parts += [f"{o.name} >= {o.low:g}", f"{o.name} <= {o.high:g}"]
        elif o.direction == "max":
            parts.append(f"{o.name} >= {o.low:g}" if o.low is not None else f"{o.name} > 0")
        else:
            parts.append(f"{o.name} <= {o.high:g}" if o.high is not None else f"{o.name} <= 0")
    parts += [f"{c.name} {c.op} {c.value:g}" for c in acquisition.constraints if c.name in names]
    return " and ".join(dict.fromkeys(parts)) or None


def _condition_for(config: LoopConfig) -> str | None:
    """The condition of the campaign's conditionable generators (those declaring ``condition_names``), checked by
    each (``check_condition``) before any round starts; None when none is conditionable or nothing applies."""
    classes = [GENERATORS.get(name) for name in config.generate.generators]
    names = tuple(dict.fromkeys(n for cls in classes for n in getattr(cls, "condition_names", ())))
    condition = campaign_condition(config.acquisition, names) if names else None
    if condition is None:
        return None
    for name, cls in zip(config.generate.generators, classes, strict=True):
        check = getattr(cls, "check_condition", None)
        if check is not None:
            try:  # e.g. objectives and constraints no band gap satisfies
                check(parse_target(condition))
            except ConfigError as exc:
                raise ConfigError(f"generator {name!r}: the condition from the acquisition config: {exc}") from exc
    return condition


@SOURCES.register("generated")
@dataclass(frozen=True, kw_only=True)
class GeneratedSource:
    """Seeds (round 0), then the registered generators of ``generate.generators`` applied to the seeds, the
    unlabelled ``generate.parent_pool`` and the ``generate.parents_per_round`` best labelled structures (the
    labeler ranks them). Each new candidate is
    checked known or novel against the hull's reference phases (``oracle.reference_phases``, MP online when
    ``oracle.competing_phases`` allows it) and the campaign's seeds (:mod:`store.novelty`)."""

    name: ClassVar[str] = "generated"
    fixed_pool: ClassVar[bool] = False
    reads: ClassVar[tuple[str, ...]] = ("seeds", "candidates_per_round", "generate", "oracle")

    seeds: tuple[str, ...]
    generate_config: GenerateConfig
    candidates_per_round: int
    reference_phases: tuple[str, ...] = ("mp_20", "mp_20_test", "mpts_52")
    competing_phases: str = "auto"
    condition: str | None = None

    @classmethod
    def from_config(cls, config: LoopConfig) -> GeneratedSource:
        """The source of ``config``; ConfigError for an unknown generator."""
        condition = _condition_for(config)  # also one clear line for a generator's typo, before any round starts
        return cls(
            seeds=config.seeds,
            generate_config=config.generate,
            candidates_per_round=config.candidates_per_round,
            reference_phases=tuple(config.oracle.reference_phases),
            competing_phases=config.oracle.competing_phases,
            condition=condition,
        )

    def check(self) -> int:
        """Load and check the seeds (and the parent pool) without writing anything; returns how many seeds."""
        if self.generate_config.parent_pool:
            load_seeds(self.generate_config.parent_pool)
        return len(load_seeds(self.seeds))

    def seed(self, ctx: RoundContext) -> list[str]:
        """Store the seed structures as candidates; returns their ids (input order, each once)."""
        items = [(s.structure, {"source": "seed", "parent": s.name}) for s in load_seeds(self.seeds)]
        ids, _ = register_structures(ctx.store, campaign=ctx.campaign, round_index=0, items=items, limit=len(items))
        return list(dict.fromkeys(ids))  # two seed files with one structure count once

    def generate(self, ctx: RoundContext, labeler: Labeler) -> GenerateOutput:
        """Run each generator for its quota of the round's candidates, filter, store the new ones.

        Each generator's counts (quota, produced, passed the filters, new, rejections by reason) go into the round
        document's ``generation`` field.
        """
        start = time.perf_counter()
        config = self.generate_config
        parents = [(s.name, s.structure) for s in load_seeds(self.seeds + config.parent_pool)]
        seed_ids = {c.id for c in ctx.store.find_seeds(ctx.campaign)}
        ranked = [(cid, structure) for cid, structure in labeler.parent_rank(ctx) if cid not in seed_ids]
        parents += [(cid, Structure.from_dict(s)) for cid, s in ranked[: config.parents_per_round]]
        quotas = quota_counts(config, self.candidates_per_round)
        seed = int(hashlib.sha1(f"{ctx.campaign}:{ctx.round_index}".encode()).hexdigest()[:8], 16)
        # the cap is per round: a re-run of a crashed round tops up to it, never past it
        room = max(0, self.candidates_per_round - ctx.store.count_generated(ctx.campaign, ctx.round_index))
        if room == 0:  # the round's cap is reached (a re-run): generating would write nothing and lose its counts
            return GenerateOutput(
                n_candidates=0, new_ids=[], n_parents=len(parents), elapsed_s=time.perf_counter() - start
            )
        stats: dict[str, dict[str, int]] = {}
        novelty = NoveltyChecker(
            phase_set=reference_phases(self.reference_phases, self.competing_phases),
            store=ctx.store,
            campaign=ctx.campaign,
        )
        new_ids: list[str] = []
        n_candidates = 0
        condition = parse_target(self.condition) if self.condition else None
        for name in config.generators:
            if quotas[name] == 0:
                continue
            generator = GENERATORS.get(name)
            request = GenerationRequest(
                n=quotas[name],
                parents=parents,
                seed=seed,
                store=ctx.store,
                condition=condition if getattr(generator, "condition_names", ()) else None,
            )
            raw = generator().generate(request, config)
            report = screen(raw, config)
            n_candidates += len(report.passed)
            items = [(c.structure, c.provenance()) for c in report.passed]
            limit = min(quotas[name], room - len(new_ids))
            _, written = register_structures(
                ctx.store,
                campaign=ctx.campaign,
                round_index=ctx.round_index,
                items=items,
                limit=max(0, limit),
                novelty=novelty.check,
            )
            new_ids += written
            stats[name] = {"quota": quotas[name], **report.summary(), "new": len(written)}
        doc = ctx.store.get_round(ctx.campaign, ctx.round_index)
        if doc is not None:
            ctx.store.save_round(doc.model_copy(update={"generation": stats, "generation_condition": self.condition}))
        return GenerateOutput(
            n_candidates=n_candidates, new_ids=new_ids, n_parents=len(parents), elapsed_s=time.perf_counter() - start
        )
