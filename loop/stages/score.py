"""Score labels: the campaign's model properties (band gap, conductivity, ...) of every relaxed structure.

Property models are not retrained in the loop, so each labelled structure is scored once, on its relaxed
structure, and the values are stored on its evaluation (``EvaluationDoc.properties``): reports, queries and
acquisition's observed values read them from there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from core.threads import torch_threads
from loop.properties.base import Property, PropertyInputs
from loop.roles import RoundContext


@dataclass(frozen=True, kw_only=True)
class ScoreOutput:
    """How many labelled structures were scored now, and the time it took (s)."""

    n_scored: int
    elapsed_s: float


def score_labels_stage(properties: tuple[Property, ...], ctx: RoundContext) -> ScoreOutput:
    """Store the model properties (those that need no learned target) of every labelled structure not scored
    with the same model yet."""
    start = time.perf_counter()
    scored = 0
    for prop in (p for p in properties if not p.needs):
        model = prop.version(ctx)
        todo = [
            e
            for e in ctx.store.evaluated(ctx.campaign, ctx.labeler_key)
            if e.relaxed_structure and e.properties.get(prop.name, {}).get("model") != model
        ]
        if not todo:
            continue
        structures = [Structure.from_dict(e.relaxed_structure) for e in todo]  # type: ignore[arg-type]
        inputs = PropertyInputs(
            ids=[e.id for e in todo], compositions=[s.composition for s in structures], structures=structures
        )
        with torch_threads(ctx.num_threads):
            samples = np.asarray(prop.samples(ctx, inputs), dtype=float)
        for k, e in enumerate(todo):
            values = dict(e.properties)
            values[prop.name] = {"mean": float(samples[:, k].mean()), "std": float(samples[:, k].std()), "model": model}
            ctx.store.set_evaluation_properties(e.id, values)
        scored += len(todo)
    return ScoreOutput(n_scored=scored, elapsed_s=time.perf_counter() - start)
