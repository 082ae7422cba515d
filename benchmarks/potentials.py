"""Every registered potential (and two-tier oracles) on the same Li/Na Materials Project phases, side by side.

Picks ``--n`` Li/Na phases of 2-5 elements (at most ``--max-atoms`` sites) from the shared MP files: MP-20 val
(``e_above_hull`` < 0.08 eV/atom by construction) and MPTS-52 val (``energy_above_hull`` up to several tenths), half
on MP's hull (<= 0.025 eV/atom) and half above it, drawn with ``--seed``. Each oracle relaxes them from MP's
structures (the loop's relaxation settings, lockstep batches, ``--threads`` torch threads) and its labels are
compared with MP's:

* formation-energy MAE against MP's ``formation_energy_per_atom`` (eV/atom);
* energy-above-hull MAE against MP's value, on the hull of the offline reference phases (MP-20 val, MP-20 test
  without Li/Na, MPTS-52 val, MP's elemental references) plus the other scored phases at MP's energies, so each
  phase is scored on a hull that excludes itself only;
* the F1 of the stable verdict (energy above hull <= ``--stable`` eV/atom; positive: stable) against MP's verdict,
  and the agreement of verdicts;
* relaxation seconds per structure (wall time of the batch / structures) and failures.

A ``mp-dft`` row puts MP's own energies on the same hulls: the error the offline hull alone causes (the ceiling of
any potential here). Prints the table and writes JSON (``--out``).

    .venv/bin/python benchmarks/potentials.py [--n 200] [--oracles chgnet,sevennet:7net-0,...] [--threads 2]

An oracle is a potential spec or ``RELAX+REFINE`` (two tiers: relax with RELAX, single point with REFINE), or
``RELAX+REFINE@relax`` (a short re-relaxation with REFINE, at most 50 steps).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]

DEFAULT_ORACLES = (
    "chgnet,sevennet:7net-0,sevennet:7net-l3i5,chgnet+sevennet:7net-l3i5,sevennet:7net-0+sevennet:7net-l3i5"
)


def pick_phases(n: int, seed: int, max_atoms: int) -> list[dict[str, Any]]:
    """``n`` Li/Na phases of 2-5 elements, half on MP's hull and half above, smallest cells first within each half
    after a seeded shuffle; each: material_id, formula, cif, MP formation energy and energy above hull (eV/atom)."""
    import numpy as np
    import pandas as pd
    from pymatgen.core import Composition

    from oracle.phases import find_phase_file

    rows: dict[str, dict[str, Any]] = {}
    for source, column in (("mp_20", "e_above_hull"), ("mpts_52", "energy_above_hull")):
        df = pd.read_csv(find_phase_file(source))
        for r in df.itertuples(index=False):
            comp = Composition(getattr(r, "pretty_formula", None) or _cif_formula(r.cif))
            symbols = {el.symbol for el in comp.elements}
            if not ({"Li", "Na"} & symbols) or not 2 <= len(symbols) <= 5:
                continue
            n_sites = _cif_sites(r.cif)
            if n_sites > max_atoms:
                continue
            rows.setdefault(
                str(r.material_id),
                {
                    "material_id": str(r.material_id),
                    "formula": comp.reduced_formula,
                    "cif": r.cif,
                    "n_sites": n_sites,
                    "mp_formation_energy": float(r.formation_energy_per_atom),
                    "mp_e_above_hull": float(getattr(r, column)),
                    "source": source,
                },
            )
    ordered = sorted(rows.values(), key=lambda r: r["material_id"])
    rng = np.random.default_rng(seed)
    on = [r for r in ordered if r["mp_e_above_hull"] <= 0.025]
    above = [r for r in ordered if r["mp_e_above_hull"] > 0.025]
    picked = []
    for group, k in ((on, n - n // 2), (above, n // 2)):
        idx = rng.permutation(len(group))[:k]
        picked += [group[i] for i in sorted(idx)]
    return picked


def _cif_formula(cif: str) -> str:
    for line in cif.splitlines():
        if line.startswith("_chemical_formula_sum"):
            return line.split(None, 1)[1].strip("'\" ")
    raise ValueError("no formula in CIF")


def _cif_sites(cif: str) -> int:
    from pymatgen.core import Structure

    return len(Structure.from_str(cif, fmt="cif"))


def oracle_config(spec: str) -> Any:
    """An OracleConfig for ``RELAX[+REFINE[@relax]]`` with the loop's relaxation settings."""
    from oracle.config import OracleConfig, RefineConfig
    from oracle.relax import RelaxConfig

    relax, _, refine = spec.partition("+")
    refine, _, again = refine.partition("@")
    base = OracleConfig()
    return base.model_copy(
        update={
            "relax": RelaxConfig(**{**base.relax.model_dump(), "potential": relax, "timeout_s": 3600.0}),
            "refine": RefineConfig(potential=refine or None, max_steps=50 if again == "relax" else 0),
            "batch_size": 8,
        }
    )


