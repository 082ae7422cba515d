"""``GNNEnsemble``: ``K`` MatGL GNN regressors of one scalar property, trained together on CPU.

This module is the public API (:meth:`GNNEnsemble.fit`, :meth:`~GNNEnsemble.predict_members`,
:meth:`~GNNEnsemble.predict_graphs`, :meth:`~GNNEnsemble.save`, :meth:`~GNNEnsemble.load`); the parts live in

- :mod:`surrogates.members`: input checks, building a member, the joint ``(K, B)`` module (for MEGNet the
  vectorised :class:`surrogates.stacked.StackedMEGNet`);
- :mod:`surrogates.trainer`: the training loop (per-member sample weights, early stopping);
- :mod:`surrogates.persistence`: the folder format (``member_<k>/`` + ``ensemble.json``).

Members are independent models (own weights, seeds, optional bootstrap weights, own best epoch). Graphs come
packed (:mod:`surrogates.graphs`), optionally from the on-disk cache.

Shapes: ``n`` structures, ``K`` members, ``B`` structures per batch. Targets are standardised with the
training split's mean and std; every public number is in the target's original units.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matgl.config import DEFAULT_ELEMENTS
from pymatgen.core import Structure

from core.errors import ConfigError, ModelNotFoundError
from core.threads import torch_threads
from surrogates.families import SURROGATE_FAMILIES

from .config import MIN_STRUCTURES_FOR_VALIDATION, EnsembleConfig
from .graphs import PackedGraphs, build_graphs
from .members import build_model, check_structures, joint_model, n_parameters, predict_joint
from .persistence import ENSEMBLE_FILE, FORMAT_VERSION, EnsembleParts, read_ensemble, write_ensemble
from .protocols import Prediction
from .trainer import train_joint

__all__ = ["ENSEMBLE_FILE", "FORMAT_VERSION", "GNNEnsemble", "check_structures"]


def _validate_training_data(structures: Sequence[Structure], targets: Sequence[float]) -> np.ndarray:
    """Check the training set; returns targets as ``(n,)`` float64."""
    if len(structures) != len(targets):
        raise ConfigError(f"got {len(structures)} structures but {len(targets)} targets; they must match")
    if len(structures) < 2:
        raise ConfigError(f"need at least 2 labelled structures to train a surrogate, got {len(structures)}")
    try:
        y = np.asarray(targets, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"targets must be real numbers: {exc}") from exc
    if y.shape != (len(structures),):
        raise ConfigError(f"targets must be one number per structure, got shape {np.shape(targets)}")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ConfigError(f"{bad.size} target(s) are NaN or infinite (first at index {int(bad[0])}); drop or fix them")
    check_structures(structures)
    return y


def _graphs_for(structures: list[Structure], config: EnsembleConfig, graphs: PackedGraphs | None) -> PackedGraphs:
    """``graphs`` when they match the structures and ``config.cutoff`` (ConfigError when not), else built here."""
    n = len(structures)
    if graphs is None:
        return build_graphs(structures, config.cutoff, DEFAULT_ELEMENTS)
    if len(graphs) != n or abs(graphs.cutoff - config.cutoff) > 1e-9:
        raise ConfigError(
            f"graphs ({len(graphs)} at cutoff {graphs.cutoff} Å) do not match {n} structures at cutoff "
            f"{config.cutoff} Å"
        )
    return graphs


def _split(n: int, config: EnsembleConfig, val_indices: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions among ``n`` structures: ``val_indices`` when given, else ``val_fraction`` of
    them drawn from ``config.seed`` (none below ``MIN_STRUCTURES_FOR_VALIDATION``)."""
    rng = np.random.default_rng(config.seed)
    if val_indices is not None:
        val_idx = np.unique(np.asarray(val_indices, dtype=np.int64))
        if val_idx.size and (val_idx[0] < 0 or val_idx[-1] >= n):
            raise ConfigError(f"val_indices must lie in [0, {n}), got {val_idx[0]}..{val_idx[-1]}")
        train_idx = np.setdiff1d(np.arange(n), val_idx)
        if len(train_idx) < 2:
            raise ConfigError("val_indices leave fewer than 2 training structures")
    else:
        n_val = round(config.val_fraction * n) if n >= MIN_STRUCTURES_FOR_VALIDATION else 0
        if n_val > 0:
            n_val = min(max(n_val, 1), n - 2)
            perm = rng.permutation(n)
            val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        else:
            val_idx, train_idx = np.zeros(0, dtype=np.int64), np.arange(n)
    return train_idx, val_idx


