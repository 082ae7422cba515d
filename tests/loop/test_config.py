"""LoopConfig: defaults, YAML, clear one-line errors, and the flow's parameters match it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from core.errors import ConfigError
from loop.config import LoopConfig, dump_config
from loop.plan import build_config, load_config


def test_flow_parameters_are_the_config_fields() -> None:
    from flows.discovery_loop import discovery_loop

    params = inspect.signature(discovery_loop.fn).parameters
    assert list(params) == list(LoopConfig.model_fields)
    defaults = LoopConfig()
    for name, p in params.items():
        assert p.default == getattr(defaults, name), name


def test_yaml_round_trip_and_overrides(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(
        "campaign: olivines\nbatch_size: 8\nacquisition: {strategy: logei}\noracle: {relax: {fmax: 0.05}}\n"
    )
    cfg = load_config(file, {"rounds": 7})
    assert (cfg.campaign, cfg.batch_size, cfg.rounds) == ("olivines", 8, 7)
    assert cfg.acquisition.strategy == "logei" and cfg.oracle.relax.fmax == 0.05
    file2 = tmp_path / "d.yaml"
    file2.write_text(dump_config(cfg))
    assert load_config(file2) == cfg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rounds": -1}, "rounds"),
        ({"acquisition": {"strategy": "magic"}}, "acquisition.strategy"),
        ({"oracle": {"relax": {"fmax": 0}}}, "oracle.relax.fmax"),
        ({"generate": {"require_any": ["Xx"]}}, "unknown element"),
        ({"campaign": "Bad Name!"}, "campaign"),
        ({"seeds": []}, "seeds"),
        ({"batch_sise": 3}, "batch_sise"),
        ({"oracle": {"relax": {"potential": "magicnet"}}}, "unknown potential"),
        ({"labeler": "magic"}, "unknown labeler 'magic'"),
        ({"source": "magic"}, "unknown candidate source 'magic'"),
        ({"generate": {"generators": ["magic"]}}, "unknown generator 'magic'"),
        ({"targets": ["ind_gap"]}, "labeler 'relax' provides targets"),
        ({"acquisition": {"seed": -1}}, "acquisition.seed"),
        ({"database": "a.b"}, "database"),
    ],
)
def test_invalid_values_give_one_line(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        build_config(data)
    assert "\n" not in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("rounds: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


def test_oracle_key_and_seed_single_point() -> None:
    cfg = LoopConfig()
    assert cfg.oracle.key().startswith("chgnet+sevennet:7net-l3i5|") and cfg.oracle.key() == LoopConfig().oracle.key()
    assert cfg.oracle.relax_config(seeds=True).max_steps == 0
    assert cfg.oracle.relax_config().max_steps == 200
    relaxed = build_config({"oracle": {"relax_seeds": True}})
    assert relaxed.oracle.relax_config(seeds=True).max_steps == 200
    assert relaxed.oracle.key() != cfg.oracle.key()


@pytest.mark.parametrize(
    "relax", [{"max_force_abort": 20.0}, {"max_volume_change": 0.3}, {"min_distance": 0.4}, {"timeout_s": 60.0}]
)
def test_every_relax_setting_is_part_of_the_labeler_key(relax: dict) -> None:
    """Results computed under other failure checks are not reused (the hand-written key forgot these)."""
    from loop.plan import build_plan

    default = build_plan(LoopConfig()).labeler.key
    assert build_plan(build_config({"oracle": {"relax": relax}})).labeler.key != default
    assert build_plan(build_config({"oracle": {"batch_size": 2}})).labeler.key == default  # speed only
