"""Property-based tests of the safe expression parser (``core.expressions``) and its uses: random text and operator
soups give a ValueError (which every caller turns into one ``error:`` line) or an expression; generated valid
expressions parse to the conditions they were written from and hold exactly when a Python reference says so; no
text becomes a MongoDB operator."""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.expressions import MAX_LENGTH, Condition, TargetExpression, parse_target
from store.queries import QUERY_FIELDS, where_filter

PROPERTIES = settings(max_examples=300)
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
MONGO_OPS = {"$lt", "$lte", "$gt", "$gte"}
TOKENS = [
    "a", "ind_gap", "band_gap", "_", "1", "-", "+", "0x1f", "1e999", "9" * 400, "1.5", ".5", "nan", "inf", "True",
    "None", "<", "<=", ">", ">=", "==", "!=", ">>=", "<<", "=", "and", "or", "not", "in", "is", "(", ")", "[", "]",
    "{", "}", "'$where'", '"$gt"', ":", ",", ".", "__import__", "os", "lambda", "x:", "*", "**", "/", "%", "@", "~",
    "\\", "\n", "\t", "\x00", "#", ";", "李", "\ufeff", " ",
]  # fmt: skip


def _parse_or_error(text: str) -> TargetExpression | None:
    """The parsed expression, or None for a ValueError with a one-line message; anything else fails the test."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parsed = parse_target(text)
        except ValueError as exc:
            message = str(exc)
            assert message and "\n" not in message, message
            parsed = None
    assert not caught, [str(w.message) for w in caught]  # a warning would be a second line on stderr
    if parsed is None:
        return None
    for c in parsed.conditions:
        assert c.name.isidentifier() and c.op in OPS and math.isfinite(c.value), c
    return parsed


def _assert_safe_filter(text: str) -> None:
    """``where_filter`` gives a ValueError or a filter of known paths, comparison operators and finite numbers."""
    for predicted in (False, True):
        try:
            flt = where_filter(text, predicted=predicted)
        except ValueError as exc:
            assert "\n" not in str(exc)
            continue
        if flt == {"_id": {"$in": []}}:
            continue
        paths = {p for pair in QUERY_FIELDS.values() for p in pair if p}
        for path, ops in flt.items():
            assert path in paths and not path.startswith("$")
            assert set(ops) <= MONGO_OPS and all(math.isfinite(v) for v in ops.values())


@PROPERTIES
@given(st.text(max_size=200))
def test_random_text_parses_or_is_a_one_line_value_error(text: str) -> None:
    _parse_or_error(text)
    _assert_safe_filter(text)


@PROPERTIES
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.sampled_from([" ", ""]))
def test_operator_soups_parse_or_are_a_one_line_value_error(tokens: list[str], sep: str) -> None:
    text = sep.join(tokens)
    _parse_or_error(text)
    _assert_safe_filter(text)


NAMES = st.sampled_from(["ind_gap", "heat_all", "band_gap", "e_above_hull", "x", "_y2"])
VALUES = st.one_of(
    st.integers(-(10**6), 10**6).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-300, -1e300, 1.7976931348623157e308]),
)
CONDITIONS = st.lists(st.tuples(NAMES, st.sampled_from(sorted(OPS)), VALUES, st.booleans()), min_size=1, max_size=6)


def _render(conditions: list[tuple[str, str, float, bool]]) -> str:
    """``name op value`` (or ``value op' name`` when flipped), joined by ``and``."""
    parts = [f"{v!r} {FLIP[op]} {name}" if flipped else f"{name} {op} {v!r}" for name, op, v, flipped in conditions]
    return " and ".join(parts)


def _reference(conditions: list[tuple[str, str, float, bool]], labels: dict[str, Any]) -> bool:
    """What the expression means, computed directly: every named label present, finite and in range."""
    for name, op, value, _ in conditions:
        x = labels.get(name)
        if x is None or not math.isfinite(x) or not OPS[op](x, value):
            return False
    return True


LABELS = st.dictionaries(
    NAMES,
    st.one_of(st.floats(-1e6, 1e6), st.just(math.nan), st.just(math.inf), st.sampled_from([0.0, 1.5])),
    max_size=6,
)


@PROPERTIES
@given(CONDITIONS, st.lists(LABELS, min_size=1, max_size=5))
def test_generated_expressions_parse_and_evaluate_like_the_reference(
    conditions: list[tuple[str, str, float, bool]], label_sets: list[dict[str, Any]]
) -> None:
    text = _render(conditions)
    parsed = parse_target(text)
    assert [(c.name, c.op, c.value) for c in parsed.conditions] == [(n, op, v) for n, op, v, _ in conditions]
    assert parsed.names == tuple(dict.fromkeys(n for n, *_ in conditions))
    for labels in label_sets:
        assert parsed.holds(labels) == _reference(conditions, labels)
    # rendering the parsed conditions again gives the same expression (a fixed point)
    again = parse_target(" and ".join(f"{c.name} {c.op} {c.value!r}" for c in parsed.conditions))
    assert again.conditions == parsed.conditions


@PROPERTIES
@given(NAMES, st.sampled_from(sorted(OPS)), VALUES, st.sampled_from(sorted(OPS)), VALUES, LABELS)
def test_chained_comparisons_are_the_conjunction_of_their_links(
    name: str, op1: str, low: float, op2: str, high: float, labels: dict[str, Any]
) -> None:
    """``low op1 name op2 high`` reads as ``name op1' low and name op2 high``."""
    parsed = parse_target(f"{low!r} {op1} {name} {op2} {high!r}")
    assert parsed.conditions == (
        Condition(name=name, op=FLIP[op1], value=low),
        Condition(name=name, op=op2, value=high),
    )
    assert parsed.holds(labels) == _reference([(name, FLIP[op1], low, False), (name, op2, high, False)], labels)


@pytest.mark.parametrize(
    "text",
    [
        "ind_gap >>= 1",
        "a >= 1 and " * 500 + "a >= 1",  # 5500 characters
        "x" * 5000,
        "(" * 5000,
        "(" * 250 + "a" + ")" * 250 + " >= 1",  # deeper than the parser nests
        "a >= " + "9" * 400,  # beyond the float range: an OverflowError before the fix
        "a >= -" + "9" * 400,
        "a >= 1e999",
        "-1e999 < a",
        "a >= -(1e309)",
        "{'$where': 'sleep(1)'} > 1",
        "__import__('os').system('true') > 1",
        "a.__class__ >= 1",
        "a >= 1 or b <= 2",
        "not a >= 1",
        "a == 1",
        "a >= True",
        "a >= 1j",
        "a >= 'x'",
        "1 < 2",
        "a < b",
        "a >= 1\x00",
        "",
        "   ",
    ],
)
def test_hostile_expressions_are_refused_in_one_line(text: str, deep: Callable[..., Any]) -> None:
    """Refused with a ValueError, also when the caller's stack is already deep (as under the CLI or pytest)."""
    with pytest.raises(ValueError) as info:
        deep(parse_target, text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "a >= " + "-" * (MAX_LENGTH - 6) + "1",  # deep unary minus: a RecursionError before the fix
        "(" * 190 + "a" + ")" * 190 + " >= (" + "-" * 500 + "1)",
    ],
)
def test_deep_but_valid_expressions_are_parsed(text: str, deep: Callable[..., Any]) -> None:
    """The deepest expressions accepted parse from a deep stack too (the minus signs cancel)."""
    assert len(text) <= MAX_LENGTH
    assert deep(parse_target, text).conditions == (Condition(name="a", op=">=", value=1.0),)


