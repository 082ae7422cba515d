"""An ensemble of MatGL GNN regressors trained together on CPU (MEGNet members as one vectorised module).

Members are independent models (own weights, seeds, optional bootstrap weights, own best epoch); for MEGNet
they are stacked into :class:`surrogates.stacked.StackedMEGNet` so that one forward/backward pass serves all
``K``, and saved as ordinary matgl models. Graphs come packed (:mod:`surrogates.graphs`), optionally from
the on-disk cache.

Shapes: ``n`` structures, ``K`` members, ``B`` structures per batch. Targets are standardised with the
training split's mean and std; every public number is in the target's original units.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matgl
import numpy as np
import torch
from matgl.config import DEFAULT_ELEMENTS
from matgl.models import M3GNet, MEGNet, TensorNet
from pydantic import ValidationError
from pymatgen.core import Structure

from core.errors import ConfigError, ModelNotFoundError
from core.threads import torch_threads

from .config import MEGNET_SIZES, MIN_STRUCTURES_FOR_VALIDATION, EnsembleConfig
from .graphs import GraphBatch, PackedGraphs, build_graphs
from .protocols import Prediction
from .stacked import StackedMEGNet

__all__ = ["ENSEMBLE_FILE", "FORMAT_VERSION", "GNNEnsemble", "check_structures"]

#: Metadata file written next to the ``member_<k>/`` folders.
ENSEMBLE_FILE = "ensemble.json"
#: Version of the on-disk layout written by :meth:`GNNEnsemble.save`.
FORMAT_VERSION = 1
_MATGL_FILES = ("model.pt", "state.pt", "model.json")
_MODEL_CLASSES: dict[str, type[torch.nn.Module]] = {"megnet": MEGNet, "m3gnet": M3GNet, "tensornet": TensorNet}


def check_structures(structures: Sequence[Structure], element_types: Sequence[str] = DEFAULT_ELEMENTS) -> None:
    """Raise ConfigError unless every structure is an ordered pymatgen Structure of known elements."""
    allowed = frozenset(element_types)
    for i, structure in enumerate(structures):
        if not isinstance(structure, Structure):
            raise ConfigError(f"structure {i} is a {type(structure).__name__}, not a pymatgen Structure")
        if not structure.is_ordered:
            raise ConfigError(
                f"structure {i} ({structure.composition.reduced_formula}) is disordered; "
                "the surrogate needs one element per site"
            )
        for species in structure.composition.elements:
            symbol = getattr(species, "symbol", str(species))
            if symbol not in allowed:
                raise ConfigError(
                    f"structure {i} ({structure.composition.reduced_formula}) contains element {symbol!r}, "
                    "which the surrogate cannot featurise (not in matgl.config.DEFAULT_ELEMENTS)"
                )


def _build_model(config: EnsembleConfig) -> torch.nn.Module:
    """A freshly initialised member (uses the global torch RNG; seed it first)."""
    if config.architecture == "megnet":
        return MEGNet(**MEGNET_SIZES[config.hidden_size], element_types=DEFAULT_ELEMENTS, cutoff=config.cutoff)
    units = {"small": 32, "medium": 48, "default": 64}[config.hidden_size]
    if config.architecture == "m3gnet":
        return M3GNet(
            element_types=DEFAULT_ELEMENTS,
            dim_node_embedding=units,
            dim_edge_embedding=units,
            units=units,
            cutoff=config.cutoff,
            threebody_cutoff=min(4.0, config.cutoff),
            is_intensive=True,
        )
    if config.architecture == "tensornet":
        return TensorNet(element_types=DEFAULT_ELEMENTS, units=units, cutoff=config.cutoff, is_intensive=True)
    raise ConfigError(f"architecture {config.architecture!r} is not implemented")  # pragma: no cover


def _n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class _MemberList(torch.nn.Module):
    """``K`` matgl models run one after the other on the same batch; ``forward`` gives ``(K, B)``.

    The generic (non-vectorised) counterpart of :class:`StackedMEGNet`, with the same small interface.
    """

    def __init__(self, members: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, g: GraphBatch) -> torch.Tensor:
        return torch.stack([m(g, state_attr=g.state).reshape(-1) for m in self.members])

    def member_state(self) -> list[dict[str, torch.Tensor]]:
        return [copy.deepcopy(m.state_dict()) for m in self.members]

    def load_member_state(self, state: list[dict[str, torch.Tensor]], mask: torch.Tensor | None = None) -> None:
        for k, member in enumerate(self.members):
            if mask is None or bool(mask[k]):
                member.load_state_dict(state[k])

    def to_members(self) -> list[torch.nn.Module]:
        out = [copy.deepcopy(m) for m in self.members]
        for m in out:
            m.eval()
        return out


def _joint_model(members: Sequence[torch.nn.Module], architecture: str) -> torch.nn.Module:
    """One module computing all members' ``(K, B)`` outputs: vectorised for MEGNet, a loop otherwise."""
    if architecture == "megnet":
        return StackedMEGNet.from_members(members)
    return _MemberList(members)


