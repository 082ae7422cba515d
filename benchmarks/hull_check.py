"""Sanity check of the hull and the oracle: CHGNet-relaxed MP phases against the MP reference phases.

Takes the Li/Na phases of the held-out 20 % of ``mp_20_biternary/val.csv.gz`` (the seeded split the band-gap
benchmark uses: ``numpy`` permutation with ``--seed``), relaxes each with the project's oracle (CHGNet, the
loop's default relaxation settings, lockstep batches), corrects onto the MP scale, and places it on the hull of
the reference phases (MP-20 + MPTS-52 files and MP's elemental references) with and without its own MP entry.
MP says every one of them lies within 0.08 eV/atom of MP's hull (MP-20 keeps only such phases), so the oracle's
values should too, up to CHGNet's error and the phases missing offline. Prints a table and writes JSON.

    .venv/bin/python benchmarks/hull_check.py [--n 60] [--seed 0] [--out benchmarks/results/hull_check.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]


def _print_results(
    summary: dict[str, Any], out: list[dict[str, Any]], ok: list[dict[str, Any]], elapsed: float
) -> None:
    """The summary measures, then one line per relaxed phase."""
    print(f"{len(ok)} of {len(out)} held-out MP-20 Li/Na phases relaxed by CHGNet in {elapsed:.0f} s")
    print(f"{'measure':<52} {'value':>8}")
    for k, v in summary.items():
        print(f"{k:<52} {v:>8.3f}" if isinstance(v, float) else f"{k:<52} {v:>8}")
    print(
        f"\n{'formula':<14} {'sites':>5} {'E_f MP':>8} {'E_f CHGNet':>10} {'E_hull MP':>9} {'ours':>7}"
        f" {'ours w/o own':>12}"
    )
    for r in ok:
        print(
            f"{r['formula']:<14} {r['n_sites']:>5} {r['mp_formation_energy']:>8.3f}"
            f" {r['chgnet_formation_energy']:>10.3f}"
            f" {r['mp_e_above_hull']:>9.3f} {r['e_above_hull_with_own_entry']:>7.3f}"
            f" {r['e_above_hull_without_own_entry']:>12.3f}{' thin' if r['thin'] else ''}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60, help="held-out Li/Na phases relaxed (smallest cells first)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "hull_check.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np
    import pandas as pd
    from pymatgen.core import Structure

    from core.threads import torch_threads
    from oracle import get_potential, relax_many
    from oracle.completion import reference_phase_set
    from oracle.config import OracleConfig
    from oracle.labelling import elemental_energies, relaxation_fields
    from oracle.phases import PhaseSet, find_phase_file

    df = pd.read_csv(find_phase_file("mp_20"))
    perm = np.random.default_rng(args.seed).permutation(len(df))
    test = df.iloc[perm[int(0.8 * len(df)) :]]
    test = test[test.pretty_formula.str.contains(r"Li|Na")]
    structures = [Structure.from_str(c, fmt="cif") for c in test.cif]
    order = np.argsort([len(s) for s in structures], kind="stable")[: args.n]
    rows = [test.iloc[i] for i in order]
    structures = [structures[i] for i in order]
    oracle = OracleConfig()
    potential = get_potential(oracle.relax.potential)
    phases = reference_phase_set(oracle)
    references, _ = elemental_energies(oracle, {el.symbol for s in structures for el in s.composition.elements})
    results: dict[int, dict] = {}

    def on_result(k: int, result: object) -> None:
        relaxed = Structure.from_dict(result.relaxed_structure) if result.relaxed_structure else structures[k]  # type: ignore[attr-defined]
        fields = relaxation_fields(
            result,  # type: ignore[arg-type]
            relaxed,
            formula=rows[k].pretty_formula,
            references=references,
            energy_scale=potential.energy_scale,
            correction=oracle.energy_correction,
        )
        results[k] = fields

    start = time.perf_counter()
    with torch_threads(args.threads):
        relax_many(structures, oracle.relax, batch_size=oracle.batch_size, on_result=on_result)
    elapsed = time.perf_counter() - start
    out = []
    for k, row in enumerate(rows):
        f = results.get(k, {})
        if f.get("status") == "failed" or f.get("corrected_energy_per_atom") is None:
            out.append({"material_id": row.material_id, "formula": row.pretty_formula, "status": "failed"})
            continue
        energy = float(f["corrected_energy_per_atom"])
        with_self = phases.stability(row.pretty_formula, energy)
        without = PhaseSet(compounds=[p for p in phases.compounds if p.entry_id != row.material_id], mu=phases.mu)
        alone = without.stability(row.pretty_formula, energy)
        out.append(
            {
                "material_id": row.material_id,
                "formula": row.pretty_formula,
                "n_sites": len(structures[k]),
                "status": f["status"],
                "mp_formation_energy": float(row.formation_energy_per_atom),
                "chgnet_formation_energy": float(f["formation_energy_per_atom"]),
                "mp_e_above_hull": float(row.e_above_hull),
                "e_above_hull_with_own_entry": with_self.e_above_hull,
                "e_above_hull_without_own_entry": alone.e_above_hull,
                "thin": alone.thin,
                "n_phases": alone.n_phases,
            }
        )
    ok = [r for r in out if r["status"] != "failed"]
    d_form = np.array([r["chgnet_formation_energy"] - r["mp_formation_energy"] for r in ok])
    e_with = np.array([r["e_above_hull_with_own_entry"] for r in ok])
    e_without = np.array([r["e_above_hull_without_own_entry"] for r in ok])
    mp = np.array([r["mp_e_above_hull"] for r in ok])
    summary = {
        "n": len(out),
        "n_relaxed": len(ok),
        "relax_wall_s": round(elapsed, 1),
        "formation_energy_MAE_vs_MP": float(np.mean(np.abs(d_form))),
        "formation_energy_median_abs_diff": float(np.median(np.abs(d_form))),
        "e_hull_with_own_entry_median": float(np.median(e_with)),
        "e_hull_without_own_entry_median": float(np.median(e_without)),
        "within_0.08_of_MP_hull_with_own_entry": float(np.mean(np.abs(e_with - mp) <= 0.08)),
        "e_hull_without_own_entry_in_[-0.1,0.1]": float(np.mean(np.abs(e_without) <= 0.1)),
        "n_thin": int(sum(r["thin"] for r in ok)),
    }
    _print_results(summary, out, ok, elapsed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "hull_check", "summary": summary, "rows": out}, indent=1))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
