"""The round's task runner: a local Dask cluster keeps its diagnostics dashboard on 127.0.0.1."""

from __future__ import annotations

from flows.discovery_loop import task_runner
from loop.config import LoopConfig


def test_local_dask_dashboard_binds_localhost() -> None:
    runner = task_runner(LoopConfig.model_validate({"runner": {"kind": "dask", "dask_workers": 2}}))
    assert runner.cluster_kwargs["dashboard_address"].startswith("127.0.0.1:")
