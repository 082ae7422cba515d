"""The project's learned, property-conditioned generator (``learned``): the Wyckoff transformer of
:mod:`generation.wyckoff_model`, sampled by :mod:`generation.sampling`, its weights in the model registry.

A model is registered as ``<name>-v<k>`` (campaign ``models:<name>``, architecture ``wyckoff-transformer``) with
its folder (``generator.pt``, a state dict loaded with ``weights_only=True``, and ``generator.json``), the
training data hash and its validation NLL; :func:`ensure_generator` trains one on first use (the generator
calls it, so a loop or a command that names ``learned`` trains the model once, then reuses it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

from core.errors import ConfigError
from core.expressions import TargetExpression
from core.paths import subdir
from generation.base import Candidate, GenerationRequest
from generation.conditions import CONDITION_NAMES
from generation.config import GenerateConfig
from generation.data import TrainingRow, training_rows
from generation.registry import GENERATORS
from generation.sampling import (
    MAX_DRAWS_PER_SAMPLE,
    gap_classes_for,
    sample_candidates,
    sample_sequences,
)
from generation.wyckoff_model import (
    ALKALI,
    GAP_BINS,
    VOCAB,
    LearnedConfig,
    TrainedGenerator,
    WyckoffTransformer,
    encode_rows,
    train_generator,
)

__all__ = [
    "ALKALI",
    "GAP_BINS",
    "MAX_DRAWS_PER_SAMPLE",
    "VOCAB",
    "LearnedConfig",
    "LearnedGenerator",
    "TrainedGenerator",
    "WyckoffTransformer",
    "default_training_rows",
    "encode_rows",
    "ensure_generator",
    "find_generator",
    "gap_classes_for",
    "generator_folder",
    "load_registered",
    "next_version",
    "register_generator",
    "sample_candidates",
    "sample_sequences",
    "train_generator",
]
#: Registry campaign prefix of named models (the same as ``surrogates.registry.CAMPAIGN_PREFIX``).
MODEL_CAMPAIGN_PREFIX = "models:"


def default_training_rows() -> list[TrainingRow]:
    """MP-20 and MPTS-52 validation files (the structures the model is trained on by default)."""
    return training_rows(("mp_20", "mpts_52"))


def next_version(store: Any, name: str) -> int:
    """1 + the newest registered version of generator ``name`` (1 if none)."""
    latest = store.latest_model(f"{MODEL_CAMPAIGN_PREFIX}{name}")
    return 1 if latest is None else latest.round + 1


def generator_folder(name: str, version: int) -> Path:
    """Where version ``version`` of generator ``name`` is saved: ``<data home>/models/generators/<name>-v<k>``."""
    return subdir("models") / "generators" / f"{name}-v{version}"


def register_generator(store: Any, name: str, folder: Path, gen: TrainedGenerator) -> str:
    """Register a saved generator as version k+1 of ``name`` in the store's model registry; returns its id."""
    from store.documents import ModelDoc

    campaign = f"{MODEL_CAMPAIGN_PREFIX}{name}"
    version = next_version(store, name)
    model_id = f"{name}-v{version}"
    store.register_model(
        ModelDoc(
            _id=model_id,
            campaign=campaign,
            round=version,
            name=name,
            version=version,
            property_name="crystal structures (generator)",
            unit="Wyckoff sequences conditioned on band-gap class (eV) and alkali content",
            architecture="wyckoff-transformer",
            n_members=1,
            path=str(Path(folder).resolve()),
            n_train=int(gen.meta["n_train"]),
            metrics={"val_nll": gen.meta["val_nll"], "train_loss": gen.meta["train_loss"]},
            config=asdict(gen.config),
            hyperparameters=asdict(gen.config),
            dataset="+".join(gen.meta["sources"]),
            data_hash=str(gen.meta["data_hash"]),
        )
    )
    return model_id


def find_generator(store: Any, name: str) -> tuple[str, Path] | None:
    """(model id, folder) of the newest registered version of ``name``, or None."""
    doc = store.latest_model(f"{MODEL_CAMPAIGN_PREFIX}{name}")
    return None if doc is None else (doc.id, Path(doc.path))


def ensure_generator(
    store: Any,
    name: str,
    *,
    config: LearnedConfig | None = None,
    encode_progress: Callable[[int, int], None] | None = None,
    step_progress: Callable[[int, int, float], None] | None = None,
) -> str:
    """Id of the newest registered model of ``name``; when there is none (or its folder is gone), train one on the
    default training files (MP-20 and MPTS-52), save it and register it first."""
    found = find_generator(store, name)
    if found is not None and Path(found[1]).is_dir():
        return found[0]
    gen = train_generator(
        default_training_rows(), config or LearnedConfig(), encode_progress=encode_progress, step_progress=step_progress
    )
    folder = gen.save(generator_folder(name, next_version(store, name)))
    return register_generator(store, name, folder, gen)


_LOADED: dict[str, TrainedGenerator] = {}


def load_registered(store: Any, name: str) -> tuple[str, TrainedGenerator]:
    """The newest version of generator ``name`` (cached per process); ModelNotFoundError when none."""
    from core.errors import ModelNotFoundError

    found = find_generator(store, name)
    if found is None:
        raise ModelNotFoundError(f"no generator model {name!r} in the registry; 'battery-discovery generate "
                                 f"--generator learned' trains one")  # fmt: skip
    model_id, folder = found
    if model_id not in _LOADED:
        _LOADED[model_id] = TrainedGenerator.load(folder)
    return model_id, _LOADED[model_id]


@GENERATORS.register("learned")
class LearnedGenerator:
    """Samples of the registered Wyckoff transformer (``learned_model``), conditioned on ``request.condition``
    (band gap, eV) and ``require_any`` (Li / Na), from the model registry of ``request.store``."""

    #: What a campaign's objectives and constraints may condition (a loop passes their condition on these).
    condition_names: ClassVar[tuple[str, ...]] = CONDITION_NAMES

    @staticmethod
    def check_condition(condition: TargetExpression) -> None:
        """ConfigError when no band-gap class satisfies ``condition`` (or it names another property)."""
        gap_classes_for(condition)

    def generate(self, request: GenerationRequest, config: GenerateConfig) -> list[Candidate]:
        """``request.n`` samples (training and registering the model first when there is none); those PyXtal cannot
        build are dropped."""
        if request.store is None:
            raise ConfigError("the learned generator needs the store holding its model (GenerationRequest.store)")
        ensure_generator(request.store, config.learned_model)
        model_id, gen = load_registered(request.store, config.learned_model)
        return sample_candidates(gen, request, config, version=model_id)
