"""The training loop of an ensemble: ``K`` members trained together on standardised targets.

One optimiser step serves all members: the joint model (:func:`surrogates.members.joint_model`) gives
``(K, B)`` predictions for a batch of ``B`` graphs, and the loss is the sum over members of each member's
weighted mean error, so members stay independent (own weights, own sample weights, own best epoch) while
sharing the batch order.

Shapes: ``n`` graphs, ``K`` members, ``B`` structures per batch, ``n_train`` training structures.
Targets are standardised (zero mean, unit std on the training split): dimensionless.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .config import EnsembleConfig
from .graphs import PackedGraphs
from .members import joint_model, predict_joint

__all__ = ["TrainedMembers", "set_cosine_lr", "train_joint"]


@dataclass
class TrainedMembers:
    """What :func:`train_joint` returns: the ``K`` trained members (eval mode) and how training went."""

    members: list[torch.nn.Module]
    epochs_run: list[int]  # K ints
    best_epoch: list[int]  # K ints, 1-based; the epoch whose weights each member kept
    structures_seen: int  # member-structures forward + backward


def set_cosine_lr(optimizer: torch.optim.Optimizer, config: EnsembleConfig, fraction: float) -> None:
    """Cosine decay from ``learning_rate`` (fraction 0) to ``learning_rate * min_lr_ratio`` (fraction >= 1)."""
    low = config.learning_rate * config.min_lr_ratio
    lr = low + (config.learning_rate - low) * 0.5 * (1.0 + math.cos(math.pi * min(fraction, 1.0)))
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_joint(
    *,
    config: EnsembleConfig,
    members: Sequence[torch.nn.Module],
    graphs: PackedGraphs,
    y_scaled: torch.Tensor,
    train_idx: np.ndarray,
    weights: torch.Tensor,
    val_idx: np.ndarray,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedMembers:
    """Train ``K`` members together on ``graphs[train_idx]`` with per-member sample weights.

    ``y_scaled`` is ``(n,)`` float32 for all graphs; ``weights`` is ``(K, n_train)`` float32, member ``k``'s
    weight of each training structure (bootstrap counts, or ones). The loss is the sum over members of the
    weighted mean ``config.loss`` (squared, absolute or Huber error) on standardised targets, so members
    stay independent. With a validation split every member keeps the weights of its best validation epoch
    (by mean squared error); training stops once no member has
    improved for ``patience`` epochs. There is no wall-time limit: the same data, settings and seed give the
    same members on any machine, however busy (with the same torch thread count).
    ``progress(epoch, epochs)`` is called after every epoch.
    """
    model = joint_model(members, config.architecture)
    k = len(members)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, foreach=True
    )
    steps_per_epoch = max(1, math.ceil(len(train_idx) / config.batch_size))
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
                set_cosine_lr(optimizer, config, step / (steps_per_epoch * config.epochs))
            seen += k * len(idx)
        epochs_run += 1
        if has_val:
            val_pred = torch.from_numpy(predict_joint(model, val_graphs, config.inference_batch_size))  # type: ignore[arg-type]
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
    if best_state is not None:
        model.load_member_state(best_state)
    return TrainedMembers(
        members=model.to_members(), epochs_run=[epochs_run] * k, best_epoch=best_epoch, structures_seen=seen
    )
