"""Crystal graphs packed into flat tensors, fast batching, and an on-disk preprocessing cache.

Shapes: ``n`` structures, ``N`` atoms and ``E`` directed edges in total (or in a batch of ``B`` structures).
A :class:`PackedGraphs` holds every graph of a data set in a handful of concatenated tensors, so a batch is
a few ``index_select`` calls instead of collating ``B`` PyG ``Data`` objects; it is what the trainers and
predictors use, and what the cache stores with ``torch.save``.

The cache key hashes the structures (or a data set's ``data_hash``), the cutoff, the element types and
:data:`GRAPH_FORMAT`: any change of inputs or settings gives another file, so stale graphs are never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Structure

__all__ = [
    "GRAPH_FORMAT",
    "GraphBatch",
    "GraphCache",
    "PackedGraphs",
    "build_graphs",
    "graph_cache_key",
    "structures_hash",
]

#: Bumped whenever the graph construction or the packed layout changes (invalidates every cached file).
GRAPH_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class GraphBatch:
    """``B`` graphs ready for a forward pass (a duck-typed PyG batch that matgl models accept).

    Attributes:
        node_type: ``(N,)`` int64 index into the element types.
        pos: ``(N, 3)`` float32 Cartesian positions in Å.
        edge_index: ``(2, E)`` int64 (source, destination) node indices within the batch.
        pbc_offshift: ``(E, 3)`` float32 periodic image shift of each edge in Å.
        batch: ``(N,)`` int64 graph index of each node.
        edge_batch: ``(E,)`` int64 graph index of each edge.
        state: ``(B, 2)`` float32 global state attributes (matgl's default zeros).
        num_graphs: ``B``.
    """

    node_type: torch.Tensor
    pos: torch.Tensor
    edge_index: torch.Tensor
    pbc_offshift: torch.Tensor
    batch: torch.Tensor
    edge_batch: torch.Tensor
    state: torch.Tensor
    num_graphs: int

    @property
    def num_nodes(self) -> int:
        """``N``."""
        return int(self.node_type.shape[0])


@dataclass(frozen=True, kw_only=True)
class PackedGraphs:
    """Radius graphs of ``n`` structures in concatenated tensors (never mutated).

    Attributes:
        node_type: ``(N,)`` int64; frac_coords: ``(N, 3)`` float32.
        edge_index: ``(2, E)`` int64, node indices local to each structure.
        pbc_offset: ``(E, 3)`` float32 periodic image of each edge (lattice vector multiples).
        lattice: ``(n, 3, 3)`` float32, rows are lattice vectors in Å.
        state: ``(n, 2)`` float32.
        node_ptr: ``(n + 1,)`` int64 offsets of each structure's nodes; edge_ptr: ``(n + 1,)`` likewise.
        cutoff: radius in Å; element_types: the featurised elements, in index order.
    """

    node_type: torch.Tensor
    frac_coords: torch.Tensor
    edge_index: torch.Tensor
    pbc_offset: torch.Tensor
    lattice: torch.Tensor
    state: torch.Tensor
    node_ptr: torch.Tensor
    edge_ptr: torch.Tensor
    cutoff: float
    element_types: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.lattice.shape[0])

    @property
    def n_edges(self) -> torch.Tensor:
        """``(n,)`` int64 edges per structure."""
        return self.edge_ptr[1:] - self.edge_ptr[:-1]

    def batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> GraphBatch:
        """Gather structures ``indices`` (``(B,)``, repeats allowed) into one :class:`GraphBatch`."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        b = int(idx.shape[0])
        node_counts = self.node_ptr[idx + 1] - self.node_ptr[idx]  # (B,)
        edge_counts = self.edge_ptr[idx + 1] - self.edge_ptr[idx]  # (B,)
        node_ids = _ranges(self.node_ptr[idx], node_counts)  # (N,)
        edge_ids = _ranges(self.edge_ptr[idx], edge_counts)  # (E,)
        graph_of_node = torch.repeat_interleave(torch.arange(b), node_counts)  # (N,)
        graph_of_edge = torch.repeat_interleave(torch.arange(b), edge_counts)  # (E,)
        new_offsets = torch.cumsum(node_counts, 0) - node_counts  # (B,) first node of each graph in the batch
        lattice = self.lattice[idx]  # (B, 3, 3)
        frac = self.frac_coords[node_ids]
        pos = torch.bmm(frac.unsqueeze(1), lattice[graph_of_node]).squeeze(1)  # (N, 3)
        edge_index = self.edge_index[:, edge_ids] + new_offsets[graph_of_edge].unsqueeze(0)
        shift = torch.bmm(self.pbc_offset[edge_ids].unsqueeze(1), lattice[graph_of_edge]).squeeze(1)  # (E, 3)
        return GraphBatch(
            node_type=self.node_type[node_ids],
            pos=pos,
            edge_index=edge_index,
            pbc_offshift=shift,
            batch=graph_of_node,
            edge_batch=graph_of_edge,
            state=self.state[idx],
            num_graphs=b,
        )

    def subset(self, indices: Sequence[int] | np.ndarray) -> PackedGraphs:
        """A new PackedGraphs of structures ``indices`` (in that order)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        node_counts = self.node_ptr[idx + 1] - self.node_ptr[idx]
        edge_counts = self.edge_ptr[idx + 1] - self.edge_ptr[idx]
        node_ids = _ranges(self.node_ptr[idx], node_counts)
        edge_ids = _ranges(self.edge_ptr[idx], edge_counts)
        return PackedGraphs(
            node_type=self.node_type[node_ids],
            frac_coords=self.frac_coords[node_ids],
            edge_index=self.edge_index[:, edge_ids],
            pbc_offset=self.pbc_offset[edge_ids],
            lattice=self.lattice[idx],
            state=self.state[idx],
            node_ptr=_ptr(node_counts),
            edge_ptr=_ptr(edge_counts),
            cutoff=self.cutoff,
            element_types=self.element_types,
        )

    def to_dict(self) -> dict[str, object]:
        """Plain dict for ``torch.save``."""
        return {
            "format": GRAPH_FORMAT,
            **{
                k: getattr(self, k)
                for k in (
                    "node_type",
                    "frac_coords",
                    "edge_index",
                    "pbc_offset",
                    "lattice",
                    "state",
                    "node_ptr",
                    "edge_ptr",
                )
            },
            "cutoff": self.cutoff,
            "element_types": list(self.element_types),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PackedGraphs:
        """Inverse of :meth:`to_dict`; raises ValueError on another format version."""
        if data.get("format") != GRAPH_FORMAT:
            raise ValueError(f"graph format {data.get('format')} != {GRAPH_FORMAT}")
        fields = {k: v for k, v in data.items() if k != "format"}
        fields["element_types"] = tuple(fields["element_types"])  # type: ignore[arg-type]
        fields["cutoff"] = float(fields["cutoff"])  # type: ignore[arg-type]
        return cls(**fields)  # type: ignore[arg-type]


def _ptr(counts: torch.Tensor) -> torch.Tensor:
    """``(n + 1,)`` offsets from ``(n,)`` counts."""
    return torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``arange(s, s + c)`` for each (start, count): ``(sum(counts),)`` int64."""
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.int64)
    offsets = torch.cumsum(counts, 0) - counts  # (B,) position of each range in the output
    return torch.arange(total) - torch.repeat_interleave(offsets - starts, counts)


