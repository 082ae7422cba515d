"""Objectives and constraints as tensor functions of the outcomes.

Outcomes are the last dimension ``m`` of any tensor here, in the order of ``outcome_names``. Objectives
are turned into ``k`` quantities to maximise; constraints into BoTorch constraint callables (negative
means feasible) and into probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from acquisition.config import ConstraintSpec, ObjectiveSpec

__all__ = ["OutcomeTransform", "log_prob_between"]

_TINY = 1e-12


def log_prob_between(mean: Tensor, std: Tensor, low: float | None, high: float | None) -> Tensor:
    """``log P(low <= Y <= high)`` for ``Y ~ N(mean, std^2)`` elementwise, numerically stable in the tails.

    ``low`` or ``high`` None means unbounded on that side. ``std`` 0 gives log 1 or log 0 (a step).
    """
    std = std.clamp_min(_TINY)
    if low is None and high is None:
        return torch.zeros_like(mean)
    if low is None:
        return torch.special.log_ndtr((high - mean) / std)
    if high is None:
        return torch.special.log_ndtr((mean - low) / std)
    a, b = (low - mean) / std, (high - mean) / std
    # P = Phi(b) - Phi(a) = Phi(-a) - Phi(-b); use the side far from the upper tail for precision
    flip = a > 0
    lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    diff = (log_lo - log_hi).clamp_max(0.0)
    return log_hi + torch.log(-torch.expm1(diff)).nan_to_num(neginf=-torch.inf)


@dataclass(frozen=True, kw_only=True)
class OutcomeTransform:
    """Objectives and constraints bound to outcome columns.

    Attributes:
        objectives: ``k`` objective specs.
        constraints: constraint specs.
        outcome_names: the ``m`` outcome names (column order).
    """

    objectives: tuple[ObjectiveSpec, ...]
    constraints: tuple[ConstraintSpec, ...]
    outcome_names: tuple[str, ...]

    def column(self, name: str) -> int:
        """Outcome column of ``name``."""
        return self.outcome_names.index(name)

    @property
    def weights(self) -> Tensor:
        """``(k,)`` objective weights."""
        return torch.tensor([o.weight for o in self.objectives], dtype=torch.double)

    def objective_values(self, Y: Tensor) -> Tensor:
        """``... x m`` outcomes -> ``... x k`` objectives to maximise (y, -y, or -distance to the window)."""
        cols = []
        for o in self.objectives:
            y = Y[..., self.column(o.name)]
            if o.direction == "max":
                cols.append(y)
            elif o.direction == "min":
                cols.append(-y)
            else:
                cols.append(-(torch.relu(o.low - y) + torch.relu(y - o.high)))
        return torch.stack(cols, dim=-1)

    def objective_lower_bound(self, low: Tensor, high: Tensor) -> Tensor:
        """``... x k`` lower bound of :meth:`objective_values` when each outcome lies in ``[low, high]``
        (``... x m`` each); exact since every transform is monotone or convex in ``y``."""
        return torch.minimum(self.objective_values(low), self.objective_values(high))

    def scalarized(self, Y: Tensor) -> Tensor:
        """``... x m`` outcomes -> ``...`` weighted sum of the objectives (single-objective strategies)."""
        return (self.objective_values(Y) * self.weights.to(Y)).sum(-1)

    def to_objective_space(self, values: Sequence[float]) -> Tensor:
        """A point given per objective in its own units (e.g. a reference point) -> ``(k,)`` maximisation
        space: ``r`` for max, ``-r`` for min and for window (``r`` is then a distance from the window)."""
        signs = [1.0 if o.direction == "max" else -1.0 for o in self.objectives]
        return torch.tensor([s * float(v) for s, v in zip(signs, values, strict=True)], dtype=torch.double)

    def botorch_constraints(self) -> list[Callable[[Tensor], Tensor]]:
        """One callable per constraint: ``... x q x m`` samples -> ``... x q``, negative when feasible."""

        def make(spec: ConstraintSpec) -> Callable[[Tensor], Tensor]:
            j, v = self.column(spec.name), spec.value
            if spec.upper:
                return lambda Z: Z[..., j] - v
            return lambda Z: v - Z[..., j]

        return [make(c) for c in self.constraints]

    def feasible(self, Y: Tensor) -> Tensor:
        """``... x m`` outcomes -> ``...`` bool, True where every constraint holds (strict ops strict)."""
        ok = torch.ones(Y.shape[:-1], dtype=torch.bool)
        for spec in self.constraints:
            ok &= spec.satisfied(Y[..., self.column(spec.name)])
        return ok

    def violation(self, Y: Tensor) -> Tensor:
        """``... x m`` outcomes -> ``...`` total constraint violation in outcome units (0 when feasible)."""
        total = torch.zeros(Y.shape[:-1], dtype=Y.dtype)
        for fn in self.botorch_constraints():
            total = total + torch.relu(fn(Y))
        return total

    def log_prob_feasible(self, mean: Tensor, std: Tensor, members: Tensor | None = None) -> Tensor:
        """``n`` log probability that every constraint holds (constraints taken as independent).

        Args:
            mean: ``n x m`` posterior mean.
            std: ``n x m`` posterior standard deviation.
            members: ``K x n x m`` members: if given, the fraction of members satisfying each constraint.
        """
        out = torch.zeros(mean.shape[0], dtype=torch.double)
        for spec in self.constraints:
            j = self.column(spec.name)
            if members is not None:
                out = out + torch.log(spec.satisfied(members[..., j]).double().mean(0))
            elif spec.upper:
                out = out + log_prob_between(mean[:, j], std[:, j], None, spec.value)
            else:
                out = out + log_prob_between(mean[:, j], std[:, j], spec.value, None)
        return out

    def log_prob_targets(self, mean: Tensor, std: Tensor, members: Tensor | None = None) -> Tensor:
        """``n`` log probability that every objective meets its target (``y >= low`` for max, ``y <= high``
        for min, ``low <= y <= high`` for window), objectives taken as independent.

        Args: as :meth:`log_prob_feasible`.
        """
        out = torch.zeros(mean.shape[0], dtype=torch.double)
        for o in self.objectives:
            j = self.column(o.name)
            low = o.low if o.direction in ("max", "window") else None
            high = o.high if o.direction in ("min", "window") else None
            if members is not None:
                y = members[..., j]
                inside = torch.ones_like(y, dtype=torch.bool)
                if low is not None:
                    inside &= y >= low
                if high is not None:
                    inside &= y <= high
                out = out + torch.log(inside.double().mean(0))
            else:
                out = out + log_prob_between(mean[:, j], std[:, j], low, high)
        return out
