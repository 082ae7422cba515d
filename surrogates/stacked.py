"""``K`` MEGNet members evaluated as one vectorised module (written for this project, same maths as matgl).

Every weight of matgl's ``MEGNet`` is stacked along a new leading axis of size ``K``; one forward pass runs
all members on the same batch, so the graph bookkeeping (gathers, segment counts, the Gaussian bond
expansion) is paid once and every matrix product is a ``K``-batched ``bmm``. Parameter names are matgl's
(``.`` replaced by ``__``), so members convert both ways without loss: :meth:`StackedMEGNet.from_members`
and :meth:`StackedMEGNet.to_members`. Two algebraic shortcuts keep the numbers identical to matgl's up to
float rounding: the first edge layer of every convolution is applied to node/graph features before they
are gathered onto edges (``W·[v_i, v_j, e, u] = W_1 v_i + W_2 v_j + W_3 e + W_4 u``), and so is the node
layer's state term.

Shapes: ``K`` members, ``B`` graphs, ``N`` nodes, ``E`` edges, ``d`` feature width.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from .graphs import GraphBatch

__all__ = ["StackedMEGNet"]

_LOG2 = math.log(2.0)


def _softplus2(x: torch.Tensor) -> torch.Tensor:
    """matgl's ``softplus2``: ``softplus(x) - log 2`` (0 at 0)."""
    return nn.functional.softplus(x).sub_(_LOG2)  # softplus' backward needs only its input


