"""The oracle against a plain CHGNet loop: 16 Li/Na structures (5-30 atoms), same fmax and step limit.

Baseline: CHGNet's own ``StructOptimizer`` (FIRE + FrechetCellFilter) relaxing the structures one
after another in this process, with torch's default threads. Project: ``oracle.relax_many`` (the
same per-structure FIRE + FrechetCellFilter, but all unfinished structures evaluated in one batched
CHGNet call per step, one forward and one backward pass) in this process with ``--threads`` torch
threads (the default), or on a local Dask cluster of ``--workers`` one-thread processes, each taking an
interleaved share of the structures. Both relax the same right-handed, strained and rattled cells.
Prints a table, the last line ``speedup=<x> max_abs_dE_meV_per_atom=<y>``, and writes JSON.

    .venv/bin/python benchmarks/oracle.py [--workers 0] [--threads 2] [--batch-size 16] [--fmax 0.05] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

# This file is named like the project's ``oracle`` package: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def structures() -> list[tuple[str, object]]:
    """16 Li/Na cells of 5-30 atoms, strained 4 % and rattled 0.05 Å (seeded), right-handed."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.util.testing import PymatgenTest  # noqa: F401  (pymatgen's bundled structures)

    from generation.seeds import load_seeds
    from oracle.relax import right_handed

    def rocksalt(a: str, b: str, x: float) -> Structure:
        return Structure.from_spacegroup("Fm-3m", Lattice.cubic(x), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])

    def antifluorite(a: str, b: str, x: float) -> Structure:
        return Structure.from_spacegroup("Fm-3m", Lattice.cubic(x), [a, b], [[0.25, 0.25, 0.25], [0, 0, 0]])

    bundled = {s.name.split(":")[-1]: s.structure for s in load_seeds(["pymatgen:default"])}
    olivine = bundled["LiFePO4"]
    cells = {
        "LiF": rocksalt("Li", "F", 4.03),
        "NaF": rocksalt("Na", "F", 4.63),
        "LiCl": rocksalt("Li", "Cl", 5.13),
        "NaCl": rocksalt("Na", "Cl", 5.64),
        "LiBr": rocksalt("Li", "Br", 5.50),
        "Li2O": antifluorite("Li", "O", 4.61),
        "Na2O": antifluorite("Na", "O", 5.55),
        "Li2S": antifluorite("Li", "S", 5.71),
        "Na2S": antifluorite("Na", "S", 6.54),
        "LiCoO2": Structure.from_spacegroup(
            "R-3m", Lattice.hexagonal(2.82, 14.05), ["Li", "Co", "O"], [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.2396]]
        ),
        "Li2O2": bundled["Li2O2"],
        "LiFePO4": olivine,
        "NaFePO4": bundled["NaFePO4"],
        "LiMnPO4": olivine.copy().replace_species({"Fe": "Mn"}),
        "LiCoPO4": olivine.copy().replace_species({"Fe": "Co"}),
        "LiNiPO4": olivine.copy().replace_species({"Fe": "Ni"}),
    }
    rng = np.random.default_rng(0)
    out = []
    for name, s in cells.items():
        s = right_handed(Structure.from_sites(s.get_primitive_structure() if len(s) > 30 else s))
        s = s.copy()
        s.scale_lattice(s.volume * 1.04**3)
        s = Structure(s.lattice, s.species, s.cart_coords + rng.normal(0, 0.05, (len(s), 3)), coords_are_cartesian=True)
        assert 5 <= len(s) <= 30, (name, len(s))
        out.append((name, s))
    return out


def baseline(cells: list, fmax: float, steps: int) -> tuple[float, list[float], list[int]]:
    """CHGNet's StructOptimizer, one structure after another (torch default threads)."""
    import contextlib
    import io

    from chgnet.model import CHGNet, StructOptimizer

    with contextlib.redirect_stdout(io.StringIO()):
        model = CHGNet.load(use_device="cpu", verbose=False)
        relaxer = StructOptimizer(model=model, use_device="cpu")
    energies, n_steps = [], []
    start = time.perf_counter()
    for _, s in cells:
        with contextlib.redirect_stdout(io.StringIO()):
            out = relaxer.relax(s, fmax=fmax, steps=steps, relax_cell=True, verbose=False)
        traj = out["trajectory"]
        energies.append(float(traj.energies[-1]) / len(s))
        n_steps.append(len(traj.energies) - 1)
    return time.perf_counter() - start, energies, n_steps