def _bootstrap_weights(config: EnsembleConfig, n_train: int) -> torch.Tensor:
    """``(n_members, n_train)`` sample weights: how often member k's bootstrap (seed ``seed + k``) draws each
    training structure; all ones without ``bootstrap``."""
    weights = torch.ones(config.n_members, n_train, dtype=torch.float32)
    if config.bootstrap:
        for k in range(config.n_members):
            draws = np.random.default_rng(config.seed + k).integers(0, n_train, size=n_train)
            weights[k] = torch.from_numpy(np.bincount(draws, minlength=n_train).astype(np.float32))
    return weights


def _initial_members(config: EnsembleConfig, init_from: GNNEnsemble | None) -> tuple[list[Any], bool]:
    """(members to train, warm-started?): copies of ``init_from``'s members when ``warm_start`` and it has the
    same architecture, size, cutoff and member count; else new ones seeded ``seed + k``."""
    warm = (
        init_from is not None
        and config.warm_start
        and init_from.config.architecture == config.architecture
        and init_from.config.hidden_size == config.hidden_size
        and abs(init_from.config.cutoff - config.cutoff) < 1e-9
        and init_from.n_members == config.n_members
    )
    if warm:
        members = [copy.deepcopy(m) for m in init_from.members]  # type: ignore[union-attr]
        for m in members:
            m.requires_grad_(True)
    else:
        members = []
        for k in range(config.n_members):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed + k)
                members.append(build_model(config))
    return members, bool(warm)


def _held_out_metrics(members_eval: np.ndarray, y_eval: np.ndarray, target_mean: float) -> dict[str, Any]:
    """Errors of the ``(K, n_eval)`` member predictions on ``(n_eval,)`` targets (original units): the mean's MAE
    and RMSE, the training-mean dummy's MAE, each member's MAE and the mean spread."""
    mean_eval = members_eval.mean(axis=0)
    return {
        "val_mae": float(np.mean(np.abs(mean_eval - y_eval))),
        "val_rmse": float(np.sqrt(np.mean((mean_eval - y_eval) ** 2))),
        "val_dummy_mae": float(np.mean(np.abs(target_mean - y_eval))),
        "member_val_mae": [float(np.mean(np.abs(row - y_eval))) for row in members_eval],
        "val_mean_std": float(members_eval.std(axis=0).mean()),
    }


