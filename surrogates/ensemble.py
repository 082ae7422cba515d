"""A bootstrap ensemble of small MatGL GNN regressors, trained with a plain torch loop on CPU.

Shapes: ``n`` structures, ``K`` members, ``B`` structures per batch. Targets are standardised with the
training split's mean and std; every public number is in the target's original units.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matgl
import numpy as np
import torch
from matgl.config import DEFAULT_ELEMENTS
from matgl.ext.pymatgen import Structure2Graph
from matgl.models import MEGNet
from pydantic import ValidationError
from pymatgen.core import Structure
from torch_geometric.data import Batch, Data

from battery_discovery.errors import ConfigError, ModelNotFoundError
from battery_discovery.threads import torch_threads

from .config import MEGNET_SIZES, MIN_STRUCTURES_FOR_VALIDATION, EnsembleConfig
from .protocols import Prediction

__all__ = ["ENSEMBLE_FILE", "FORMAT_VERSION", "GNNEnsemble", "check_structures"]

#: Metadata file written next to the ``member_<k>/`` folders.
ENSEMBLE_FILE = "ensemble.json"
#: Version of the on-disk layout written by :meth:`GNNEnsemble.save`.
FORMAT_VERSION = 1
_MATGL_FILES = ("model.pt", "state.pt", "model.json")
_MODEL_CLASSES: dict[str, type[torch.nn.Module]] = {"megnet": MEGNet}


@dataclass(frozen=True)
class _Graph:
    """One converted structure, cached and never mutated (batches copy it).

    Attributes:
        data: PyG graph with ``node_type (N,)``, ``frac_coords (N, 3)``, ``edge_index (2, E)``,
            ``pbc_offset (E, 3)``.
        lattice: ``(1, 3, 3)`` float32 lattice matrix (rows are lattice vectors, Å).
        state: ``(2,)`` float32 global state attribute (matgl's default zeros).
    """

    data: Data
    lattice: torch.Tensor
    state: torch.Tensor


@dataclass(frozen=True)
class _Collated:
    """A batch ready for the forward pass: ``graph`` (B graphs), ``lattice (B, 3, 3)``, ``state (B, 2)``."""

    graph: Batch
    lattice: torch.Tensor
    state: torch.Tensor


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


def _to_graphs(structures: Sequence[Structure], cutoff: float, element_types: Sequence[str]) -> list[_Graph]:
    """Convert ``n`` structures to ``n`` cached graphs (radius graph with ``cutoff`` in Å)."""
    converter = Structure2Graph(element_types=tuple(element_types), cutoff=cutoff)
    graphs = []
    for structure in structures:
        data, lattice, state = converter.get_graph(structure)
        graphs.append(
            _Graph(
                data=data,
                lattice=lattice.reshape(1, 3, 3).to(matgl.float_th),
                state=torch.as_tensor(state, dtype=matgl.float_th),
            )
        )
    return graphs


def _collate(graphs: Sequence[_Graph]) -> _Collated:
    """Batch ``B`` cached graphs into one disjoint graph plus ``(B, 3, 3)`` lattices and ``(B, 2)`` states."""
    return _Collated(
        graph=Batch.from_data_list([g.data for g in graphs]),
        lattice=torch.cat([g.lattice for g in graphs], dim=0),
        state=torch.stack([g.state for g in graphs], dim=0),
    )


def _forward(model: torch.nn.Module, batch: _Collated) -> torch.Tensor:
    """Standardised predictions ``(B,)``; sets ``pos``/``pbc_offshift`` like matgl's ModelLightningModule."""
    g = batch.graph
    node_lattice = batch.lattice[g.batch]  # (N, 3, 3)
    g.pos = (g.frac_coords.unsqueeze(dim=-1) * node_lattice).sum(dim=1)  # (N, 3) Cartesian, Å
    edge_lattice = batch.lattice[g.batch[g.edge_index[0]]]  # (E, 3, 3)
    g.pbc_offshift = (g.pbc_offset.unsqueeze(dim=-1) * edge_lattice).sum(dim=1)  # (E, 3) Å
    return model(g, state_attr=batch.state).reshape(-1)


def _batches(graphs: Sequence[_Graph], batch_size: int) -> list[_Collated]:
    """Collate ``graphs`` in order into consecutive batches of at most ``batch_size``."""
    return [_collate(graphs[i : i + batch_size]) for i in range(0, len(graphs), batch_size)]


def _predict_scaled(model: torch.nn.Module, batches: Sequence[_Collated]) -> np.ndarray:
    """Standardised predictions of one model for all graphs in ``batches``: ``(n,)`` float64."""
    model.eval()
    with torch.inference_mode():
        outputs = [_forward(model, batch) for batch in batches]
    if not outputs:
        return np.zeros(0, dtype=np.float64)
    return torch.cat(outputs).double().numpy()


def _build_model(config: EnsembleConfig) -> torch.nn.Module:
    """A freshly initialised member (uses the global torch RNG; seed it first)."""
    if config.architecture == "megnet":
        return MEGNet(**MEGNET_SIZES[config.hidden_size], element_types=DEFAULT_ELEMENTS, cutoff=config.cutoff)
    raise ConfigError(f"architecture {config.architecture!r} is not implemented")  # pragma: no cover


def _n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class _MemberResult:
    model: torch.nn.Module
    epochs_run: int
    structures_seen: int


def _train_member(
    *,
    config: EnsembleConfig,
    member_seed: int,
    graphs: Sequence[_Graph],
    y_scaled: torch.Tensor,
    sample: np.ndarray,
    val_batches: Sequence[_Collated],
    y_val_scaled: torch.Tensor,
) -> _MemberResult:
    """Train one member on ``graphs[sample]`` (``sample`` may repeat indices) with MSE on standardised y.

    ``y_scaled`` is ``(n,)`` float32 for all graphs; ``y_val_scaled`` is ``(n_val,)`` in the order of
    ``val_batches``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(member_seed)
        model = _build_model(config)
    generator = torch.Generator().manual_seed(member_seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    early_stopping = config.patience is not None and len(val_batches) > 0
    best_loss, best_state, stale = math.inf, None, 0
    epochs_run, seen = 0, 0
    for _ in range(config.epochs):
        model.train()
        order = sample[torch.randperm(len(sample), generator=generator).numpy()]
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            prediction = _forward(model, _collate([graphs[i] for i in idx]))
            loss = torch.nn.functional.mse_loss(prediction, y_scaled[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(idx)
        epochs_run += 1
        if early_stopping:
            val_pred = torch.from_numpy(_predict_scaled(model, val_batches)).float()
            val_loss = float(torch.nn.functional.mse_loss(val_pred, y_val_scaled))
            if val_loss < best_loss:
                best_loss, best_state, stale = val_loss, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if stale >= config.patience:  # type: ignore[operator]
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return _MemberResult(model=model, epochs_run=epochs_run, structures_seen=seen)


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
    ) -> GNNEnsemble:
        """Train a new ensemble on ``n`` structures with ``(n,)`` scalar targets (any units).

        The split into training and validation structures, each member's bootstrap sample, weight
        initialisation and batch order are all drawn from ``config.seed`` (member k: ``seed + k``), so
        the same inputs give the same ensemble. Graphs are built once and shared by all members.

        Raises:
            ConfigError: fewer than 2 structures, length mismatch, NaN/inf targets, unknown elements or
                disordered structures.
        """
        structures = list(structures)
        y = _validate_training_data(structures, targets)
        n = len(structures)
        start = time.perf_counter()
        with torch_threads(config.num_threads):
            graphs = _to_graphs(structures, config.cutoff, DEFAULT_ELEMENTS)
            graph_time = time.perf_counter() - start

            rng = np.random.default_rng(config.seed)
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
            val_batches = _batches([graphs[i] for i in val_idx], config.inference_batch_size)
            y_val_scaled = y_scaled[val_idx]

            results: list[_MemberResult] = []
            train_start = time.perf_counter()
            for k in range(config.n_members):
                member_seed = config.seed + k
                if config.bootstrap:
                    sample = np.random.default_rng(member_seed).choice(train_idx, size=len(train_idx))
                else:
                    sample = train_idx.copy()
                results.append(
                    _train_member(
                        config=config,
                        member_seed=member_seed,
                        graphs=graphs,
                        y_scaled=y_scaled,
                        sample=sample,
                        val_batches=val_batches,
                        y_val_scaled=y_val_scaled,
                    )
                )
            train_time = time.perf_counter() - train_start

            held_out = len(val_idx) > 0
            eval_idx = val_idx if held_out else train_idx
            eval_batches = (
                val_batches if held_out else _batches([graphs[i] for i in eval_idx], config.inference_batch_size)
            )
            members_eval = np.stack([_predict_scaled(r.model, eval_batches) for r in results])
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
            "epochs_run": [r.epochs_run for r in results],
            "train_time_s": time.perf_counter() - start,
            "graph_time_s": graph_time,
            "train_structures_per_s": sum(r.structures_seen for r in results) / max(train_time, 1e-9),
            "n_parameters": _n_parameters(results[0].model),
        }
        return cls(
            members=[r.model for r in results],
            config=config,
            property_name=property_name,
            version=version,
            target_mean=target_mean,
            target_std=target_std,
            metrics=metrics,
        )

    # ---------------------------------------------------------------- inference

    def predict_members(self, structures: Sequence[Structure]) -> np.ndarray:
        """Every member's prediction, ``(K, n)`` float64 in the target's original units.

        Raises:
            ConfigError: a structure has an element outside ``element_types`` or is disordered.
        """
        structures = list(structures)
        check_structures(structures, self.element_types)
        out = np.empty((self.n_members, len(structures)), dtype=np.float64)
        if not structures:
            return out
        with torch_threads(self.config.num_threads):
            graphs = _to_graphs(structures, self.config.cutoff, self.element_types)
            batches = _batches(graphs, self.config.inference_batch_size)
            for k, member in enumerate(self.members):
                out[k] = _predict_scaled(member, batches)
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
