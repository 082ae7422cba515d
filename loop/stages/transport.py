"""Transport: MD diffusion runs for the best labelled Li/Na candidates (relaxation labelers)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from pymatgen.core import Structure

from core.threads import torch_threads
from loop.roles import RoundContext
from oracle.md import MDConfig


@dataclass(frozen=True, kw_only=True)
class TransportOutput:
    """MD results written this round: evaluation id -> log10 conductivity (S/cm) or None when failed."""

    results: dict[str, float | None]
    elapsed_s: float


def transport_stage(md: MDConfig, ctx: RoundContext, *, potential: str) -> TransportOutput:
    """MD for the ``md.top_k`` lowest-energy-above-hull labels with Li or Na and no result yet (a re-run skips
    those done), with the potential ``potential``; each result is stored as soon as it exists."""
    from oracle import get_potential
    from oracle.md import pick_ion, run_md

    start = time.perf_counter()
    labelled = [e for e in ctx.store.labelled(ctx.campaign, ctx.labeler_key) if e.relaxed_structure]
    ranked = sorted(
        labelled,
        key=lambda e: (
            e.energy_above_hull if e.energy_above_hull is not None else math.inf,
            e.formation_energy_per_atom,
        ),
    )
    picked = [e for e in ranked if pick_ion(Structure.from_dict(e.relaxed_structure), md.ion)][: md.top_k]
    calculator = get_potential(potential)
    out: dict[str, float | None] = {}
    for evaluation in picked:
        if evaluation.transport is not None:
            continue
        with torch_threads(ctx.num_threads):
            result = run_md(Structure.from_dict(evaluation.relaxed_structure), md, calculator)  # type: ignore[arg-type]
        ctx.store.set_transport(evaluation.id, {**result.model_dump(), "round": ctx.round_index})
        out[evaluation.id] = result.log10_conductivity
    return TransportOutput(results=out, elapsed_s=time.perf_counter() - start)
