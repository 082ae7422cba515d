"""Property-based tests of config reading: ``core.yamlfile.read_mapping`` and the loop's ``load_config`` (both
layers a ``battery-discovery run -c FILE`` goes through). Any bytes, any YAML, any mutation of a valid config give a
config or one ``ConfigError`` line; an accepted config holds only finite numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError, DiscoveryError
from core.yamlfile import read_mapping
from loop.config import LoopConfig
from loop.plan import load_config

PROPERTIES = settings(
    max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

#: Values that are wrong somewhere: wrong types, NaN, huge and negative numbers, nested junk, operator-shaped text.
JUNK = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -1, 0, 2**63, -(2**63)]),
        st.floats(),
        st.text(max_size=30),
        st.sampled_from(["", "$where", "{'$gt': ''}", "../../etc", "a >= " + "9" * 400, "ind_gap >>= 1", "\x00"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)


def _assert_one_line(exc: DiscoveryError) -> None:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message, message
    assert "validation error" not in message  # no pydantic multi-error dump


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _numbers(v)]
    return [float(value)] if isinstance(value, float | int) and not isinstance(value, bool) else []


def _load(path: Path) -> LoopConfig | None:
    """``load_config(path)``, or None for a one-line project error; any other exception fails the test."""
    try:
        config = load_config(path)
    except DiscoveryError as exc:  # ConfigError, or SeedError for a seed file that cannot be read
        _assert_one_line(exc)
        return None
    assert all(math.isfinite(x) for x in _numbers(config.model_dump())), config
    return config


@pytest.fixture(scope="module")
def default_doc() -> dict[str, Any]:
    return LoopConfig().model_dump(mode="json")


def _leaves(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every value of ``doc`` (dicts and lists), containers included."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _leaves(v, (*prefix, k))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


def _read_and_load(path: Path) -> None:
    """The file reads as a mapping or is one ConfigError line; loading it gives a config or one line."""
    try:
        assert isinstance(read_mapping(path), dict)
    except ConfigError as exc:
        _assert_one_line(exc)
    _load(path)


@PROPERTIES
@given(st.binary(max_size=300))
def test_any_bytes_give_a_mapping_or_one_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    _read_and_load(path)


@PROPERTIES
@given(st.lists(st.sampled_from([*"ab: -[]{}&*!|>'\"#%@`,?\n\t.0123456789eE+", "!!python/object", "rounds"])))
def test_yaml_punctuation_soup_gives_a_mapping_or_one_config_error(tmp_path: Path, tokens: list[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("".join(tokens))
    _read_and_load(path)


@PROPERTIES
@given(JUNK)
def test_any_yaml_document_gives_a_config_or_one_config_error(tmp_path: Path, doc: Any) -> None:
    """Non-mapping top levels, unknown keys and nested junk are refused in one line."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    _load(path)


@PROPERTIES
@given(st.data(), JUNK)
def test_a_valid_config_with_one_value_replaced_is_valid_or_one_config_error(
    tmp_path: Path, default_doc: dict[str, Any], data: st.DataObject, junk: Any
) -> None:
    doc = yaml.safe_load(yaml.safe_dump(default_doc))  # a deep copy
    where = data.draw(st.sampled_from(_leaves(doc)))
    _set(doc, where, junk)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    _load(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"\xff\xfe\x00rounds: 1", "not UTF-8 text"),  # a UnicodeDecodeError before the fix
        (b"a: " + b"[" * 2000 + b"]" * 2000, "nested too deeply"),  # a RecursionError before the fix
        (b"replay: {target: 'ind_gap >= " + b"9" * 400 + b"'}", "replay.target"),  # an OverflowError before
        (b"rounds: .nan", "rounds"),
        (b"rounds: 1e400", "rounds"),
        (b"rounds: -3", "rounds"),
        (b"batch_size: 100000000000000000000000000", "batch_size"),
        (b"surrogate: {learning_rate: .inf}", "surrogate.learning_rate: Input should be a finite number"),
        (b"oracle: {md: {min_length: .inf}}", "oracle.md.min_length"),  # an OverflowError in MD before the fix
        (b"acquisition: {constraints: [{name: e_above_hull, op: '<=', value: .nan}]}", "finite number"),
        (b"acquisition: {objectives: [{name: e_above_hull, direction: min, high: .nan}]}", "finite number"),
        (b"[1, 2, 3]", "expected a mapping"),
        (b"just a string", "expected a mapping"),
        (b"rounds: !!python/object/apply:os.system ['true']", "not valid YAML"),
        (b"&a [*a]", "expected a mapping"),
        (b"campaign: {'$ne': 1}", "campaign"),
        (b"1: 2", "Keys should be strings"),
        (b"<html><body>404</body></html>", "expected a mapping"),
    ],
)
def test_malformed_config_files_fail_in_one_line(tmp_path: Path, text: bytes, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_one_line(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ((), None),  # the default itself, every field written out (what `battery-discovery config` prints)
        (("rounds",), 7),
        (("batch_size",), 8),
        (("candidates_per_round",), 50),
        (("campaign",), "other-campaign"),
        (("surrogate", "n_members"), 3),
        (("oracle", "relax", "fmax"), 0.1),
        (("generate", "max_sites"), 24),
        (("acquisition", "seed"), 3),
    ],
)
def test_the_default_and_same_type_replacements_load(
    tmp_path: Path, default_doc: dict[str, Any], where: tuple[str, ...], value: Any
) -> None:
    """The property tests above accept a refusal; these must load, so a loader that refused everything fails."""
    doc = yaml.safe_load(yaml.safe_dump(default_doc))
    if where:
        _set(doc, where, value)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    config = _load(path)
    assert config is not None
    if where:
        node: Any = config
        for key in where:
            node = getattr(node, key)
        assert node == value
