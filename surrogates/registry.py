"""The model registry: where trained models live on disk and how the store's ``models`` collection records them.

Two kinds of model share one collection (:class:`store.documents.ModelDoc`) and one folder layout:

- *loop models*, trained at the end of a discovery round: id ``<campaign>-r<round>``
  (:func:`loop_model_id`), ``campaign`` the campaign, ``round`` the round; one :class:`GNNEnsemble` per
  target (:func:`register_loop_model`, :func:`load_ensembles`, :func:`loop_model_complete`);
- *property models* ``NAME`` trained on public data: id ``'<name>-v<version>'`` (:func:`model_id`),
  ``campaign='models:NAME'`` and ``round=version``, so the loop's queries by campaign never see them, and the
  newest version is ``store.latest_model('models:NAME')`` (:func:`register_property_model`,
  :func:`resolve_model`).

Folder layout (new models; the folder of every model is stored in ``ModelDoc.path``, so older models keep
loading from wherever they were written)::

    <data home>/models/<database>/<model id>/     model_dir(database, model_id)
        ensemble.json, member_<k>/                  loop model with one target: the folder is the ensemble
        <target>/ensemble.json, <target>/member_<k>/  loop model with several targets: one ensemble each
        ensemble/, baseline.pkl, model.json, ...    property model (see surrogates.workflow)

:func:`ensemble_dirs` gives a loop model's per-target folders.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import __version__
from core.errors import ConfigError, ModelNotFoundError
from core.paths import subdir

from .persistence import ENSEMBLE_FILE

if TYPE_CHECKING:
    from store.documents import ModelDoc
    from store.repository import CandidateStore

    from .config import EnsembleConfig
    from .ensemble import GNNEnsemble

__all__ = [
    "CAMPAIGN_PREFIX",
    "campaign_of",
    "check_name",
    "ensemble_dirs",
    "load_ensembles",
    "loop_model_complete",
    "loop_model_id",
    "model_dir",
    "model_id",
    "next_version",
    "register_loop_model",
    "register_property_model",
    "resolve_model",
]

CAMPAIGN_PREFIX = "models:"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSIONED = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")


# ------------------------------------------------------------------------------------ layout


def model_dir(database: str, model: str) -> Path:
    """The folder of model id ``model`` of store database ``database``: ``<data home>/models/<database>/<model>``.

    Not created here (the writer does).
    """
    return subdir("models") / database / model


def ensemble_dirs(root: Path | str, targets: Sequence[str]) -> list[Path]:
    """Where each target's ensemble of a loop model lives: ``root`` itself for one target, else ``root/<target>``."""
    root = Path(root)
    return [root] if len(targets) == 1 else [root / t for t in targets]


# -------------------------------------------------------------------------------- loop models


def loop_model_id(campaign: str, round_index: int) -> str:
    """Registry id of the model trained in round ``round_index`` of ``campaign``: ``'<campaign>-r<round>'``."""
    return f"{campaign}-r{round_index}"


def load_ensembles(model: ModelDoc, targets: Sequence[str]) -> list[GNNEnsemble]:
    """The ensembles of loop model ``model``, one per target in ``targets`` order.

    The folder holds one ensemble (a single target) or one subfolder per target; with one target and no
    ensemble at the root, the target's subfolder is read (a model trained on several targets).

    Raises:
        ModelNotFoundError: a target's ensemble is missing, incomplete or corrupt.
    """
    root = Path(model.path)
    dirs = ensemble_dirs(root, targets)
    if len(targets) == 1 and not (root / ENSEMBLE_FILE).is_file():
        dirs = [root / targets[0]]
    return [load_surrogate(d) for d in dirs]


def _families() -> Any:
    from . import descriptor_surrogate, ensemble  # noqa: F401  (each registers its family)
    from .families import SURROGATE_FAMILIES

    return SURROGATE_FAMILIES


def surrogate_family(config: Any) -> Any:
    """The registered family (a class with ``fit`` and ``load``) that an ``EnsembleConfig`` trains."""
    from .families import family_name

    return _families().get(family_name(config))