def run_oracle(spec: str, structures: list[Any], threads: int) -> tuple[list[dict[str, Any]], float]:
    """Label ``structures`` with the oracle ``spec``; returns (fields per structure, wall seconds without loading)."""
    from oracle.labelling import elemental_energies, label_structures
    from oracle.potentials import get_potential

    config = oracle_config(spec)
    get_potential(config.relax.potential)
    get_potential(config.final_potential)
    references, _ = elemental_energies(config, {el.symbol for s in structures for el in s.composition.elements})
    start = time.perf_counter()
    done = [0]

    def progress(i: int, fields: dict[str, Any]) -> None:
        done[0] += 1
        if done[0] % 20 == 0 or done[0] == len(structures):
            print(f"  {spec}: {done[0]}/{len(structures)} ({time.perf_counter() - start:.0f} s)", flush=True)

    out = label_structures(config, structures, num_threads=threads, references=references, on_result=progress)
    return out, time.perf_counter() - start


def score(
    phases: list[dict[str, Any]],
    energies: list[float | None],
    phase_set: Any,
    stable: float,
    dft: list[dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Formation-energy and hull MAEs against MP, verdict F1 and agreement, for corrected energies (eV/atom).

    With ``dft`` (the rows of MP's own energies on the same hulls) also the potential's error alone: the hull MAE
    and the verdict F1 against MP's energies placed on the same offline hull (``*_same_hull``)."""
    from pymatgen.core import Composition

    mp_energy = [p["mp_formation_energy"] + mu_mean(phase_set.mu, p["formula"]) for p in phases]  # MP eV/atom
    e_form_err, hull_err, same_err, rows = [], [], [], []
    tp = fp = fn = tn = 0
    same = [0, 0, 0]  # tp, fp, fn against MP's energies on the same hull
    for i, (p, energy) in enumerate(zip(phases, energies, strict=True)):
        if energy is None or not math.isfinite(energy):
            rows.append(None)
            continue
        comp = Composition(p["formula"])
        others = [(q["material_id"], q["formula"], mp_energy[j]) for j, q in enumerate(phases) if j != i]
        st = phase_set.stability(comp, energy, context=others)
        e_form = energy - mu_mean(phase_set.mu, comp)
        e_form_err.append(abs(e_form - p["mp_formation_energy"]))
        hull_err.append(abs(st.e_above_hull - p["mp_e_above_hull"]))
        ours, theirs = st.e_above_hull <= stable, p["mp_e_above_hull"] <= stable
        tp, fp, fn, tn = (
            tp + (ours and theirs),
            fp + (ours and not theirs),
            fn + (theirs and not ours),
            tn + (not ours and not theirs),
        )
        if dft is not None and dft[i] is not None:
            ref = dft[i]["e_above_hull"]  # type: ignore[index]
            same_err.append(abs(st.e_above_hull - ref))
            a, b = st.e_above_hull <= stable, ref <= stable
            same = [same[0] + (a and b), same[1] + (a and not b), same[2] + (b and not a)]
        rows.append({"e_form": e_form, "e_above_hull": st.e_above_hull})
    n = tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "n_scored": n,
        "e_form_mae": _mean(e_form_err),
        "e_hull_mae": _mean(hull_err),
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "precision": precision,
        "recall": recall,
        "agreement": (tp + tn) / n if n else 0.0,
        "e_hull_mae_same_hull": _mean(same_err),
        "f1_same_hull": _f1(*same),
        "rows": rows,
    }


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def mu_mean(mu: Any, composition: Any) -> float:
    """Atom-fraction-weighted elemental reference energy of ``composition`` (eV/atom)."""
    from pymatgen.core import Composition

    fractions = Composition(composition).fractional_composition
    return sum(float(x) * mu[el.symbol] for el, x in fractions.items())


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="phases scored (half on MP's hull, half above)")
    parser.add_argument("--max-atoms", type=int, default=24, help="largest cell scored (sites)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw")
    parser.add_argument("--oracles", default=DEFAULT_ORACLES, help="comma-separated oracle specs (see above)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--stable", type=float, default=0.025, help="stable verdict: e_above_hull <= this (eV/atom)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "potentials.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import warnings

    warnings.filterwarnings("ignore")
    from pymatgen.core import Structure

    from oracle.phases import PhaseSet, default_phase_set

    phases = pick_phases(args.n, args.seed, args.max_atoms)
    print(f"{len(phases)} Li/Na phases ({sum(p['mp_e_above_hull'] <= args.stable for p in phases)} on MP's hull)")
    structures = [Structure.from_str(p["cif"], fmt="cif") for p in phases]
    full = default_phase_set(("mp_20", "mp_20_test", "mpts_52"), competing=False)
    scored = {p["material_id"] for p in phases}
    hull = PhaseSet(compounds=[c for c in full.compounds if c.entry_id not in scored], mu=full.mu)

    results: dict[str, Any] = {}
    mp_energies = [p["mp_formation_energy"] + mu_mean(hull.mu, p["formula"]) for p in phases]
    results["mp-dft"] = {**score(phases, mp_energies, hull, args.stable), "s_per_structure": 0.0, "failures": 0}
    for spec in [s.strip() for s in args.oracles.split(",") if s.strip()]:
        print(f"oracle {spec}", flush=True)
        fields, wall = run_oracle(spec, structures, args.threads)
        energies = [f.get("corrected_energy_per_atom") if f.get("status") != "failed" else None for f in fields]
        failures = sum(e is None for e in energies)
        results[spec] = {
            **score(phases, energies, hull, args.stable, results["mp-dft"]["rows"]),
            "s_per_structure": wall / len(structures),
            "wall_s": wall,
            "failures": failures,
            "unconverged": sum(f.get("status") == "unconverged" for f in fields),
        }
        _write(args, phases, results)

    print()
    head = f"{'oracle':<36} {'F1':>6} {'agree':>6} {'Ef MAE':>7} {'Eh MAE':>7} {'F1 hull':>7} {'Eh hull':>7}"
    print(f"{head} {'s/struct':>8} {'fail':>5}")
    for spec, r in results.items():
        same = f"{r.get('f1_same_hull', math.nan):>7.3f} {r.get('e_hull_mae_same_hull', math.nan):>7.3f}"
        print(
            f"{spec:<36} {r['f1']:>6.3f} {r['agreement']:>6.3f} {r['e_form_mae']:>7.3f} {r['e_hull_mae']:>7.3f} "
            f"{same} {r['s_per_structure']:>8.2f} {r['failures']:>5}"
        )
    print("F1 hull / Eh hull: against MP's own energies on the same offline hull (the potential's error alone)")
    print(f"(eV/atom; {len(phases)} phases, stable: e_above_hull <= {args.stable}; {args.threads} torch threads)")
    _write(args, phases, results)


def _write(args: argparse.Namespace, phases: list[dict[str, Any]], results: dict[str, Any]) -> None:
    out = {
        "benchmark": "potentials",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "phases": [{k: v for k, v in p.items() if k != "cif"} for p in phases],
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
