"""The on-disk format of one trained ensemble (what ``GNNEnsemble.save`` writes and ``load`` reads).

An ensemble folder holds::

    <dir>/member_<k>/      matgl's save format of member k = 0..K-1 (model.pt, state.pt, model.json)
    <dir>/ensemble.json    format version, property name, model version, EnsembleConfig, target mean and
                           std (target units), training metrics, matgl and torch versions

``ensemble.json`` is written last and atomically, so its presence marks a complete ensemble (the model
registry's resume check relies on it). Importing this module is cheap: matgl and torch are imported by
the functions that need them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from core.errors import ModelNotFoundError
from core.validation import describe_validation_error

from .config import EnsembleConfig

if TYPE_CHECKING:
    import torch

__all__ = ["ENSEMBLE_FILE", "FORMAT_VERSION", "EnsembleParts", "read_ensemble", "write_ensemble"]

#: Metadata file written next to the ``member_<k>/`` folders.
ENSEMBLE_FILE = "ensemble.json"
#: Version of the on-disk layout written by :func:`write_ensemble`.
FORMAT_VERSION = 1
_MATGL_FILES = ("model.pt", "state.pt", "model.json")


@dataclass(frozen=True, kw_only=True)
class EnsembleParts:
    """Everything an ensemble folder stores: ``K`` members and their metadata (targets in original units)."""

    members: Sequence[torch.nn.Module]
    config: EnsembleConfig
    property_name: str
    version: str
    target_mean: float
    target_std: float
    metrics: dict[str, Any] = field(default_factory=dict)


def write_ensemble(directory: Path | str, parts: EnsembleParts) -> Path:
    """Write ``member_<k>/`` (matgl format) and then ``ensemble.json`` into ``directory``; returns it."""
    import matgl
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for k, member in enumerate(parts.members):
        member.save(directory / f"member_{k}", metadata={"property_name": parts.property_name, "member": k})  # type: ignore[operator]
    meta = {
        "format_version": FORMAT_VERSION,
        "property_name": parts.property_name,
        "version": parts.version,
        "config": parts.config.model_dump(mode="json"),
        "target_mean": parts.target_mean,
        "target_std": parts.target_std,
        "metrics": parts.metrics,
        "matgl_version": matgl.__version__,
        "torch_version": torch.__version__,
    }
    tmp = directory / f".{ENSEMBLE_FILE}.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, directory / ENSEMBLE_FILE)
    return directory


def read_ensemble(directory: Path | str) -> EnsembleParts:
    """Read a folder written by :func:`write_ensemble` (members in eval mode are up to the caller).

    Raises:
        ModelNotFoundError: the directory, ``ensemble.json`` or a member's files are missing or corrupt.
    """
    from .members import MODEL_CLASSES

    directory = Path(directory).expanduser().resolve()
    meta_path = directory / ENSEMBLE_FILE
    if not meta_path.is_file():
        raise ModelNotFoundError(f"no trained surrogate at {directory}: {ENSEMBLE_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text())
        if int(meta["format_version"]) > FORMAT_VERSION:
            raise ValueError(f"format_version {meta['format_version']} is newer than this code supports")
        config = EnsembleConfig.model_validate(meta["config"])
        property_name, version = str(meta["property_name"]), str(meta["version"])
        target_mean, target_std = float(meta["target_mean"]), float(meta["target_std"])
        metrics = dict(meta.get("metrics") or {})
    except ValidationError as exc:
        why = describe_validation_error(exc, what="ensemble config")
        raise ModelNotFoundError(f"surrogate metadata {meta_path} is unreadable or corrupt: {why}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(f"surrogate metadata {meta_path} is unreadable or corrupt: {exc}") from exc
    model_cls = MODEL_CLASSES[config.architecture]
    members = []
    for k in range(config.n_members):
        member_dir = directory / f"member_{k}"
        missing = [name for name in _MATGL_FILES if not (member_dir / name).is_file()]
        if missing:
            raise ModelNotFoundError(f"surrogate at {directory} is incomplete: member_{k} lacks {', '.join(missing)}")
        try:
            members.append(model_cls.load(member_dir))  # type: ignore[attr-defined]
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise ModelNotFoundError(
                f"cannot load surrogate member {member_dir}: {type(exc).__name__}: {reason}".rstrip(": ")
            ) from exc
    return EnsembleParts(
        members=members,
        config=config,
        property_name=property_name,
        version=version,
        target_mean=target_mean,
        target_std=target_std,
        metrics=metrics,
    )
