"""Property-based tests of ``load_acquisition_config`` (``run --acquisition-config FILE``): any bytes, any YAML and
any one-value mutation of a full config give a config holding only finite numbers, or one ``ConfigError`` line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.config import AcquisitionConfig, load_acquisition_config, preset_names
from core.errors import ConfigError

PROPERTIES = settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
FULL = {
    "strategy": "target_probability",
    "beta": 2.0,
    "objectives": [
        {"name": "band_gap", "direction": "window", "low": 1.0, "high": 3.0, "weight": 1.0},
        {"name": "e_above_hull", "direction": "min", "high": 0.1},
    ],
    "constraints": [{"name": "log10_conductivity", "op": ">=", "value": -4.0}],
    "diversity": {"max_per_key": 2, "group_by": "chemsys", "min_composition_distance": 0.1},
    "posterior": {"kind": "ensemble", "spread_scale": 1.5, "recalibrate": True},
    "ref_point": [0.0, 0.2],
    "probability": "ensemble",
    "num_samples": 64,
}
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1, 0, "", "max", "qlognehvi", "$gt", [], {}, [math.nan]]),
    st.text(max_size=20),
    st.lists(st.floats(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)


def _load(path: Path) -> AcquisitionConfig | None:
    try:
        config = load_acquisition_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and "validation error" not in message, message
        return None
    numbers = [*_floats(config.model_dump())]
    assert all(math.isfinite(x) for x in numbers), config
    return config


def _floats(value: Any) -> Any:
    if isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _floats(v)
    elif isinstance(value, float):
        yield value


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for k, v in enumerate(doc):
            out += _paths(v, (*prefix, k))
    return out


def test_the_full_config_and_every_preset_load(tmp_path: Path) -> None:
    path = tmp_path / "full.yaml"
    path.write_text(yaml.safe_dump(FULL))
    assert _load(path) is not None
    for name in preset_names():
        assert isinstance(load_acquisition_config(f"preset:{name}"), AcquisitionConfig)


@PROPERTIES
@given(st.data(), JUNK, st.booleans())
def test_one_value_replaced_gives_a_valid_config_or_one_config_error(
    tmp_path: Path, data: st.DataObject, junk: Any, as_loop_section: bool
) -> None:
    doc = yaml.safe_load(yaml.safe_dump(FULL))
    where = data.draw(st.sampled_from(_paths(doc)))
    target = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = junk
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump({"acquisition": doc} if as_loop_section else doc))
    _load(path)


@PROPERTIES
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_any_bytes_give_a_config_or_one_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes(data)
    _load(path)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"objectives": [{"name": "band_gap", "low": math.nan}]}, "objectives.0.low"),  # accepted before the fix
        ({"objectives": [{"name": "band_gap", "weight": math.inf}]}, "objectives.0.weight"),
        ({"constraints": [{"name": "band_gap", "op": "<=", "value": math.nan}]}, "constraints.0.value"),
        (
            {"strategy": "qlognehvi", "objectives": [{"name": "a"}, {"name": "b"}], "ref_point": [math.nan, 1]},
            "ref_point.0",
        ),
        ({"strategy": "$where"}, "unknown strategy"),
        ({"num_samples": -1}, "num_samples"),
    ],
)
def test_impossible_values_are_refused_in_one_line(tmp_path: Path, doc: dict[str, Any], message: str) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        load_acquisition_config(path)
    assert message in str(info.value) and "\n" not in str(info.value)
