"""``train-property-model``: train, evaluate and register a property model as a Prefect flow run.

The same work as ``battery-discovery train``: both call ``surrogates.property_models.train_and_register``. The
run's Artifacts tab holds the metrics table (dummy, baseline and ensemble on the held-out split) and the parity,
error-histogram and calibration plots.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from surrogates.config import EnsembleConfig

#: The flow's default ensemble settings: ``battery-discovery train``'s defaults, except that members train on
#: bootstrap resamples here (the CLI's ``--bootstrap`` is off by default).
TRAIN_DEFAULTS = EnsembleConfig(batch_size=64, learning_rate=5e-3, lr_schedule="cosine", epochs=50, num_threads=1)


def _artifact_key(name: str, version: int, what: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return f"{slug}-v{version}-{what}"


def plots_markdown(title: str, plots: list[Path]) -> str:
    """Markdown with the PNG plots embedded (data URIs), so the Prefect UI shows them without a file server."""
    parts = [f"# {title}", ""]
    for path in plots:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        parts += [f"## {Path(path).stem.replace('_', ' ')}", f"![{Path(path).stem}](data:image/png;base64,{data})", ""]
    return "\n".join(parts)


@task(name="train-and-register")
def train_task(
    dataset: str,
    property_name: str,
    name: str,
    config: EnsembleConfig,
    use_gnn: bool,
    baseline: str,
    seed: int,
    store_uri: str,
    database: str,
) -> dict[str, Any]:
    """Load the data, train and evaluate, register; returns id, version, table and plot paths."""
    from store import open_store
    from surrogates.property_models import train_and_register

    trained = train_and_register(
        open_store(store_uri, database),
        dataset=dataset,
        property_name=property_name,
        name=name,
        config=config,
        database=database,
        use_gnn=use_gnn,
        baseline_kind=baseline,
        seed=seed,
        architecture=config.descriptor,  # a descriptor ensemble (e.g. "auto") instead of the GNN when set
    )
    return {
        "model": trained.model_id,
        "version": trained.version,
        "table": trained.result.table,
        "plots": [str(p) for p in trained.result.plots],
    }


@flow(name="train-property-model", log_prints=True)
def train_property_model_flow(
    dataset: str,
    property_name: str,
    name: str,
    ensemble: EnsembleConfig = TRAIN_DEFAULTS,
    use_gnn: bool = True,
    baseline: str = "random_forest",
    seed: int = 0,
    store_uri: str = "embedded",
    database: str = "battery_discovery",
) -> dict[str, Any]:
    """Train a GNN ensemble (and the dummy and baseline) on ``dataset``'s ``property_name``, register it as
    ``name`` (a new version each run), and attach the metrics and plots to this flow run."""
    out = train_task(dataset, property_name, name, ensemble, use_gnn, baseline, seed, store_uri, database)
    rows = [{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()} for row in out["table"]]
    create_table_artifact(
        key=_artifact_key(name, out["version"], "metrics"),
        table=rows,
        description=f"{out['model']}: {property_name} on the held-out split (dummy, baseline, ensemble)",
    )
    create_markdown_artifact(
        key=_artifact_key(name, out["version"], "plots"),
        markdown=plots_markdown(f"{out['model']}: {property_name} on {dataset}", [Path(p) for p in out["plots"]]),
        description="Parity, error histogram and calibration plots of the test split",
    )
    get_run_logger().info("registered %s (%d plots)", out["model"], len(out["plots"]))
    return out
