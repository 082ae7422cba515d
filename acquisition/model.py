"""A BoTorch ensemble model over a fixed, discrete candidate set.

The GNN ensemble is evaluated once per round on every candidate; BoTorch then works with the
candidates' *indices* as one-dimensional inputs and looks up the members' predictions.
"""

from __future__ import annotations

import torch
from botorch.models.ensemble import EnsembleModel
from torch import Tensor


class CandidateSetEnsemble(EnsembleModel):
    """Ensemble predictions on ``n`` candidates exposed as a BoTorch model.

    Args:
        members: ``s x n`` (one output) or ``s x n x m`` tensor of member predictions.
    """

    def __init__(self, members: Tensor) -> None:
        super().__init__()
        if members.dim() == 2:
            members = members.unsqueeze(-1)
        if members.dim() != 3:
            raise ValueError(f"members must be s x n or s x n x m, got shape {tuple(members.shape)}")
        self.members = members.to(torch.double)
        self._num_outputs = members.shape[-1]

    @property
    def n_candidates(self) -> int:
        """Number of candidates ``n``."""
        return int(self.members.shape[1])

    def choices(self) -> Tensor:
        """The ``n x 1`` input tensor of candidate indices."""
        return torch.arange(self.n_candidates, dtype=torch.double).unsqueeze(-1)

    def forward(self, X: Tensor) -> Tensor:
        """Look up predictions.

        Args:
            X: ``batch_shape x q x 1`` candidate indices (as floats).

        Returns:
            ``batch_shape x s x q x m`` member predictions.
        """
        idx = X[..., 0].round().long()  # batch x q
        values = self.members[:, idx]  # s x batch... x q x m
        return values.movedim(0, -3)
