"""Public data sets in: loaders, cleaning with a report, a preprocessing cache, seeding the store.

Names are imported on first use (``from ingest import load_dataset``), so ``import ingest`` stays cheap
for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Record": "ingest.records",
    "Dataset": "ingest.records",
    "DatasetError": "ingest.records",
    "CleaningConfig": "ingest.report",
    "CleaningReport": "ingest.report",
    "Issue": "ingest.report",
    "load_dataset": "ingest.api",
    "split_ids": "ingest.api",
    "processed_dir": "ingest.paths",
    "raw_dir": "ingest.paths",
    "seed_store": "ingest.seed",
}

if TYPE_CHECKING:
    from ingest.api import load_dataset, split_ids
    from ingest.paths import processed_dir, raw_dir
    from ingest.records import Dataset, DatasetError, Record
    from ingest.report import CleaningConfig, CleaningReport, Issue
    from ingest.seed import seed_store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ingest' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "CleaningConfig",
    "CleaningReport",
    "Dataset",
    "DatasetError",
    "Issue",
    "Record",
    "load_dataset",
    "processed_dir",
    "raw_dir",
    "seed_store",
    "split_ids",
]
