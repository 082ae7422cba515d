"""Generators side by side: valid, unique, novel, stable and S.U.N. rates from the same data, same sample count.

Each generator makes ``--n`` candidates (default 200) that must hold Li or Na:

- ``ion-exchange``: one Li<->Na exchange per parent; parents are the MP-20 + MPTS-52 structures with Li or Na
  (at most 30 sites), shuffled with the seed;
- ``substitution``: the most probable data-mined substitution (Hautier et al. 2011) of each parent, same parents;
- ``pyxtal``: random symmetric structures of charge-balanced compositions of the battery palette;
- ``learned``: the project's Wyckoff transformer trained on MP-20 + MPTS-52 (``--model DIR`` reuses a saved one,
  else it is trained here), unconditioned except for the alkali token;
- ``learned | band_gap >= 3``: the same model conditioned on the wide-gap class.

Rates are over the ``n`` requested samples. valid: passes the shared filters (a plausible cell, elements, size,
charge balance, distances, density); unique: valid and not a StructureMatcher duplicate of an earlier sample;
novel: unique and matching no structure of the training files (MP-20 + MPTS-52); stable: unique, relaxed by the
project's oracle (CHGNet 0.3.0, FIRE + cell filter, fmax 0.05 eV/Å, 200 steps) and within 0.1 eV/atom of the
hull of the reference phases (MP-20 + MPTS-52 MP formation energies and MP elemental references, MP2020 scale);
S.U.N.: stable, unique and novel. The conditioning check predicts the band gap of each valid sample with a
``hurdle-gb`` model trained here on MP-20's PBE gaps and reports the share predicted >= 3 eV.

Run (about 40 minutes on 2 cores)::

    flock /tmp/heavy.lock .venv/bin/python benchmarks/generators.py [--n 200] [--seed 0] [--model DIR]

Prints the table; the last line reads ``learned_sun=<x> ion_exchange_sun=<y> gap3_share_conditioned=<a>
gap3_share_unconditioned=<b>``. Writes ``benchmarks/results/generators.json``.
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
from typing import Any

import numpy as np

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

STABLE_EV = 0.1


def parents(seed: int, max_sites: int) -> list[tuple[str, Any]]:
    """MP-20 + MPTS-52 structures with Li or Na and at most ``max_sites`` sites, shuffled."""
    from generation.data import training_rows

    rows = [r for r in training_rows() if {"Li", "Na"} & set(_elements(r.formula))]
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.permutation(len(rows)):
        s = rows[int(i)].structure()
        if len(s) <= max_sites and s.is_ordered:
            out.append((rows[int(i)].material_id, s))
    return out


def _elements(formula: str) -> list[str]:
    from pymatgen.core import Composition

    return [el.symbol for el in Composition(formula).elements]


def per_parent(name: str, n: int, pool: list[tuple[str, Any]], config: Any) -> tuple[list[Any], float]:
    """The generator's first candidate of each parent in turn until ``n``; (candidates, seconds)."""
    from generation import GENERATORS, GenerationRequest

    gen = GENERATORS.get(name)()
    out: list[Any] = []
    start = time.perf_counter()
    for parent in pool:
        if len(out) >= n:
            break
        got = gen.generate(GenerationRequest(n=1, parents=[parent]), config)
        if got:
            out.append(got[0])
    return out, time.perf_counter() - start


def sampled(
    name: str, n: int, config: Any, seed: int, condition: Any = None, store: Any = None
) -> tuple[list[Any], float]:
    from generation import GENERATORS, GenerationRequest

    start = time.perf_counter()
    got = GENERATORS.get(name)().generate(GenerationRequest(n=n, seed=seed, condition=condition, store=store), config)
    return got[:n], time.perf_counter() - start


def relax_and_hull(structures: list[Any], threads: int) -> tuple[list[float], float]:
    """Energy above the reference hull (eV/atom; NaN for a failed relaxation) of each structure; (values, s)."""
    import torch
    from pymatgen.core import Structure

    from oracle.compat import correct_energy
    from oracle.phases import default_phase_set
    from oracle.potentials import get_potential
    from oracle.relax import RelaxConfig, relax_many

    torch.set_num_threads(threads)
    phases = default_phase_set(competing=False)
    config = RelaxConfig(fmax=0.05, max_steps=200)
    scale = get_potential(config.potential).energy_scale
    start = time.perf_counter()
    results = relax_many(structures, config, batch_size=16)
    out = []
    for s, r in zip(structures, results, strict=True):
        if r.status == "failed" or r.energy_total is None or not np.isfinite(r.energy_total):
            out.append(float("nan"))
            continue
        relaxed = Structure.from_dict(r.relaxed_structure) if r.relaxed_structure else s
        try:
            e = correct_energy(relaxed, float(r.energy_total), energy_scale=scale).energy_per_atom
            out.append(float(phases.stability(relaxed.composition, e).e_above_hull))
        except Exception:  # no elemental reference or MP2020 rejects it: not stable
            out.append(float("nan"))
    return out, time.perf_counter() - start


def gap_model(seed: int) -> Any:
    """``hurdle-gb`` on MP-20's band gaps (eV), for the conditioning check."""
    from generation.data import training_rows
    from surrogates.descriptor_models import make_descriptor_ensemble

    rows = [r for r in training_rows(("mp_20",)) if np.isfinite(r.band_gap)]
    model = make_descriptor_ensemble("hurdle-gb", n_members=4, seed=seed, num_threads=2)
    return model.fit([r.structure() for r in rows], [r.band_gap for r in rows])