@pytest.fixture
def deep() -> Callable[..., Any]:
    """Call ``fn(*args)`` from 300 frames down: recursion in the parser shows even when the stack starts deep."""

    def call(fn: Callable[..., Any], *args: Any, depth: int = 300) -> Any:
        return fn(*args) if depth == 0 else call(fn, *args, depth=depth - 1)

    return call


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("query", "--where", "band_gap >= " + "9" * 400), "compare a label name with a number"),
        (("query", "--where", "band_gap >= 1e999"), "compare a label name with a number"),
        (("query", "--where", "{'$gt': ''} > 1"), "compare a label name with a number"),
        (("query", "--where", "(" * 3000), "at most 1000"),
        (("query", "--where", "band_gap >= 1and"), "is not an expression"),  # and no SyntaxWarning line
        (("benchmark", "--pool", "perov5:val", "--target", "ind_gap >= " + "9" * 400), "compare a label name"),
        (("benchmark", "--pool", "perov5:val", "--target", "ind_gap >= " + "-" * 900 + "1 and x"), "use comparisons"),
    ],
)
def test_cli_expressions_fail_in_one_line(
    args: tuple[str, ...], message: str, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """``query --where`` and ``benchmark --target``: exit 2 with one ``error:`` line, no traceback."""
    code = cli(*args, *(("--store-uri", "mongomock://expr") if args[0] == "query" else ()))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error:") and message in err and "\n" not in err and "Traceback" not in err
