"""Safe comparison expressions: ``"ind_gap >= 1.5 and heat_all <= 0.5"``.

Used for the replay benchmark's targets (which pool entries count as discoveries) and for ``--where`` filters
of the store's queries. An expression is parsed once into comparisons of names with numbers joined by ``and``
(``ast``, never ``eval``); names are plain identifiers, so nothing of it reaches a database as an operator.
This module imports nothing of the project.
"""

from __future__ import annotations

import ast
import math
import operator
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_OPS: dict[type, Callable[[float, float], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_BY_SYMBOL = {symbol: _OPS[node] for node, symbol in _SYMBOL.items()}


@dataclass(frozen=True, kw_only=True)
class Condition:
    """``name op value``, e.g. ``ind_gap >= 1.5`` (value in the label's units)."""

    name: str
    op: str
    value: float

    def holds(self, labels: Mapping[str, float]) -> bool:
        """False when the label is missing or NaN."""
        x = labels.get(self.name)
        if x is None or not math.isfinite(float(x)):
            return False
        return _BY_SYMBOL[self.op](float(x), self.value)


@dataclass(frozen=True, kw_only=True)
class TargetExpression:
    """A conjunction (``and``) of comparisons of labels with numbers."""

    text: str
    conditions: tuple[Condition, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Labels the expression reads, in order of appearance (each once)."""
        return tuple(dict.fromkeys(c.name for c in self.conditions))

    def holds(self, labels: Mapping[str, float]) -> bool:
        """Whether an entry with these labels is a target."""
        return all(c.holds(labels) for c in self.conditions)


#: Longest expression accepted (characters): deeper ones exhaust the parser's recursion.
MAX_LENGTH = 1000


def parse_target(text: str) -> TargetExpression:
    """Parse ``"a >= 1.5 and b <= 0.5"`` (also ``1.5 <= a``, chained ``0 < a < 2``); ValueError otherwise."""
    if len(text) > MAX_LENGTH:
        raise ValueError(f"expression of {len(text)} characters; at most {MAX_LENGTH}")
    try:
        with warnings.catch_warnings():  # '1and' warns on stderr: the one error line must stay the only line
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, RecursionError, MemoryError) as exc:
        msg = exc.msg if isinstance(exc, SyntaxError) else "too deeply nested"
        raise ValueError(f"target {text!r} is not an expression: {msg}") from None
    parts = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    conditions: list[Condition] = []
    for part in parts:
        if not isinstance(part, ast.Compare):
            raise ValueError(
                f"target {text!r}: use comparisons joined by 'and', e.g. 'ind_gap >= 1.5 and heat_all <= 0.5'"
            )
        operands = [part.left, *part.comparators]
        for left, op, right in zip(operands, part.ops, operands[1:], strict=False):
            if type(op) not in _OPS:
                raise ValueError(f"target {text!r}: only <, <=, >, >= are allowed")
            symbol = _SYMBOL[type(op)]
            if isinstance(left, ast.Name) and _number(right) is not None:
                conditions.append(Condition(name=left.id, op=symbol, value=_number(right)))  # type: ignore[arg-type]
            elif isinstance(right, ast.Name) and _number(left) is not None:
                flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[symbol]
                conditions.append(Condition(name=right.id, op=flipped, value=_number(left)))  # type: ignore[arg-type]
            else:
                raise ValueError(f"target {text!r}: compare a label name with a number")
    return TargetExpression(text=text.strip(), conditions=tuple(conditions))


def _number(node: ast.expr) -> float | None:
    """The finite number of a literal with any unary minuses (a loop: ``------1`` nests as deep as it is long);
    None for anything else, including a literal beyond the float range (``1e999``, a 400-digit integer)."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -sign, node.operand
    if not (isinstance(node, ast.Constant) and isinstance(node.value, int | float)) or isinstance(node.value, bool):
        return None
    try:
        value = sign * float(node.value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None
