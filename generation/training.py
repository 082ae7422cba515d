"""Train-on-first-use of learned generators: find the registered model, or train, save and register one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.paths import subdir
from generation.learned import (
    LearnedConfig,
    TrainedGenerator,
    default_training_rows,
    find_generator,
    register_generator,
    train_generator,
)


def generator_folder(name: str, version: int) -> Path:
    """Where version ``version`` of generator ``name`` is saved: ``<data home>/models/generators/<name>-v<k>``."""
    return subdir("models") / "generators" / f"{name}-v{version}"


def ensure_generator(
    store: Any,
    name: str,
    *,
    config: LearnedConfig | None = None,
    encode_progress: Callable[[int, int], None] | None = None,
    step_progress: Callable[[int, int, float], None] | None = None,
) -> str:
    """Id of the newest registered model of ``name``; when there is none, train one on the default training files
    (MP-20 and MPTS-52), save it and register it first."""
    found = find_generator(store, name)
    if found is not None and Path(found[1]).is_dir():
        return found[0]
    gen: TrainedGenerator = train_generator(
        default_training_rows(), config or LearnedConfig(), encode_progress=encode_progress, step_progress=step_progress
    )
    latest = store.latest_model(f"models:{name}")
    folder = gen.save(generator_folder(name, 1 if latest is None else latest.round + 1))
    return register_generator(store, name, folder, gen)
