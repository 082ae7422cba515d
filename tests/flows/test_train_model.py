"""The train-property-model flow registers a model and attaches its metrics and plots to the run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flows.train_model import plots_markdown, train_property_model_flow
from store import open_store
from surrogates.config import EnsembleConfig

pytestmark = pytest.mark.slow


def test_flow_registers_the_model_and_attaches_artifacts(
    prefect_harness: None, shared_data: Path, tmp_path: Path
) -> None:
    rows = pd.read_csv(shared_data / "perov_5" / "val.csv", nrows=120)
    csv = tmp_path / "perov.csv"
    rows.to_csv(csv, index=False)
    out = train_property_model_flow(
        dataset=f"perov5:{csv}",
        property_name="heat_all",
        name="flow-heat",
        ensemble=EnsembleConfig(n_members=2, epochs=3, batch_size=32),
        store_uri="mongomock://train-flow",
    )
    assert out["model"] == "flow-heat-v1" and out["version"] == 1
    doc = open_store("mongomock://train-flow", "battery_discovery").get_model("flow-heat-v1")
    assert doc is not None and doc.property_name == "heat_all" and doc.n_members == 2
    assert doc.metrics["dummy_mae"] > 0 and "mae" in doc.metrics
    models = [row["model"] for row in out["table"]]
    assert models == ["dummy mean", "baseline (random_forest)", "single megnet (member 0)", "ensemble of 2"]
    assert len(out["plots"]) == 3 and all(Path(p).stat().st_size > 5_000 for p in out["plots"])

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts(limit=200)}
    assert {"flow-heat-v1-metrics", "flow-heat-v1-plots"} <= keys
    markdown = plots_markdown("t", [Path(p) for p in out["plots"]])
    assert markdown.count("data:image/png;base64,") == 3
