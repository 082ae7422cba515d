"""Ensemble members: input checks, building one MatGL GNN, and running ``K`` of them as one module.

A *joint model* computes every member's output for one batch of graphs: ``(K, B)`` standardised
predictions (float32 tensor). For MEGNet it is the vectorised :class:`surrogates.stacked.StackedMEGNet`;
for the other architectures :class:`MemberList` runs the members one after the other. Both offer
``member_state`` / ``load_member_state`` / ``to_members`` for the training loop (:mod:`surrogates.trainer`).

Shapes: ``n`` structures, ``K`` members, ``B`` structures per batch.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from matgl.config import DEFAULT_ELEMENTS
from matgl.models import M3GNet, MEGNet, TensorNet
from pymatgen.core import Structure

from core.errors import ConfigError

from .config import MEGNET_SIZES, EnsembleConfig
from .graphs import GraphBatch, PackedGraphs
from .stacked import StackedMEGNet

__all__ = [
    "MODEL_CLASSES",
    "MemberList",
    "build_model",
    "check_structures",
    "joint_model",
    "n_parameters",
    "predict_joint",
]

#: matgl model class of each ``EnsembleConfig.architecture`` (what ``GNNEnsemble.load`` instantiates).
MODEL_CLASSES: dict[str, type[torch.nn.Module]] = {"megnet": MEGNet, "m3gnet": M3GNet, "tensornet": TensorNet}


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


def build_model(config: EnsembleConfig) -> torch.nn.Module:
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


def n_parameters(model: torch.nn.Module) -> int:
    """Number of scalar weights of one member."""
    return sum(p.numel() for p in model.parameters())


class MemberList(torch.nn.Module):
    """``K`` matgl models run one after the other on the same batch; ``forward`` gives ``(K, B)``.

    The generic (non-vectorised) counterpart of :class:`StackedMEGNet`, with the same small interface.
    """

    def __init__(self, members: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, g: GraphBatch) -> torch.Tensor:
        return torch.stack([m(g, state_attr=g.state).reshape(-1) for m in self.members])

    def member_state(self) -> list[dict[str, torch.Tensor]]:
        """A deep copy of every member's weights (one state dict per member)."""
        return [copy.deepcopy(m.state_dict()) for m in self.members]

    def load_member_state(self, state: list[dict[str, torch.Tensor]], mask: torch.Tensor | None = None) -> None:
        """Load ``state`` into the members where ``mask`` (``(K,)`` bool) is true; all when None."""
        for k, member in enumerate(self.members):
            if mask is None or bool(mask[k]):
                member.load_state_dict(state[k])

    def to_members(self) -> list[torch.nn.Module]:
        """Independent copies of the ``K`` members, in eval mode."""
        out = [copy.deepcopy(m) for m in self.members]
        for m in out:
            m.eval()
        return out


def joint_model(members: Sequence[torch.nn.Module], architecture: str) -> torch.nn.Module:
    """One module computing all members' ``(K, B)`` outputs: vectorised for MEGNet, a loop otherwise."""
    if architecture == "megnet":
        return StackedMEGNet.from_members(members)
    return MemberList(members)


def predict_joint(model: torch.nn.Module, graphs: PackedGraphs, batch_size: int) -> np.ndarray:
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
