"""What the learned generator can be conditioned on: band-gap classes (eV) and the check of a condition, without
loading torch (a loop checks its config before any model is loaded)."""

from __future__ import annotations

import math

from core.errors import ConfigError
from core.expressions import TargetExpression

#: Band-gap classes (eV) of the learned generator's condition tokens 1..4 (0: any): metal, (0, 1], (1, 3], > 3.
GAP_BINS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.0, 1.0), (1.0, 3.0), (3.0, math.inf))

#: Properties the learned generator can be conditioned on (its training data hold them as condition tokens).
CONDITION_NAMES: tuple[str, ...] = ("band_gap",)


def gap_classes_for(condition: TargetExpression | None) -> list[int]:
    """Band-gap classes compatible with ``condition`` ([0], "any", when it says nothing of ``band_gap``).

    Raises:
        ConfigError: the condition names a property the model is not conditioned on.
    """
    if condition is None:
        return [0]
    other = [n for n in condition.names if n not in CONDITION_NAMES]
    if other:
        raise ConfigError(
            f"the learned generator is conditioned on band_gap (eV) only, not {', '.join(other)}; "
            "use --require/--elements for composition"
        )
    keep = []
    for k, (low, high) in enumerate(GAP_BINS, start=1):
        probe = [low] if low == high else [low + 1e-6, (low + min(high, low + 10)) / 2, min(high, 1e3) - 1e-6]
        if any(condition.holds({"band_gap": v}) for v in probe):
            keep.append(k)
    if not keep:
        raise ConfigError(f"no band gap satisfies {condition.text!r}")
    return keep
