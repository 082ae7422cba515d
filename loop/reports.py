"""What a round shows a person: the batch table and the markdown summary (Prefect artifacts)."""

from __future__ import annotations

from typing import Any

from loop.plan import LoopPlan
from store.documents import RoundDoc


def batch_table(doc: RoundDoc, plan: LoopPlan) -> list[dict[str, Any]]:
    """Rows of the round's batch artifact, as the labeler lays them out."""
    return [plan.labeler.batch_row(e, plan.targets) for e in doc.acquired]


def best_section(doc: RoundDoc, plan: LoopPlan) -> str:
    """The "best so far" markdown of ``doc``."""
    return plan.labeler.best_markdown(doc, plan.targets)


def round_markdown(doc: RoundDoc, plan: LoopPlan) -> str:
    """The round's summary artifact."""
    t = doc.timings
    stages = " | ".join(f"{k} {v:.1f} s" for k, v in t.items() if k not in ("total", "overhead"))
    metrics = ", ".join(
        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
        for k, v in doc.model_metrics.items()
        if not isinstance(v, list)
    )
    notes = "".join(f"\n- {n}" for n in doc.acquisition_notes)
    generation = generation_markdown(doc.generation)
    return f"""# {doc.campaign} · round {doc.round}

| metric | value |
| --- | --- |
| new candidates generated | {doc.n_generated} |
| pool the batch was chosen from | {doc.n_pool} |
| evaluated / failed | {doc.n_evaluated} / {doc.n_failed} |
| model used for predictions | {doc.prediction_model or "none (random batch)"} |
| model trained after the round | {doc.trained_model or "none (too few labels)"} |
| round wall time | {t.get("total", 0.0):.1f} s (orchestration overhead {t.get("overhead", 0.0):.1f} s) |

**Stages:** {stages}
{generation}
**Model validation:** {metrics or "n/a"}

**Acquisition:** `{plan.config.acquisition.model_dump_json()}`{notes}

**Labeler:** `{plan.labeler.name}` (`{plan.labeler.key}`)

{best_section(doc, plan)}"""


def generation_markdown(stats: dict[str, dict[str, int]]) -> str:
    """Per-generator table of a round: quota, produced, passed the filters, new, and the rejections by reason."""
    if not stats:
        return ""
    rows = []
    for name, s in stats.items():
        reasons = ", ".join(f"{k} {v}" for k, v in s.items() if k not in ("quota", "generated", "passed", "new"))
        rows.append(
            f"| {name} | {s.get('quota', 0)} | {s.get('generated', 0)} | {s.get('passed', 0)} | {s.get('new', 0)} "
            f"| {reasons or '-'} |"
        )
    head = (
        "| generator | quota | produced | passed filters | new | rejected by reason |\n"
        "| --- | --- | --- | --- | --- | --- |"
    )
    return "\n**Generators:**\n\n" + head + "\n" + "\n".join(rows) + "\n"


def campaign_markdown(rounds: list[RoundDoc], plan: LoopPlan) -> str:
    """The campaign summary artifact: the best candidates after the last round."""
    return f"# Campaign {plan.config.campaign}: {len(rounds)} rounds\n\n{best_section(rounds[-1], plan)}"