def _predict_joint(model: torch.nn.Module, graphs: PackedGraphs, batch_size: int) -> np.ndarray:
    """Standardised predictions of every member for all ``n`` graphs: ``(K, n)`` float64."""
    model.eval()
    n = len(graphs)
    outputs = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            outputs.append(model(graphs.batch(np.arange(start, min(start + batch_size, n)))))
    if not outputs:
        return np.zeros((0, 0), dtype=np.float64)
    return torch.cat(outputs, dim=1).double().numpy()


@dataclass
class _TrainResult:
    members: list[torch.nn.Module]
    epochs_run: list[int]
    best_epoch: list[int]
    structures_seen: int


def _set_cosine_lr(optimizer: torch.optim.Optimizer, config: EnsembleConfig, fraction: float) -> None:
    """Cosine decay from ``learning_rate`` (fraction 0) to ``learning_rate * min_lr_ratio`` (fraction >= 1)."""
    low = config.learning_rate * config.min_lr_ratio
    lr = low + (config.learning_rate - low) * 0.5 * (1.0 + math.cos(math.pi * min(fraction, 1.0)))
    for group in optimizer.param_groups:
        group["lr"] = lr


def _train_joint(
    *,
    config: EnsembleConfig,
    members: Sequence[torch.nn.Module],
    graphs: PackedGraphs,
    y_scaled: torch.Tensor,
    train_idx: np.ndarray,
    weights: torch.Tensor,
    val_idx: np.ndarray,
    progress: Callable[[int, int], None] | None = None,
) -> _TrainResult:
    """Train ``K`` members together on ``graphs[train_idx]`` with per-member sample weights.

    ``y_scaled`` is ``(n,)`` float32 for all graphs; ``weights`` is ``(K, n_train)`` float32, member ``k``'s
    weight of each training structure (bootstrap counts, or ones). The loss is the sum over members of the
    weighted mean ``config.loss`` (squared, absolute or Huber error) on standardised targets, so members
    stay independent. With a validation split every member keeps the weights of its best validation epoch
    (by mean squared error); training stops once no member has
    improved for ``patience`` epochs, or when ``time_budget_s`` is spent (with a budget, the epoch count is
    planned from the first epoch's duration so that the cosine schedule completes within it).
    ``progress(epoch, epochs)`` is called after every epoch.
    """
    start_time = time.perf_counter()
    model = _joint_model(members, config.architecture)
    k = len(members)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, foreach=True
    )
    steps_per_epoch = max(1, math.ceil(len(train_idx) / config.batch_size))
    planned_epochs = config.epochs  # shrunk after the first epoch to what the time budget allows
    step = 0
    generator = torch.Generator().manual_seed(config.seed)
    has_val = len(val_idx) > 0
    y_val = y_scaled[val_idx]
    val_graphs = graphs.subset(val_idx) if has_val else None
    best_loss = torch.full((k,), math.inf)
    best_epoch = [0] * k
    best_state = None
    stale = torch.zeros(k, dtype=torch.int64)
    epochs_run, seen = 0, 0
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(train_idx), generator=generator).numpy()
        for s in range(0, len(order), config.batch_size):
            rows = order[s : s + config.batch_size]  # positions within train_idx
            idx = train_idx[rows]
            prediction = model(graphs.batch(idx))  # (K, B)
            diff = prediction - y_scaled[idx].unsqueeze(0)
            if config.loss == "mse":
                residual = diff**2
            elif config.loss == "l1":
                residual = diff.abs()
            else:
                residual = torch.nn.functional.huber_loss(diff, torch.zeros_like(diff), reduction="none", delta=1.0)
            loss = (weights[:, rows] * residual).mean(dim=1).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if config.lr_schedule == "cosine":
                _set_cosine_lr(optimizer, config, step / (steps_per_epoch * planned_epochs))
            seen += k * len(idx)
        epochs_run += 1
        if epoch == 0 and config.time_budget_s is not None:
            per_epoch = time.perf_counter() - start_time
            planned_epochs = max(1, min(config.epochs, int(config.time_budget_s / max(per_epoch * 1.08, 1e-9))))
        if has_val:
            val_pred = torch.from_numpy(_predict_joint(model, val_graphs, config.inference_batch_size))  # type: ignore[arg-type]
            val_loss = ((val_pred.float() - y_val.unsqueeze(0)) ** 2).mean(dim=1)  # (K,)
            improved = val_loss < best_loss
            if best_state is None:
                best_state = model.member_state()
            elif bool(improved.any()):
                current = model.member_state()
                if isinstance(current, dict):
                    for name, value in current.items():
                        best_state[name][improved] = value[improved]
                else:
                    for j in range(k):
                        if bool(improved[j]):
                            best_state[j] = current[j]
            for j in range(k):
                if bool(improved[j]):
                    best_epoch[j] = epoch + 1
            best_loss = torch.where(improved, val_loss, best_loss)
            stale = torch.where(improved, torch.zeros_like(stale), stale + 1)
        else:
            best_epoch = [epoch + 1] * k
        if progress is not None:
            progress(epoch + 1, config.epochs)
        if config.patience is not None and has_val and bool((stale >= config.patience).all()):
            break
        if epochs_run >= planned_epochs:
            break
        if config.time_budget_s is not None and time.perf_counter() - start_time > config.time_budget_s:
            break
    if best_state is not None:
        model.load_member_state(best_state)
    return _TrainResult(
        members=model.to_members(), epochs_run=[epochs_run] * k, best_epoch=best_epoch, structures_seen=seen
    )


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
            if graphs is None:
                graphs = build_graphs(structures, config.cutoff, DEFAULT_ELEMENTS)
            elif len(graphs) != n or abs(graphs.cutoff - config.cutoff) > 1e-9:
                raise ConfigError(
                    f"graphs ({len(graphs)} at cutoff {graphs.cutoff} Å) do not match {n} structures at cutoff "
                    f"{config.cutoff} Å"
                )
            graph_time = time.perf_counter() - start

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

            target_mean = float(y[train_idx].mean())
            target_std = float(y[train_idx].std())
            if not target_std > 1e-12 * max(1.0, abs(target_mean)):
                target_std = 1.0  # constant targets: nothing to scale
            y_scaled = torch.as_tensor((y - target_mean) / target_std, dtype=torch.float32)

            weights = torch.ones(config.n_members, len(train_idx), dtype=torch.float32)
            if config.bootstrap:
                for k in range(config.n_members):
                    draws = np.random.default_rng(config.seed + k).integers(0, len(train_idx), size=len(train_idx))
                    weights[k] = torch.from_numpy(np.bincount(draws, minlength=len(train_idx)).astype(np.float32))

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
                        members.append(_build_model(config))

            train_config = config
            if warm and config.warm_start_epochs:
                train_config = config.model_copy(update={"epochs": config.warm_start_epochs})
            train_start = time.perf_counter()
            result = _train_joint(
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
            joint = _joint_model(result.members, config.architecture)
            members_eval = _predict_joint(joint, graphs.subset(eval_idx), config.inference_batch_size)
        members_eval = members_eval * target_std + target_mean  # (K, n_eval) original units
        y_eval = y[eval_idx]
        mean_eval = members_eval.mean(axis=0)
        metrics: dict[str, Any] = {
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "held_out": held_out,
            "val_mae": float(np.mean(np.abs(mean_eval - y_eval))),
            "val_rmse": float(np.sqrt(np.mean((mean_eval - y_eval) ** 2))),
            "val_dummy_mae": float(np.mean(np.abs(target_mean - y_eval))),
            "member_val_mae": [float(np.mean(np.abs(row - y_eval))) for row in members_eval],
            "val_mean_std": float(members_eval.std(axis=0).mean()),
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "train_time_s": time.perf_counter() - start,
            "graph_time_s": graph_time,
            "train_structures_per_s": result.structures_seen / max(train_time, 1e-9),
            "n_parameters": _n_parameters(result.members[0]),
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
            self._joint = _joint_model(self.members, self.config.architecture)
        with torch_threads(self.config.num_threads):
            out = _predict_joint(self._joint, graphs, self.config.inference_batch_size)
        return out * self.target_std + self.target_mean

    def predict(self, structures: Sequence[Structure]) -> Prediction:
        """Mean ``(n,)``, population std ``(n,)`` and members ``(K, n)`` in original units."""
        return Prediction.from_members(self.predict_members(structures))

    # ------------------------------------------------------------- persistence

    def save(self, directory: Path | str) -> Path:
        """Write ``member_<k>/`` (matgl format) and ``ensemble.json`` into ``directory``; returns it.

        ``ensemble.json`` is written last (atomically), so its presence marks a complete ensemble.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for k, member in enumerate(self.members):
            member.save(directory / f"member_{k}", metadata={"property_name": self.property_name, "member": k})
        meta = {
            "format_version": FORMAT_VERSION,
            "property_name": self.property_name,
            "version": self.version,
            "config": self.config.model_dump(mode="json"),
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            "metrics": self.metrics,
            "matgl_version": matgl.__version__,
            "torch_version": torch.__version__,
        }
        tmp = directory / f".{ENSEMBLE_FILE}.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, directory / ENSEMBLE_FILE)
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> GNNEnsemble:
        """Read an ensemble written by :meth:`save`.

        Raises:
            ModelNotFoundError: the directory, ``ensemble.json`` or a member's files are missing or corrupt.
        """
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
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
            raise ModelNotFoundError(f"surrogate metadata {meta_path} is unreadable or corrupt: {exc}") from exc
        model_cls = _MODEL_CLASSES[config.architecture]
        members = []
        for k in range(config.n_members):
            member_dir = directory / f"member_{k}"
            missing = [name for name in _MATGL_FILES if not (member_dir / name).is_file()]
            if missing:
                raise ModelNotFoundError(
                    f"surrogate at {directory} is incomplete: member_{k} lacks {', '.join(missing)}"
                )
            try:
                members.append(model_cls.load(member_dir))  # type: ignore[attr-defined]
            except Exception as exc:
                raise ModelNotFoundError(f"cannot load surrogate member {member_dir}: {exc}") from exc
        try:
            return cls(
                members=members,
                config=config,
                property_name=property_name,
                version=version,
                target_mean=target_mean,
                target_std=target_std,
                metrics=metrics,
            )
        except ConfigError as exc:
            raise ModelNotFoundError(f"surrogate metadata {meta_path} is inconsistent: {exc}") from exc