def _relax_share(
    cells: list, fmax: float, steps: int, batch_size: int, threads: int = 1
) -> list[tuple[float | None, int, str]]:
    """Worker side: relax a share of the cells with the project's oracle (``threads`` torch threads)."""
    import torch

    from oracle.relax import RelaxConfig, relax_many

    torch.set_num_threads(threads)
    config = RelaxConfig(fmax=fmax, max_steps=steps, timeout_s=3600)
    results = relax_many([s for _, s in cells], config, batch_size=batch_size)
    return [(r.energy_per_atom, r.n_steps, r.status) for r in results]


def project(
    cells: list, fmax: float, steps: int, workers: int, batch_size: int, threads: int
) -> tuple[float, float, list, list]:
    """The oracle in this process (``workers=0``, ``threads`` torch threads) or on a local Dask cluster of
    one-thread workers: returns (wall s, cluster start s, energies, steps)."""
    if workers == 0:
        start = time.perf_counter()
        out = _relax_share(cells, fmax, steps, batch_size, threads)
        return time.perf_counter() - start, 0.0, [e for e, _, _ in out], [n for _, n, _ in out]
    from dask.distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    cluster_s = time.perf_counter() - t0
    try:
        shares = [list(range(k, len(cells), workers)) for k in range(workers)]  # interleaved by size
        start = time.perf_counter()
        futures = [client.submit(_relax_share, [cells[i] for i in idx], fmax, steps, batch_size) for idx in shares]
        parts = client.gather(futures)
        wall = time.perf_counter() - start
    finally:
        client.close()
        cluster.close()
    energies: list = [None] * len(cells)
    n_steps: list = [0] * len(cells)
    for idx, part in zip(shares, parts, strict=True):
        for i, (e, n, _) in zip(idx, part, strict=True):
            energies[i], n_steps[i] = e, n
    return wall, cluster_s, energies, n_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--workers", type=int, default=0, help="Dask worker processes, 1 thread each (0: in this process)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads with --workers 0")
    parser.add_argument("--batch-size", type=int, default=16, help="structures per batched CHGNet call per worker")
    parser.add_argument("--fmax", type=float, default=0.05, help="force convergence (eV/Å), both sides")
    parser.add_argument("--steps", type=int, default=300, help="step limit, both sides")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/oracle.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")

    cells = structures()
    base_s, base_e, base_n = baseline(cells, args.fmax, args.steps)
    ours_s, cluster_s, ours_e, ours_n = project(
        cells, args.fmax, args.steps, args.workers, args.batch_size, args.threads
    )

    print(f"{'structure':<10} {'atoms':>5} {'E base':>10} {'E ours':>10} {'dE meV/at':>10} {'steps b/o':>10}")
    diffs = []
    for (name, s), eb, eo, nb, no in zip(cells, base_e, ours_e, base_n, ours_n, strict=True):
        d = abs(eo - eb) * 1000 if eo is not None else float("inf")
        diffs.append(d)
        shown = eo if eo is not None else float("nan")
        print(f"{name:<10} {len(s):>5} {eb:>10.4f} {shown:>10.4f} {d:>10.3f} {nb:>4}/{no:<5}")
    speedup = base_s / ours_s
    where = f"{args.workers} Dask workers x 1 thread" if args.workers else f"in process, {args.threads} threads"
    print(
        f"baseline (StructOptimizer loop, {os.cpu_count()} cpus): {base_s:.1f} s; "
        f"oracle ({where}, batch {args.batch_size}): {ours_s:.1f} s (+{cluster_s:.1f} s cluster start, not counted)"
    )
    result = {
        "benchmark": "oracle",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "fmax": args.fmax,
            "steps": args.steps,
            "workers": args.workers,
            "threads": args.threads,
            "batch_size": args.batch_size,
        },
        "baseline_s": round(base_s, 2),
        "oracle_s": round(ours_s, 2),
        "cluster_start_s": round(cluster_s, 2),
        "speedup": round(speedup, 3),
        "max_abs_dE_meV_per_atom": round(max(diffs), 4),
        "structures": [
            {"name": n, "atoms": len(s), "e_base": eb, "e_ours": eo, "steps_base": nb, "steps_ours": no}
            for (n, s), eb, eo, nb, no in zip(cells, base_e, ours_e, base_n, ours_n, strict=True)
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"speedup={speedup:.2f} max_abs_dE_meV_per_atom={max(diffs):.3f}")


if __name__ == "__main__":
    main()