def load_surrogate(directory: Path | str) -> Any:
    """The loop surrogate saved in ``directory``: the first family other than ``gnn`` that recognizes the folder
    (its own files, e.g. a descriptor model's signed pickle), else the GNN ensemble (whose loader says what is
    wrong with a folder that holds neither)."""
    families = _families()
    for name in families.names():
        family = families.get(name)
        if name != "gnn" and family.recognizes(directory):
            return family.load(directory)
    return families.get("gnn").load(directory)


def loop_model_complete(model: ModelDoc | None, targets: Sequence[str]) -> bool:
    """True when ``model`` is registered and every target's folder holds a complete ensemble.

    ``ensemble.json`` is written last by ``GNNEnsemble.save``, so this is the resume check of a retrain: a
    crash while saving leaves it False.
    """
    if model is None:
        return False
    return all((d / ENSEMBLE_FILE).is_file() for d in ensemble_dirs(model.path, targets))


def _loop_metrics(ensemble: GNNEnsemble, what: str) -> dict[str, Any]:
    """The JSON-friendly training metrics of ``ensemble``; ModelNotFoundError if any is NaN/inf (diverged)."""
    metrics = {k: v for k, v in ensemble.metrics.items() if isinstance(v, int | float | str | bool | list)}
    if not all(math.isfinite(v) for v in metrics.values() if isinstance(v, float)):
        raise ModelNotFoundError(f"training {what} diverged (non-finite metrics {metrics})")
    return metrics


def register_loop_model(
    store: CandidateStore,
    *,
    campaign: str,
    round_index: int,
    database: str,
    ensembles: Mapping[str, GNNEnsemble],
    config: EnsembleConfig,
    n_train: int,
    version: str | None = None,
    code_version: str | None = None,
) -> ModelDoc:
    """Save a round's ensembles under :func:`model_dir` and register them; returns the registered document.

    Args:
        store: the campaign's store.
        campaign, round_index: the round that trained the model.
        database: the store's database name (the folder is ``<data home>/models/<database>/<id>``).
        ensembles: target -> its trained ensemble, in the campaign's target order.
        config: the settings they were trained with (recorded as ``ModelDoc.config``).
        n_train: labelled structures the round trained on (all targets together).
        version: the model id; default :func:`loop_model_id` ``(campaign, round_index)``.
        code_version: recorded with the model; default the installed package version.

    The document's ``metrics`` are the ensemble's metrics for one target, else ``{target: metrics}``;
    ``property_name`` is the targets joined with ``,``. Every ensemble is saved before the document is
    written, so a crash leaves no registered model without files.

    Raises:
        ConfigError: no ensembles.
        ModelNotFoundError: a training diverged (non-finite metrics): nothing is saved.
    """
    from store.documents import ModelDoc

    if not ensembles:
        raise ConfigError("register_loop_model needs at least one ensemble")
    version = version or loop_model_id(campaign, round_index)
    targets = list(ensembles)
    per_target = {target: _loop_metrics(ensemble, f"{version} ({target})") for target, ensemble in ensembles.items()}
    root = model_dir(database, version)
    for folder, ensemble in zip(ensemble_dirs(root, targets), ensembles.values(), strict=True):
        ensemble.save(folder)
    doc = ModelDoc(
        _id=version,
        campaign=campaign,
        round=round_index,
        property_name=",".join(targets),
        architecture=config.descriptor or config.architecture,
        n_members=config.n_members,
        path=str(root),
        n_train=n_train,
        metrics=per_target[targets[0]] if len(targets) == 1 else per_target,
        config=config.model_dump(),
        code_version=__version__ if code_version is None else code_version,
    )
    store.register_model(doc)
    return doc


# ---------------------------------------------------------------------------- property models


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
            n_members=n_members
            if meta["kind"] == "gnn"
            else int(meta.get("n_members", 0))
            if meta["kind"] == "descriptor"
            else 0,
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