def build_graphs(
    structures: Sequence[Structure],
    cutoff: float,
    element_types: Sequence[str],
    progress: Callable[[int], None] | None = None,
) -> PackedGraphs:
    """Radius graphs (cutoff in Å) of ``n`` structures with matgl's ``Structure2Graph``, packed.

    ``progress(k)`` is called after every structure, if given.
    """
    import matgl
    from matgl.ext.pymatgen import Structure2Graph

    converter = Structure2Graph(element_types=tuple(element_types), cutoff=cutoff)
    node_type, frac, edges, offsets, lattices, states = [], [], [], [], [], []
    node_counts, edge_counts = [], []
    for k, structure in enumerate(structures):
        data, lattice, state = converter.get_graph(structure)
        node_type.append(data.node_type.to(torch.int64))
        frac.append(data.frac_coords.to(matgl.float_th))
        edges.append(data.edge_index.to(torch.int64))
        offsets.append(data.pbc_offset.to(matgl.float_th))
        lattices.append(torch.as_tensor(lattice, dtype=matgl.float_th).reshape(3, 3))
        states.append(torch.as_tensor(np.asarray(state), dtype=matgl.float_th).reshape(-1))
        node_counts.append(int(data.node_type.shape[0]))
        edge_counts.append(int(data.edge_index.shape[1]))
        if progress is not None:
            progress(k + 1)
    if not structures:
        return PackedGraphs(
            node_type=torch.zeros(0, dtype=torch.int64),
            frac_coords=torch.zeros(0, 3),
            edge_index=torch.zeros(2, 0, dtype=torch.int64),
            pbc_offset=torch.zeros(0, 3),
            lattice=torch.zeros(0, 3, 3),
            state=torch.zeros(0, 2),
            node_ptr=torch.zeros(1, dtype=torch.int64),
            edge_ptr=torch.zeros(1, dtype=torch.int64),
            cutoff=float(cutoff),
            element_types=tuple(element_types),
        )
    return PackedGraphs(
        node_type=torch.cat(node_type),
        frac_coords=torch.cat(frac),
        edge_index=torch.cat(edges, dim=1),
        pbc_offset=torch.cat(offsets),
        lattice=torch.stack(lattices),
        state=torch.stack(states),
        node_ptr=_ptr(torch.tensor(node_counts, dtype=torch.int64)),
        edge_ptr=_ptr(torch.tensor(edge_counts, dtype=torch.int64)),
        cutoff=float(cutoff),
        element_types=tuple(element_types),
    )


