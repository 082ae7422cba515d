"""The strategy registry: a plug-in is one function and one decorator line; names are unique; no cycles."""

from __future__ import annotations

import subprocess
import sys

import grimp
import numpy as np
import pytest
import torch

from acquisition import STRATEGIES, AcquisitionConfig, AcquisitionProblem, Scorer, select, static_scorer
from acquisition.config import parse_acquisition_config
from core.errors import ConfigError
from core.registry import DuplicateRegistrationError

BUILT_IN = ["greedy", "logei", "qlognehvi", "random", "target_probability", "thompson", "ucb"]


def test_the_built_in_strategies_are_registered() -> None:
    assert STRATEGIES.names() == BUILT_IN


def test_a_toy_strategy_is_one_function_and_one_decorator() -> None:
    @STRATEGIES.register("toy_last_first")
    def strategy_last_first(problem: AcquisitionProblem) -> Scorer:
        """The highest pool index first; the reported value is the index."""
        return static_scorer(torch.arange(problem.n_pool, dtype=torch.double))

    try:
        cfg = parse_acquisition_config({"strategy": "toy_last_first"})
        assert AcquisitionConfig.model_json_schema()["properties"]["strategy"]["enum"] == sorted(
            [*BUILT_IN, "toy_last_first"]
        )
        sel = select(np.zeros((2, 5, 1)), 3, cfg, outcome_names=["x"])
        assert sel.strategy == "toy_last_first" and sel.indices == [4, 3, 2] and sel.values == [4.0, 3.0, 2.0]
    finally:
        STRATEGIES.remove("toy_last_first")
    assert "toy_last_first" not in STRATEGIES
    with pytest.raises(ConfigError, match=r"acquisition\.strategy: unknown strategy 'toy_last_first'"):
        parse_acquisition_config({"strategy": "toy_last_first"})


@pytest.mark.parametrize("name", BUILT_IN)
def test_registering_a_built_in_name_twice_raises(name: str) -> None:
    original = STRATEGIES.get(name)
    with pytest.raises(DuplicateRegistrationError, match=f"acquisition strategy '{name}' is already registered"):

        @STRATEGIES.register(name)
        def impostor(problem: AcquisitionProblem) -> Scorer:
            return static_scorer(torch.zeros(problem.n_pool, dtype=torch.double))

    assert STRATEGIES.get(name) is original


def test_unknown_strategy_lookup_names_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="unknown acquisition strategy 'magic'; registered: greedy, logei"):
        STRATEGIES.get("magic")


def test_config_alone_sees_the_built_in_strategies_in_a_fresh_interpreter() -> None:
    code = (
        "from acquisition.config import AcquisitionConfig\n"
        "print(AcquisitionConfig(strategy='ucb').strategy, AcquisitionConfig(strategy='qlognehvi',"
        " objectives=[{'name': 'a'}, {'name': 'b'}]).strategy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["ucb", "qlognehvi"]


def test_config_checks_names_against_the_registry_module_only() -> None:
    """The config needs the registry, never a strategy; the registry needs only core.registry (no cycle)."""
    graph = grimp.build_graph("acquisition", "core")
    project = ("acquisition", "core")
    config_imports = {m for m in graph.find_modules_directly_imported_by("acquisition.config") if m.startswith(project)}
    assert {m for m in config_imports if m.startswith("acquisition")} == {"acquisition.registry"}
    registry_imports = graph.find_modules_directly_imported_by("acquisition.registry")
    assert {m for m in registry_imports if m.startswith(project)} == {"core.registry"}
    for strategy_module in ("acquisition.botorch_strategies", "acquisition.direct_strategies"):
        assert not graph.chain_exists(importer="acquisition.config", imported=strategy_module)