def _print_rows(rows: dict[str, dict[str, Any]]) -> None:
    """The rates table, one line per generator."""
    print()
    head = f"{'generator':26s} {'valid':>6s} {'unique':>6s} {'novel':>6s} {'stable':>6s} {'S.U.N.':>6s} " \
           f"{'S|U':>5s} {'gap>=3':>6s} {'samples/s':>9s} {'oracle s':>8s}"  # fmt: skip
    print(head)
    for name, r in rows.items():
        rates = " ".join(f"{r[k]:6.1%}" for k in ("valid", "unique", "novel", "stable", "sun"))
        print(
            f"{name:26s} {rates} {r['stable_of_unique']:5.0%} {r['gap3_share']:6.1%} "
            f"{r['samples_per_s']:9.1f} {r['oracle_s']:8.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="samples per generator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None, help="saved learned generator folder (else trained here)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-relax", action="store_true", help="skip the oracle (no stable / S.U.N. rates)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "generators.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    from core.expressions import parse_target
    from generation import GenerateConfig, screen
    from generation.data import NoveltyIndex, training_rows
    from generation.learned import TrainedGenerator, default_training_rows, register_generator, train_generator
    from store import open_store

    config = GenerateConfig()
    t0 = time.perf_counter()
    if args.model and args.model.is_dir():
        gen = TrainedGenerator.load(args.model)
        train_s = float(gen.meta.get("train_s", float("nan")))
    else:
        gen = train_generator(default_training_rows())
        train_s = time.perf_counter() - t0
        if args.model:
            gen.save(args.model)
    store = open_store("mongomock://generators-benchmark", "bench")
    register_generator(store, config.learned_model, args.model or Path("."), gen)
    from generation import learned as learned_module

    learned_module._LOADED[f"{config.learned_model}-v1"] = gen

    pool = parents(args.seed, config.max_sites)
    runs: dict[str, tuple[list[Any], float]] = {}
    runs["ion-exchange"] = per_parent("ion-exchange", args.n, pool, config)
    runs["substitution"] = per_parent("substitution", args.n, pool, config.model_copy(update={"ion_exchange": False}))
    runs["pyxtal"] = sampled("pyxtal", args.n, config, args.seed)
    runs["learned"] = sampled("learned", args.n, config, args.seed, store=store)
    runs["learned | band_gap >= 3"] = sampled(
        "learned", args.n, config, args.seed, condition=parse_target("band_gap >= 3"), store=store
    )
    novelty = NoveltyIndex.from_rows(training_rows())
    predictor = gap_model(args.seed)
    rows: dict[str, dict[str, Any]] = {}
    for name, (cands, gen_s) in runs.items():
        report = screen(cands, config)
        valid = [c for c, r in zip(cands, report.reasons, strict=True) if not r or r.startswith("duplicate")]
        unique = report.passed
        novel = [novelty.is_novel(c.structure) for c in unique]
        gaps = predictor.predict([c.structure for c in valid])[0] if valid else np.array([])
        print(f"{name}: {len(cands)} made in {gen_s:.1f} s, {len(valid)} valid, {len(unique)} unique, "
              f"{sum(novel)} novel; relaxing ...", flush=True)  # fmt: skip
        hull, oracle_s = ([float("nan")] * len(unique), 0.0)
        if not args.no_relax and unique:
            hull, oracle_s = relax_and_hull([c.structure for c in unique], args.threads)
        stable = [bool(np.isfinite(h) and h <= STABLE_EV) for h in hull]
        n = args.n
        rows[name] = {
            "n": n,
            "made": len(cands),
            "valid": len(valid) / n,
            "unique": len(unique) / n,
            "novel": sum(novel) / n,
            "stable": sum(stable) / n,
            "sun": sum(s and v for s, v in zip(stable, novel, strict=True)) / n,
            "stable_of_unique": sum(stable) / max(1, len(unique)),
            "median_e_hull": float(np.nanmedian(hull)) if np.isfinite(hull).any() else float("nan"),
            "gap3_share": float(np.mean(gaps >= 3)) if len(gaps) else float("nan"),
            "samples_per_s": len(cands) / gen_s if gen_s > 0 else float("nan"),
            "oracle_s": oracle_s,
            "oracle_s_per_structure": oracle_s / max(1, len(unique)),
            "rejected": dict(report.rejected),
        }
    _print_rows(rows)
    payload = {
        "settings": {**vars(args), "model": str(args.model), "out": str(args.out)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "learned_model": {k: v for k, v in gen.meta.items() if k not in ("gap_counts", "alkali_counts")},
        "train_s": train_s,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, default=str))
    print(f"wrote {args.out}")
    print(
        f"learned_sun={rows['learned']['sun']:.3f} ion_exchange_sun={rows['ion-exchange']['sun']:.3f} "
        f"gap3_share_conditioned={rows['learned | band_gap >= 3']['gap3_share']:.3f} "
        f"gap3_share_unconditioned={rows['learned']['gap3_share']:.3f}"
    )


if __name__ == "__main__":
    main()
