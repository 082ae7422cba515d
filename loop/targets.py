"""Target expressions of the replay benchmark: which labelled entries count as discoveries.

The safe parser lives in :mod:`core.expressions` (the store's ``--where`` queries use it too).
"""

from core.expressions import Condition, TargetExpression, parse_target

__all__ = ["Condition", "TargetExpression", "parse_target"]
