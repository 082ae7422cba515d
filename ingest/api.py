"""``load_dataset(spec)``: resolve a spec, reuse the processed cache or parse and clean, and ``split_ids``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.cache import cache_key, cache_path, read_cached, write_cached
from ingest.cleaning import clean
from ingest.records import Dataset, DatasetError
from ingest.report import CleaningConfig
from ingest.sources.base import SourcePlan


def _planners() -> dict[str, Callable[[str, Path | None], SourcePlan]]:
    from ingest.sources import liverpool, local, matbench, mp, mp20, obelix, perov5

    return {
        "perov5": perov5.plan,
        "obelix": obelix.plan,
        "folder": local.plan_folder,
        "csv": local.plan_csv,
        "extxyz": local.plan_extxyz,
        "matbench": matbench.plan,
        "mp": mp.plan,
        "mp20": mp20.plan_mp20,
        "mpts52": mp20.plan_mpts52,
        "liverpool": liverpool.plan,
        "obelix-liverpool": liverpool.plan_combined,
    }


SPEC_HELP = (
    "perov5:val|train|test or perov5:PATH.csv, obelix or obelix:DIR, folder:DIR, csv:PATH, extxyz:PATH, "
    "matbench:<name> (e.g. matbench:mp_gap), mp:<query> (e.g. mp:Li-Fe-O), mp20:val|train|test or mp20:PATH, "
    "mpts52:val|train|test or mpts52:PATH, liverpool or liverpool:PATH.csv, obelix-liverpool or obelix-liverpool:DIR"
)


_NO_ARGUMENT = ("obelix", "perov5", "mp20", "mpts52", "liverpool", "obelix-liverpool")
"""Kinds usable without ``:argument`` (their default split or cached download)."""


def parse_spec(spec: str) -> tuple[str, str]:
    """``kind:argument`` -> (kind, argument); a clear error for anything else."""
    kind, sep, arg = spec.strip().partition(":")
    kinds = _planners()
    if kind not in kinds or (not sep and kind not in _NO_ARGUMENT):
        raise DatasetError(f"unknown data set spec {spec!r}; use {SPEC_HELP}")
    return kind, arg.strip()


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """A data set with where its processed cache is and whether it was reused."""

    dataset: Dataset
    cache_path: Path
    reused: bool


def load(
    spec: str,
    *,
    cache_dir: Path | None = None,
    cleaning: CleaningConfig | None = None,
    progress: bool = False,
    use_cache: bool = True,
) -> LoadResult:
    """:func:`load_dataset` that also says which processed file was used and whether it was reused."""
    kind, arg = parse_spec(spec)
    cfg = cleaning or CleaningConfig()
    plan = _planners()[kind](arg, cache_dir)
    key = cache_key(plan.name, plan.files, cfg, plan.params)
    path = cache_path(plan.name, key)
    if use_cache:
        cached = read_cached(path)
        if cached is not None:
            return LoadResult(dataset=cached, cache_path=path, reused=True)
    dataset = clean(plan.read(progress), cfg, progress=progress)
    if use_cache:
        write_cached(path, dataset)
    return LoadResult(dataset=dataset, cache_path=path, reused=False)


def load_dataset(spec: str, *, cache_dir: Path | None = None, cleaning: CleaningConfig | None = None) -> Dataset:
    """Load, clean and cache a data set.

    Specs: ``perov5:val`` (or ``train``/``test``: download into the raw cache; ``cache_dir`` may point at a local
    copy holding ``perov_5/val.csv``), ``perov5:PATH.csv``, ``obelix`` / ``obelix:DIR``, ``folder:DIR``,
    ``csv:PATH``, ``extxyz:PATH``, ``matbench:mp_gap``, ``mp:<query>``, ``mp20:val`` / ``mpts52:val`` (or a
    PATH; ``cache_dir`` may hold ``mp_20_biternary/val.csv.gz``, ``mpts_52/val.csv.gz``), ``liverpool[:PATH]``,
    ``obelix-liverpool[:DIR]``. The cleaned result is cached under
    ``processed_dir()`` and rebuilt when an input file or the cleaning settings change.
    """
    return load(spec, cache_dir=cache_dir, cleaning=cleaning).dataset


def split_ids(
    dataset: Dataset, *, seed: int = 0, test_fraction: float = 0.2, official: bool = False
) -> dict[str, list[str]]:
    """``{"train": ids, "test": ids}``: a random split with a fixed seed (the same ids for the same data set, seed
    and fraction), or, with ``official=True``, the data set's official split when it has one (OBELiX)."""
    if official and dataset.splits:
        return {k: list(v) for k, v in dataset.splits.items()}
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction}")
    ids = sorted(dataset.ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_test = max(1, round(len(ids) * test_fraction)) if len(ids) > 1 else 0
    test = {ids[i] for i in order[:n_test]}
    return {"train": [i for i in dataset.ids if i not in test], "test": [i for i in dataset.ids if i in test]}
