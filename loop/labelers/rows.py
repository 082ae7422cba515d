"""Report rows shared by labelers whose labels are named targets (replay, simple labelers)."""

from __future__ import annotations

from typing import Any

from store.documents import BatchEntry


def fmt(value: float | None, spec: str = ".3f") -> str:
    """``value`` formatted, or an empty cell for None."""
    return "" if value is None else format(value, spec)


def target_batch_row(entry: BatchEntry, targets: tuple[str, ...]) -> dict[str, Any]:
    """Formula, id, predicted mean and std per target, acquisition value, status."""
    return {
        "formula": entry.formula,
        "candidate_id": entry.candidate_id,
        **{f"{t}_mean": fmt(entry.means.get(t)) for t in targets},
        **{f"{t}_std": fmt(entry.stds.get(t)) for t in targets},
        "acquisition_value": fmt(entry.acquisition_value, ".4g"),
        "oracle_status": entry.status,
    }


def labels_table(best: list[dict[str, Any]], targets: tuple[str, ...]) -> str:
    """A markdown table of best-so-far rows (formula, id, the targets' labels)."""
    rows = "\n".join(
        f"| {b['formula']} | {b['candidate_id']} | "
        + ", ".join(f"{t} = {b.get(t, float('nan')):.3g}" for t in targets)
        + " |"
        for b in best
    )
    return f"| formula | id | labels |\n| --- | --- | --- |\n{rows}\n"
