"""Named, versioned property models in the store's model registry (``models`` collection).

A property model ``NAME`` trained on public data is registered as a :class:`store.documents.ModelDoc` with
``campaign='models:NAME'`` and ``round=version``, so the loop's queries by campaign never see it, and the
newest version is ``store.latest_model('models:NAME')``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, ModelNotFoundError

if TYPE_CHECKING:
    from store.documents import ModelDoc
    from store.repository import CandidateStore

__all__ = ["CAMPAIGN_PREFIX", "campaign_of", "check_name", "model_id", "next_version", "resolve_model"]

CAMPAIGN_PREFIX = "models:"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSIONED = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid model name (letters, digits, ``_.-``; 1-64 chars), else ConfigError."""
    if not _NAME.match(name):
        raise ConfigError(f"model name {name!r} must be 1-64 letters, digits, '_', '.' or '-', starting alphanumeric")
    return name


def campaign_of(name: str) -> str:
    """The registry campaign of model ``name``."""
    return f"{CAMPAIGN_PREFIX}{name}"


def model_id(name: str, version: int) -> str:
    """Registry id of version ``version`` of ``name``: ``'<name>-v<version>'``."""
    return f"{name}-v{version}"


def next_version(store: CandidateStore, name: str) -> int:
    """1 + the newest registered version of ``name`` (1 if none)."""
    latest = store.latest_model(campaign_of(name))
    return 1 if latest is None else latest.round + 1


def resolve_model(store: CandidateStore, ref: str) -> ModelDoc:
    """The registered model ``ref``: a name (newest version), ``'<name>-v<k>'``, or a loop model id.

    Raises:
        ModelNotFoundError: nothing registered under that reference.
    """
    latest = store.latest_model(campaign_of(ref))
    if latest is not None:
        return latest
    doc = store.get_model(ref)
    if doc is not None:
        return doc
    match = _VERSIONED.match(ref)
    hint = f" (versions of {match['name']!r} exist)" if match and store.latest_model(campaign_of(match["name"])) else ""
    raise ModelNotFoundError(
        f"no model {ref!r} in the registry{hint}; train one with 'battery-discovery train --name {ref}'"
    )


def register_property_model(
    store: CandidateStore,
    *,
    name: str,
    version: int,
    dataset: str,
    property_name: str,
    directory: Path,
    meta: dict[str, Any],
    n_members: int,
) -> str:
    """Register a trained property model (``meta`` from ``train_property_model``); returns its id."""
    from store.documents import ModelDoc

    folder = Path(directory).resolve()
    store.register_model(
        ModelDoc(
            _id=model_id(name, version),
            campaign=campaign_of(name),
            round=version,
            name=name,
            version=version,
            property_name=property_name,
            unit=str(meta["unit"]),
            architecture=str(meta["architecture"]),
            n_members=n_members if meta["kind"] == "gnn" else 0,
            path=str(folder),
            n_train=int(meta["split"]["n_train"]),
            metrics={
                **meta["metrics"]["test"],
                "dummy_mae": meta["metrics"]["dummy_mae"],
                "baseline_mae": meta["metrics"]["baseline_mae"],
                "std_scale": meta["std_scale"],
            },
            config=meta["config"],
            hyperparameters=meta["config"],
            dataset=dataset,
            data_hash=str(meta["data_hash"]),
            split={**meta["split"], "ids_file": str(folder / "split.json")},
        )
    )
    return model_id(name, version)