@SURROGATE_FAMILIES.register("gnn")
class GNNEnsemble:
    """``K`` MatGL GNNs trained on bootstrap resamples; implements :class:`surrogates.Surrogate`.

    Build one with :meth:`fit` or :meth:`load`. ``metrics`` holds (JSON-serialisable):

    - ``n_train``, ``n_val``: structures in the training and validation splits;
    - ``held_out``: True if the ``val_*`` metrics are on held-out structures, False if (with fewer than
      ``MIN_STRUCTURES_FOR_VALIDATION`` structures or ``val_fraction=0``) they are on the training data;
    - ``val_mae``, ``val_rmse``: of the ensemble mean, original units;
    - ``val_dummy_mae``: of always predicting the training mean (a baseline to beat);
    - ``member_val_mae``: ``K`` floats; ``val_mean_std``: mean ensemble std on that set;
    - ``epochs_run``: ``K`` ints; ``train_time_s``: wall time of :meth:`fit` in s (incl. graph building);
    - ``graph_time_s``; ``train_structures_per_s``: structures forward+backward per second;
    - ``n_parameters``: per member.
    """

    def __init__(
        self,
        *,
        members: Sequence[torch.nn.Module],
        config: EnsembleConfig,
        property_name: str,
        version: str,
        target_mean: float,
        target_std: float,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        if len(members) != config.n_members:
            raise ConfigError(f"config says {config.n_members} members but {len(members)} were given")
        if not (math.isfinite(target_std) and target_std > 0):
            raise ConfigError(f"target_std must be a positive number, got {target_std}")
        self.members: list[torch.nn.Module] = list(members)
        self.config = config
        self.property_name = property_name
        self.version = version
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)
        self.metrics: dict[str, Any] = dict(metrics or {})
        self._joint: torch.nn.Module | None = None  # vectorised members for inference, built on first use
        for member in self.members:
            member.eval()

    def __repr__(self) -> str:
        return (
            f"GNNEnsemble(property_name={self.property_name!r}, version={self.version!r}, "
            f"architecture={self.config.architecture!r}, n_members={self.n_members})"
        )

    @property
    def n_members(self) -> int:
        """``K``, the number of members."""
        return len(self.members)

    @property
    def element_types(self) -> tuple[str, ...]:
        """Elements the members can featurise (matgl's DEFAULT_ELEMENTS)."""
        return tuple(getattr(self.members[0], "element_types", DEFAULT_ELEMENTS))

    # ------------------------------------------------------------------ training

    @classmethod
    def fit(
        cls,
        structures: Sequence[Structure],
        targets: Sequence[float],
        *,
        config: EnsembleConfig,
        property_name: str,
        version: str,
        graphs: PackedGraphs | None = None,
        val_indices: Sequence[int] | None = None,
        init_from: GNNEnsemble | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> GNNEnsemble:
        """Train a new ensemble on ``n`` structures with ``(n,)`` scalar targets (any units).

        Args:
            structures: ``n`` ordered structures.
            targets: ``(n,)`` finite targets.
            config: hyper-parameters.
            property_name, version: recorded with the model.
            graphs: the structures' graphs, e.g. from a :class:`surrogates.graphs.GraphCache` (built here when
                None); must have ``config.cutoff``.
            val_indices: positions of the validation structures (early stopping and ``val_*`` metrics);
                None draws ``val_fraction`` of them from ``config.seed``.
            init_from: a previous ensemble to warm-start from (used when ``config.warm_start`` and it has the
                same architecture, size, cutoff and member count; ``metrics['warm_start']`` says if it was).
            progress: ``progress(epoch, max_epochs)`` after every epoch.

        The split, each member's bootstrap weights (member k: ``seed + k``), weight initialisation and batch
        order are all drawn from ``config.seed``, so the same inputs give the same ensemble. All members are
        trained together (for MEGNet as one vectorised module); a bootstrap is expressed as per-member sample
        weights (the number of times a structure is drawn) rather than resampled batches.

        Raises:
            ConfigError: fewer than 2 structures, length mismatch, NaN/inf targets, unknown elements,
                disordered structures, or graphs that do not match.
        """
        structures = list(structures)
        y = _validate_training_data(structures, targets)
        n = len(structures)
        start = time.perf_counter()
        with torch_threads(config.num_threads):
            graphs = _graphs_for(structures, config, graphs)
            graph_time = time.perf_counter() - start

            train_idx, val_idx = _split(n, config, val_indices)

            target_mean = float(y[train_idx].mean())
            target_std = float(y[train_idx].std())
            if not target_std > 1e-12 * max(1.0, abs(target_mean)):
                target_std = 1.0  # constant targets: nothing to scale
            y_scaled = torch.as_tensor((y - target_mean) / target_std, dtype=torch.float32)

            weights = _bootstrap_weights(config, len(train_idx))
            members, warm = _initial_members(config, init_from)

            train_config = config
            if warm and config.warm_start_epochs:
                train_config = config.model_copy(update={"epochs": config.warm_start_epochs})
            train_start = time.perf_counter()
            result = train_joint(
                config=train_config,
                members=members,
                graphs=graphs,
                y_scaled=y_scaled,
                train_idx=train_idx,
                weights=weights,
                val_idx=val_idx,
                progress=progress,
            )
            train_time = time.perf_counter() - train_start

            held_out = len(val_idx) > 0
            eval_idx = val_idx if held_out else train_idx
            joint = joint_model(result.members, config.architecture)
            members_eval = predict_joint(joint, graphs.subset(eval_idx), config.inference_batch_size)
        members_eval = members_eval * target_std + target_mean  # (K, n_eval) original units
        metrics = {
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "held_out": held_out,
            **_held_out_metrics(members_eval, y[eval_idx], target_mean),
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "train_time_s": time.perf_counter() - start,
            "graph_time_s": graph_time,
            "train_structures_per_s": result.structures_seen / max(train_time, 1e-9),
            "n_parameters": n_parameters(result.members[0]),
            "warm_start": bool(warm),
        }
        return cls(
            members=result.members,
            config=config,
            property_name=property_name,
            version=version,
            target_mean=target_mean,
            target_std=target_std,
            metrics=metrics,
        )

    # ---------------------------------------------------------------- inference

    def predict_members(self, structures: Sequence[Structure], graphs: PackedGraphs | None = None) -> np.ndarray:
        """Every member's prediction, ``(K, n)`` float64 in the target's original units.

        ``graphs`` (e.g. from a :class:`surrogates.graphs.GraphCache`) skips graph building; it must hold
        the ``n`` structures' graphs at this ensemble's cutoff.

        Raises:
            ConfigError: a structure has an element outside ``element_types`` or is disordered.
        """
        structures = list(structures)
        check_structures(structures, self.element_types)
        if not structures:
            return np.empty((self.n_members, 0), dtype=np.float64)
        with torch_threads(self.config.num_threads):
            if graphs is None:
                graphs = build_graphs(structures, self.config.cutoff, self.element_types)
            elif len(graphs) != len(structures):
                raise ConfigError(f"got {len(graphs)} graphs for {len(structures)} structures")
            out = self.predict_graphs(graphs)
        return out

    def predict_graphs(self, graphs: PackedGraphs) -> np.ndarray:
        """Every member's prediction for prebuilt graphs: ``(K, n)`` float64, original units."""
        if len(graphs) == 0:
            return np.empty((self.n_members, 0), dtype=np.float64)
        if self._joint is None:
            self._joint = joint_model(self.members, self.config.architecture)
        with torch_threads(self.config.num_threads):
            out = predict_joint(self._joint, graphs, self.config.inference_batch_size)
        return out * self.target_std + self.target_mean

    def predict(self, structures: Sequence[Structure]) -> Prediction:
        """Mean ``(n,)``, population std ``(n,)`` and members ``(K, n)`` in original units."""
        return Prediction.from_members(self.predict_members(structures))

    # ------------------------------------------------------------- persistence

    def save(self, directory: Path | str) -> Path:
        """Write ``member_<k>/`` (matgl format) and ``ensemble.json`` into ``directory``; returns it.

        ``ensemble.json`` is written last (atomically), so its presence marks a complete ensemble.
        """
        return write_ensemble(
            directory,
            EnsembleParts(
                members=self.members,
                config=self.config,
                property_name=self.property_name,
                version=self.version,
                target_mean=self.target_mean,
                target_std=self.target_std,
                metrics=self.metrics,
            ),
        )

    @classmethod
    def load(cls, directory: Path | str) -> GNNEnsemble:
        """Read an ensemble written by :meth:`save`.

        Raises:
            ModelNotFoundError: the directory, ``ensemble.json`` or a member's files are missing or corrupt.
        """
        parts = read_ensemble(directory)
        try:
            return cls(
                members=parts.members,
                config=parts.config,
                property_name=parts.property_name,
                version=parts.version,
                target_mean=parts.target_mean,
                target_std=parts.target_std,
                metrics=parts.metrics,
            )
        except ConfigError as exc:
            meta_path = Path(directory).expanduser().resolve() / ENSEMBLE_FILE
            raise ModelNotFoundError(f"surrogate metadata {meta_path} is inconsistent: {exc}") from exc