class StackedMEGNet(nn.Module):
    """``K`` MEGNet regressors with stacked weights; ``forward`` returns ``(K, B)`` predictions.

    Only the matgl MEGNet variant used here is supported: softplus2 activation, no dropout, skip
    connections, node-type embedding, raw 2-float state, one-layer Set2Set readouts.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("need at least one member")
        template = members[0]
        self.template = copy.deepcopy(template)  # for to_members (bond expansion, config, names)
        self.template.requires_grad_(False)
        self.n_members = len(members)
        self.n_blocks = len(template.blocks)  # type: ignore[arg-type]
        self.n_iters = int(template.edge_s2s.n_iters)  # type: ignore[union-attr]
        self.block_has_dense = [bool(block.has_dense) for block in template.blocks]  # type: ignore[union-attr]
        self.centers = nn.Parameter(template.bond_expansion.rbf.centers.detach().clone(), requires_grad=False)  # type: ignore[union-attr]
        self.width = float(template.bond_expansion.rbf.width)  # type: ignore[union-attr]
        self.trainable_names = [n for n, p in template.named_parameters() if p.requires_grad]
        self._n_linear: dict[str, int] = {}  # MLP prefix -> number of linear layers
        for n in self.trainable_names:
            if ".layers." in n and n.endswith(".weight"):
                prefix = n.split(".layers.")[0]
                self._n_linear[prefix] = self._n_linear.get(prefix, 0) + 1
        self.params = nn.ParameterDict(
            {
                name.replace(".", "__"): nn.Parameter(
                    torch.stack([dict(m.named_parameters())[name].detach().clone() for m in members])
                )
                for name in self.trainable_names
            }
        )

    # ------------------------------------------------------------------ conversion

    @classmethod
    def from_members(cls, members: Sequence[nn.Module]) -> StackedMEGNet:
        """Stack ``K`` matgl MEGNets (copies their weights)."""
        return cls(members)

    def to_members(self) -> list[nn.Module]:
        """``K`` independent matgl MEGNets with this module's current weights (eval mode)."""
        out = []
        for k in range(self.n_members):
            member = copy.deepcopy(self.template)
            state = member.state_dict()
            for name in self.trainable_names:
                state[name] = self.params[name.replace(".", "__")][k].detach().clone()
            member.load_state_dict(state)
            member.requires_grad_(True)
            member.eval()
            out.append(member)
        return out

    def member_state(self) -> dict[str, torch.Tensor]:
        """Detached copy of the stacked weights (``K`` on axis 0), for best-epoch snapshots."""
        return {k: v.detach().clone() for k, v in self.params.items()}

    def load_member_state(self, state: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> None:
        """Copy ``state`` into the weights; with ``mask`` ``(K,)`` bool only for the selected members."""
        with torch.no_grad():
            for k, v in self.params.items():
                if mask is None:
                    v.copy_(state[k])
                else:
                    v[mask] = state[k][mask]

    # ---------------------------------------------------------------- primitives

    def _w(self, name: str) -> torch.Tensor:
        return self.params[name.replace(".", "__")]  # ParameterDict keys cannot contain '.'

    def _linear(self, x: torch.Tensor, name: str, bias: bool = True) -> torch.Tensor:
        """``(K, M, in)`` or shared ``(M, in)`` -> ``(K, M, out)``."""
        w = self._w(f"{name}.weight").transpose(1, 2)  # (K, in, out)
        if x.dim() == 2:
            y = torch.matmul(x, w)
            return y + self._w(f"{name}.bias").unsqueeze(1) if bias else y
        if bias:
            return torch.baddbmm(self._w(f"{name}.bias").unsqueeze(1), x, w)
        return torch.bmm(x, w)

    def _mlp(self, x: torch.Tensor, prefix: str, activate_last: bool, start: int = 0) -> torch.Tensor:
        """matgl ``MLP`` (linear layers at indices 0, 2, 4, ... of ``layers``), starting at layer ``start``."""
        n_linear = self._n_linear[prefix]
        for i in range(start, n_linear):
            x = self._linear(x, f"{prefix}.layers.{2 * i}")
            if i < n_linear - 1 or activate_last:
                x = _softplus2(x)
        return x

    def _proj(self, x: torch.Tensor, prefix: str, start: int, width: int) -> torch.Tensor:
        """``x @ W[:, :, start:start+width]^T`` of the first layer of ``prefix`` (no bias): ``(K, M, out)``."""
        w = self._w(f"{prefix}.layers.0.weight")[:, :, start : start + width]
        return torch.bmm(x, w.transpose(1, 2))

    @staticmethod
    def _segment_mean(x: torch.Tensor, index: torch.Tensor, inv_count: torch.Tensor, size: int) -> torch.Tensor:
        """Mean of ``x`` ``(K, M, d)`` over rows sharing ``index`` ``(M,)``: ``(K, size, d)``."""
        out = x.new_zeros(x.shape[0], size, x.shape[2]).index_add(1, index, x)
        return out * inv_count.view(1, -1, 1)

    def _set2set(self, x: torch.Tensor, index: torch.Tensor, size: int, prefix: str) -> torch.Tensor:
        """Set2Set readout (one LSTM layer, ``n_iters`` steps) of ``x`` ``(K, M, d)``: ``(K, size, 2d)``."""
        k, m, d = x.shape
        if m == 0:
            return x.new_zeros(k, size, 2 * d)
        w_ih = self._w(f"{prefix}.lstm.weight_ih_l0").transpose(1, 2)  # (K, 2d, 4d)
        w_hh = self._w(f"{prefix}.lstm.weight_hh_l0").transpose(1, 2)  # (K, d, 4d)
        bias = (self._w(f"{prefix}.lstm.bias_ih_l0") + self._w(f"{prefix}.lstm.bias_hh_l0")).unsqueeze(1)
        h = x.new_zeros(k, size, d)
        c = x.new_zeros(k, size, d)
        q_star = x.new_zeros(k, size, 2 * d)
        index_k = index.unsqueeze(0).expand(k, m)
        for _ in range(self.n_iters):
            gates = torch.baddbmm(bias, q_star, w_ih) + torch.bmm(h, w_hh)  # (K, size, 4d): i, f, g, o
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            logits = (x * h.index_select(1, index)).sum(-1)  # (K, M)
            peak = x.new_zeros(k, size).scatter_reduce(1, index_k, logits.detach(), "amax", include_self=False)
            weights = torch.exp(logits - peak.gather(1, index_k))
            norm = x.new_zeros(k, size).index_add(1, index, weights) + 1e-16
            alpha = weights / norm.gather(1, index_k)
            readout = x.new_zeros(k, size, d).index_add(1, index, alpha.unsqueeze(-1) * x)
            q_star = torch.cat([h, readout], dim=-1)
        return q_star

    # ------------------------------------------------------------------- forward

    def forward(self, g: GraphBatch) -> torch.Tensor:
        """Standardised predictions of every member: ``(K, B)``."""
        b, n_nodes = g.num_graphs, g.num_nodes
        src, dst = g.edge_index[0], g.edge_index[1]
        vec = g.pos[dst] - g.pos[src] + g.pbc_offshift  # (E, 3) matgl's bond vector convention
        dist = torch.linalg.norm(vec, dim=1)
        rbf = torch.exp(-self.width * (dist[:, None] - self.centers[None, :]) ** 2)  # (E, n_centers), shared
        ones_e = torch.ones(src.shape[0], dtype=rbf.dtype)
        inv_deg = 1.0 / torch.zeros(n_nodes, dtype=rbf.dtype).index_add(0, src, ones_e).clamp(min=1.0)
        inv_edges = 1.0 / torch.zeros(b, dtype=rbf.dtype).index_add(0, g.edge_batch, ones_e).clamp(min=1.0)
        inv_nodes = 1.0 / torch.zeros(b, dtype=rbf.dtype).index_add(
            0, g.batch, torch.ones(n_nodes, dtype=rbf.dtype)
        ).clamp(1.0)

        node = self._w("embedding.layer_node_embedding.weight").index_select(1, g.node_type)  # (K, N, d_emb)
        edge = self._mlp(rbf, "edge_encoder", activate_last=True)  # (K, E, d)
        node = self._mlp(node, "node_encoder", activate_last=True)
        state = self._mlp(g.state, "state_encoder", activate_last=True)  # (K, B, d)

        for i in range(self.n_blocks):
            p = f"blocks.{i}"
            skip = (edge, node, state)
            if self.block_has_dense[i]:
                edge = self._mlp(edge, f"{p}.edge_func", activate_last=True)
                node = self._mlp(node, f"{p}.node_func", activate_last=True)
                state = self._mlp(state, f"{p}.state_func", activate_last=True)
            d = node.shape[-1]
            # edge update: MLP([v_src, v_dst, e, u]) with the first layer split by input block
            ef = f"{p}.conv.edge_func"
            h = (
                self._proj(node, ef, 0, d).index_select(1, src)
                + self._proj(node, ef, d, d).index_select(1, dst)
                + self._proj(edge, ef, 2 * d, edge.shape[-1])
                + self._proj(state, ef, 2 * d + edge.shape[-1], state.shape[-1]).index_select(1, g.edge_batch)
                + self._w(f"{ef}.layers.0.bias").unsqueeze(1)
            )
            edge_new = self._mlp(_softplus2(h), ef, activate_last=True, start=1)
            # node update: MLP([v, mean of outgoing edges, u])
            nf = f"{p}.conv.node_func"
            ve = self._segment_mean(edge_new, src, inv_deg, n_nodes)
            h = (
                self._proj(node, nf, 0, d)
                + self._proj(ve, nf, d, ve.shape[-1])
                + self._proj(state, nf, d + ve.shape[-1], state.shape[-1]).index_select(1, g.batch)
                + self._w(f"{nf}.layers.0.bias").unsqueeze(1)
            )
            node_new = self._mlp(_softplus2(h), nf, activate_last=True, start=1)
            # state update: MLP([u, mean edge, mean node]) per graph
            u_edge = self._segment_mean(edge_new, g.edge_batch, inv_edges, b)
            u_node = self._segment_mean(node_new, g.batch, inv_nodes, b)
            state_new = self._mlp(torch.cat([state, u_edge, u_node], dim=-1), f"{p}.conv.state_func", True)
            edge, node, state = edge_new + skip[0], node_new + skip[1], state_new + skip[2]

        node_vec = self._set2set(node, g.batch, b, "node_s2s")
        edge_vec = self._set2set(edge, g.edge_batch, b, "edge_s2s")
        out = self._mlp(torch.cat([node_vec, edge_vec, state], dim=-1), "output_proj", activate_last=False)
        return out.squeeze(-1)  # (K, B)
