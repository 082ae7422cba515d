"""AcquisitionConfig: defaults stay valid, bad values are refused with one clear line, YAML and presets load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from acquisition import STRATEGIES, AcquisitionConfig, load_acquisition_config, preset_names, select
from acquisition.config import parse_acquisition_config
from core.errors import ConfigError
from loop.plan import build_config


def test_defaults_are_the_original_single_objective_config() -> None:
    cfg = AcquisitionConfig()
    assert (cfg.strategy, cfg.beta, cfg.maximize, cfg.num_samples, cfg.seed) == ("ucb", 2.0, False, 256, 0)
    assert cfg.objectives == () and cfg.constraints == () and not cfg.diversity.active
    assert cfg.posterior.kind == "ensemble" and cfg.posterior.spread_scale == 1.0
    (objective,) = cfg.effective_objectives(["formation_energy_per_atom"])
    assert (objective.name, objective.direction) == ("formation_energy_per_atom", "min")


def test_every_registered_strategy_is_accepted() -> None:
    two = [{"name": "a", "low": 0.0}, {"name": "b", "low": 0.0}]
    for name in STRATEGIES:
        assert AcquisitionConfig(strategy=name, objectives=two).strategy == name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"strategy": "magic"}, "acquisition.strategy: unknown strategy 'magic'; registered: greedy, logei"),
        ({"beta": -1}, "acquisition.beta: Input should be greater than or equal to 0"),
        ({"strategy": "qlognehvi", "objectives": [{"name": "a"}]}, "qlognehvi needs at least 2 objectives, got 1"),
        (
            {"objectives": [{"name": "band_gap", "direction": "window", "low": 4, "high": 2}]},
            "acquisition.objectives.0: objective 'band_gap': window low 4 > high 2",
        ),
        ({"objectives": [{"name": "g", "direction": "window", "low": 1}]}, "a window needs both low and high"),
        ({"constraints": [{"name": "e_above_hull", "op": "=<", "value": 0.05}]}, "acquisition.constraints.0.op"),
        ({"objectives": [{"name": "a", "direction": "up"}]}, "acquisition.objectives.0.direction"),
        ({"objectives": [{"name": "a"}, {"name": "a"}]}, "an outcome appears twice"),
        (
            {"strategy": "qlognehvi", "objectives": [{"name": "a"}, {"name": "b"}], "ref_point": [0.0]},
            "ref_point has 1 values for 2 objectives",
        ),
        (
            {"strategy": "target_probability", "objectives": [{"name": "heat_all", "direction": "min"}]},
            "objective 'heat_all' (min) needs a threshold 'high'",
        ),
        ({"diversity": {"max_per_key": 0}}, "acquisition.diversity.max_per_key"),
        ({"diversity": {"min_composition_distance": 2}}, "acquisition.diversity.min_composition_distance"),
        ({"posterior": {"kind": "forest"}}, "acquisition.posterior.kind"),
        ({"posterior": {"spread_scale": 0}}, "acquisition.posterior.spread_scale"),
        ({"betta": 1.0}, "acquisition.betta: Extra inputs are not permitted"),
        ({"probability": "ensemble", "posterior": {"kind": "gp"}}, "it needs posterior.kind 'ensemble'"),
        (
            {"posterior": {"kind": "gp", "recalibrate": True}},
            "acquisition.posterior: recalibrate scales the ensemble members' spread: it needs kind 'ensemble'",
        ),
        (
            {"posterior": {"kind": "gp", "spread_scale": 2.0}},
            "acquisition.posterior: spread_scale scales the ensemble members' spread: it needs kind 'ensemble'",
        ),
    ],
)
def test_invalid_configs_are_refused_with_one_line(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_acquisition_config(data)
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValidationError):
        AcquisitionConfig.model_validate(data)


def test_unknown_outcome_is_refused_when_outcomes_are_known() -> None:
    cfg = AcquisitionConfig(objectives=[{"name": "log10_conductivity"}])
    cfg.check_outcomes(["log10_conductivity", "band_gap"])
    with pytest.raises(ConfigError, match=r"objectives.0.name: unknown outcome 'log10_conductivity'; predicted"):
        cfg.check_outcomes(["formation_energy_per_atom"])


def test_yaml_file_and_loop_section(tmp_path: Path) -> None:
    file = tmp_path / "acq.yaml"
    file.write_text(
        "strategy: qlognehvi\n"
        "objectives:\n"
        "  - {name: band_gap, direction: window, low: 2, high: 4}\n"
        "  - {name: formation_energy_per_atom, direction: min}\n"
        "constraints: [{name: e_above_hull, op: '<=', value: 0.05}]\n"
        "ref_point: [1.0, 0.0]\n"
        "diversity: {max_per_key: 1}\n"
    )
    cfg = load_acquisition_config(file)
    assert cfg.strategy == "qlognehvi" and cfg.objectives[0].high == 4.0 and cfg.constraints[0].value == 0.05
    assert cfg.ref_point == (1.0, 0.0) and cfg.diversity.max_per_key == 1
    loop = tmp_path / "loop.yaml"
    loop.write_text("acquisition: {strategy: greedy, beta: 0}\n")
    assert load_acquisition_config(loop).strategy == "greedy"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("strategy: [", "not valid YAML"),
        ("- ucb\n", "expected a mapping"),
        ("strategy: ucb\nbeta: -3\n", "bad.yaml: invalid config value for acquisition.beta"),
    ],
)
def test_bad_yaml_files(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_acquisition_config(file)


def test_missing_file_and_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="acquisition config file not found"):
        load_acquisition_config("/no/such/acq.yaml")
    with pytest.raises(
        ConfigError, match=r"unknown acquisition preset 'nope'; presets: cathode, electrolyte, exploitation"
    ):
        load_acquisition_config("preset:nope")


def test_presets_load_and_mean_what_they_say() -> None:
    assert preset_names() == ["cathode", "electrolyte", "exploitation", "exploration"]
    electrolyte = load_acquisition_config("preset:electrolyte")
    assert [(o.name, o.direction) for o in electrolyte.objectives] == [("log10_conductivity", "max")]
    assert [(c.name, c.op, c.value) for c in electrolyte.constraints] == [
        ("band_gap", ">=", 3.0),
        ("e_above_hull", "<=", 0.05),
        ("stability_window_high_V", ">=", 2.5),
    ]
    cathode = load_acquisition_config("preset:cathode")
    assert cathode.strategy == "qlognehvi"
    assert [(o.name, o.direction) for o in cathode.objectives] == [
        ("energy_density_Wh_kg", "max"),
        ("e_above_hull", "min"),
    ]
    assert {c.name for c in cathode.constraints} == {"e_above_hull", "volume_change"}
    exploration = load_acquisition_config("preset:exploration")
    assert exploration.strategy == "ucb" and exploration.beta == 9.0 and exploration.diversity.max_per_key == 1
    assert load_acquisition_config("preset:exploitation").strategy == "logei"
    # exploration and exploitation work with the loop's single outcome
    for name in ("exploration", "exploitation"):
        load_acquisition_config(f"preset:{name}").check_outcomes(["formation_energy_per_atom"])


def test_electrolyte_preset_on_a_synthetic_pool() -> None:
    names = ["band_gap", "e_above_hull", "log10_conductivity", "stability_window_high_V"]
    # 0: most conductive but metallic; 1: conductive, insulating, stable, wide window; 2: unstable;
    # 3: stable, poor conductor; 4: conductive, insulating, stable, but oxidised at 2 V
    mean = np.array(
        [
            [0.5, 0.0, -1.0, 4.0],
            [4.0, 0.01, -2.0, 4.0],
            [5.0, 0.3, -1.5, 4.0],
            [6.0, 0.0, -6.0, 4.0],
            [4.0, 0.0, -1.8, 2.0],
        ]
    )
    members = mean[None] + np.linspace(-0.01, 0.01, 4)[:, None, None]
    cfg = load_acquisition_config("preset:electrolyte")
    observed = np.array([[5.0, 0.0, -5.0, 4.0]])
    sel = select(members, 2, cfg, outcome_names=names, observed=observed, keys=["A", "B", "C", "D", "E"])
    assert sel.indices[0] == 1 and sel.strategy == "logei"


def test_loop_config_and_flow_parameter_accept_the_nested_config() -> None:
    data = load_acquisition_config("preset:exploration").model_dump(mode="json")
    loop = build_config({"acquisition": data})
    assert loop.acquisition.diversity.min_composition_distance == 0.1
    with pytest.raises(ConfigError, match=r"acquisition.objectives.0: .*window low 3 > high 1"):
        build_config({"acquisition": {"objectives": [{"name": "g", "direction": "window", "low": 3, "high": 1}]}})


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("preset:nope", "unknown acquisition preset 'nope'"),
        ("/no/such.yaml", "acquisition config file not found"),
    ],
)
def test_cli_option_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    option: str,
    message: str,
    cli: Callable[..., int],
) -> None:
    assert cli("run", "--acquisition-config", option, "--store-uri", "mongomock://acq") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_cli_option_sets_the_flow_parameter(monkeypatch: pytest.MonkeyPatch, cli: Callable[..., int]) -> None:
    import importlib

    import battery_discovery.cli as cli_module

    loop_module = importlib.import_module("flows.discovery_loop")  # the package re-exports the flow by that name

    seen: dict[str, Any] = {}

    def fake_loop(**params: Any) -> dict[str, Any]:
        seen.update(params)
        return {"summaries": []}

    monkeypatch.setattr(loop_module, "discovery_loop", fake_loop)
    monkeypatch.setattr(cli_module, "_print_summary", lambda *a, **k: None)
    args = ("run", "--acquisition-config", "preset:exploration", "--strategy", "thompson")
    assert cli(*args, "--store-uri", "mongomock://acq", "--rounds", "0") == 0
    acquisition = seen["acquisition"]
    assert acquisition.strategy == "thompson" and acquisition.beta == 9.0  # --strategy wins over the file
    assert acquisition.diversity.max_per_key == 1


def test_json_schema_lists_the_registered_strategies() -> None:
    # the Prefect UI shows a dropdown; the server validates run parameters against this schema
    schema = AcquisitionConfig.model_json_schema()
    assert schema["properties"]["strategy"]["enum"] == sorted(STRATEGIES)
    assert {"objectives", "constraints", "diversity", "posterior", "ref_point"} <= set(schema["properties"])


def test_an_outcome_nobody_provides_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    acq = tmp_path / "acq.yaml"
    acq.write_text("objectives:\n  - {name: colour, direction: max}\n")
    assert cli("run", "--acquisition-config", str(acq), "--store-uri", "mongomock://acq") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "unknown outcome 'colour'" in err and "e_above_hull" in err