def structures_hash(structures: Sequence[Structure]) -> str:
    """SHA-256 (hex, 16 chars) of the species, fractional coordinates and lattices of ``structures``, in order."""
    h = hashlib.sha256()
    for s in structures:
        h.update(np.round(s.lattice.matrix, 6).astype(np.float64).tobytes())
        h.update(np.round(s.frac_coords, 6).astype(np.float64).tobytes())
        h.update(",".join(site.species_string for site in s).encode())
        h.update(b";")
    return h.hexdigest()[:16]


def graph_cache_key(data_key: str, cutoff: float, element_types: Sequence[str]) -> str:
    """File stem for graphs of ``data_key`` (a data hash or :func:`structures_hash`) with these settings."""
    settings = json.dumps(
        {"data": data_key, "cutoff": round(float(cutoff), 6), "elements": list(element_types), "format": GRAPH_FORMAT}
    )
    return f"graphs-{data_key[:16]}-{hashlib.sha256(settings.encode()).hexdigest()[:12]}"


@dataclass(frozen=True, kw_only=True)
class GraphCache:
    """Graphs saved once per (data, cutoff, element types) under ``directory`` and reused.

    ``hits``/``misses`` are not tracked here; :meth:`load_or_build` returns whether the file was reused.
    """

    directory: Path

    def path(self, data_key: str, cutoff: float, element_types: Sequence[str]) -> Path:
        """Where the graphs of this data and these settings are (or would be) stored."""
        return self.directory / f"{graph_cache_key(data_key, cutoff, element_types)}.pt"

    def load_or_build(
        self,
        structures: Sequence[Structure] | Callable[[], Sequence[Structure]],
        *,
        cutoff: float,
        element_types: Sequence[str],
        data_key: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[PackedGraphs, bool]:
        """The graphs of ``structures`` (a list, or a callable giving it, called only on a miss).

        ``data_key`` identifies the data (e.g. a data set's ``data_hash``); None hashes the structures, which
        then must be a list. Returns ``(graphs, hit)``. A corrupt or outdated file is rebuilt.
        """
        if data_key is None:
            if callable(structures):
                raise ValueError("data_key is required when structures are given lazily")
            data_key = structures_hash(structures)
        path = self.path(data_key, cutoff, element_types)
        if path.is_file():
            try:
                data = torch.load(path, weights_only=True)
                return PackedGraphs.from_dict(data), True
            except Exception:
                pass
        items = structures() if callable(structures) else structures
        graphs = build_graphs(items, cutoff, element_types, progress=progress)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{time.monotonic_ns()}.tmp")
        torch.save(graphs.to_dict(), tmp)
        os.replace(tmp, path)
        return graphs, False
