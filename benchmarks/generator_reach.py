"""Reach of the candidate generators on the rediscovery dev split: which future phases can the pool hold at all?

Known phases: ``mp20:val`` + ``mpts52:val[year <= 2002]``; future: Li/Na phases of ``mpts52:val[year >= 2003]``
(111), loaded, and known ones matching a future one dropped, as ``battery-discovery rediscover`` does. Each setting
runs a registered generator (``generation.registry``) on a parent set, screens its output with the loop's filters
(``generation.screen``: elements, size, charge balance, distances, density, duplicates) and counts the future phases
matched (``FutureIndex.match``: same reduced formula, StructureMatcher) among the passed candidates. Settings:

- ``seeds48-*``: the 48 Li/Na seeds ``sample_seeds`` draws for seed 0 (no evaluated parents: round 1's pool);
- ``known-*``: every known Li/Na phase (<= 30 sites, or all sizes with ``max_sites`` 52).

The bound: per future phase, the known phases of its prototype (anonymous StructureMatcher) and the data-mined
probability of the element mapping a substitution would need. Writes ``var/reach/reach.json``. Run:
``OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/generator_reach.py [--limit-parents N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

KNOWN = ("mp20:val", "mpts52:val[year <= 2002]")
FUTURE = "mpts52:val[year >= 2003]"
ELEMENTS = ("Li", "Na")
KIND_ORDER = {"ion_exchange": 0, "aliovalent": 1, "substitution": 2}


WIDE = {"substitution_threshold": 1e-4, "max_substitutions_per_parent": 3000}
#: name -> (parent set, registered generator, GenerateConfig overrides)
SETTINGS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "seeds48-default": ("seeds48", "substitution", {}),
    "seeds48-maxsubs3000": ("seeds48", "substitution", {"max_substitutions_per_parent": 3000}),
    "seeds48-thr1e-4": ("seeds48", "substitution", WIDE),
    "known-default": ("known30", "substitution", {}),
    "known-ion-exchange": ("known30", "ion-exchange", {}),
    "known-sites52": ("known", "substitution", {"max_sites": 52}),
    "known-thr1e-4": ("known30", "substitution", WIDE),
}
DEFAULT_RUN = tuple(name for name in SETTINGS if name != "known-thr1e-4")


def load_split() -> tuple[list[Any], list[Any]]:
    """(known phases without those matching a future one, future Li/Na phases), as ``prepare_split`` makes them."""
    from battery_discovery.rediscover import RediscoverConfig
    from battery_discovery.rediscover_run import load_split

    split = load_split(RediscoverConfig(known=KNOWN, future=FUTURE, elements=ELEMENTS), say=lambda _: None)
    return split.kept, list(split.future.values())


def as_parents(phases: list[Any]) -> list[tuple[str, Any]]:
    """(id, structure) pairs checked as ``load_seeds`` checks seeds; phases it would refuse are left out."""
    from core.errors import SeedError
    from generation.seeds import check_structure

    out = []
    for p in phases:
        try:
            out.append((p.id, check_structure(p.structure, p.id)))
        except SeedError:
            continue
    return out


def run_setting(name: str, parents: list[tuple[str, Any]], index: Any) -> dict[str, Any]:
    """Generate from each parent, screen the whole pool, match the passed candidates (and the filtered ones)."""
    from generation import GENERATORS, GenerateConfig, GenerationRequest, screen

    parent_set, generator_name, overrides = SETTINGS[name]
    config = GenerateConfig(generators=(generator_name,), **overrides)
    generator = GENERATORS.get(generator_name)()
    start = time.perf_counter()
    raw, barren = [], 0
    for parent in tqdm(parents, desc=name, leave=False):
        made = generator.generate(GenerationRequest(n=0, parents=[parent]), config)
        raw += made
        barren += not made
    raw.sort(key=lambda c: (KIND_ORDER.get(c.kind, 3), -c.probability, c.structure.composition.reduced_formula))
    report = screen(raw, config)
    rank = {id(c): i for i, c in enumerate(report.passed)}  # position in the generator's order
    matched: dict[str, dict[str, Any]] = {}
    filtered: dict[str, str] = {}
    for cand, reason in zip(raw, report.reasons, strict=True):
        hit = index.match(cand.structure)
        if hit is None:
            continue
        if id(cand) in rank and hit not in matched:
            matched[hit] = {"parent": cand.parent, "kind": cand.kind, "rank": rank[id(cand)]}
            matched[hit] |= {"substitutions": cand.substitutions, "probability": cand.probability}
        elif reason and not reason.startswith("duplicate"):
            filtered.setdefault(hit, reason)
    return {
        **{"parent_set": parent_set, "generator": generator_name, "config": overrides},
        "parents": len(parents),
        "parents_without_output": barren,
        "raw": len(raw),
        "candidates": len(report.passed),
        "rejected": dict(report.rejected),
        "matched": len(matched),
        "matched_ids": matched,
        "matched_only_before_filters": {k: v for k, v in filtered.items() if k not in matched},
        "wall_s": round(time.perf_counter() - start, 1),
    }


def mapping_probability(parent: Any, target: Any, mapping: dict[Any, Any]) -> float | None:
    """Data-mined probability of turning ``parent`` into ``target`` with the element ``mapping`` (None: a
    structure without oxidation states, mixed valence, or a species the table lacks)."""
    from generation.substitution import _predictor, decorate

    dp, dt = decorate(parent), decorate(target)
    if dp is None or dt is None:
        return None
    by_symbol: dict[str, set[Any]] = {}
    for sp in dt.composition:
        by_symbol.setdefault(sp.symbol, set()).add(sp)
    olds = sorted(set(dp.composition), key=str)
    news = []
    for old in olds:
        new = by_symbol.get(str(mapping.get(old.element, old.element)), set())
        if len(new) != 1:
            return None
        news.append(next(iter(new)))
    try:
        return float(_predictor(1e-3).p.cond_prob_list(news, olds))
    except Exception:  # a species outside the table
        return None


def prototype_bound(future: list[Any], known: list[Any]) -> dict[str, dict[str, Any]]:
    """Per future phase: its own filter verdict (default config), known phases of its prototype, and the best
    Li/Na parent (<= 30 sites) with the probability of the needed mapping and whether it is a Li<->Na exchange."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from battery_discovery.rediscover import holds_elements
    from generation import GenerateConfig, rejection_reason

    config, matcher = GenerateConfig(), StructureMatcher()
    groups: dict[str, list[Any]] = {}
    for p in known:
        groups.setdefault(p.structure.composition.reduced_composition.anonymized_formula, []).append(p)
    out = {}
    for f in tqdm(future, desc="prototype bound", leave=False):
        same, best = [], None
        for k in groups.get(f.structure.composition.reduced_composition.anonymized_formula, []):
            maps = matcher.get_all_anonymous_mappings(k.structure, f.structure)
            if not maps:
                continue
            li_na = holds_elements(k.formula, ELEMENTS)
            same.append({"id": k.id, "formula": k.formula, "sites": len(k.structure), "li_na": li_na})
            if not li_na or len(k.structure) > config.max_sites:
                continue
            changes = {(str(a), str(b)) for a, b in maps[0].items() if str(a) != str(b)}
            exchange = bool(changes) and changes <= {("Li", "Na"), ("Na", "Li")}
            prob = mapping_probability(k.structure, f.structure, maps[0])
            score = (exchange, prob or 0.0)
            if best is None or score > best["score"]:
                best = {"id": k.id, "formula": k.formula, "ion_exchange": exchange, "probability": prob, "score": score}
        if best:
            best.pop("score")
        out[f.id] = {
            "formula": f.formula,
            "sites": len(f.structure),
            "filter": rejection_reason(f.structure, config),
            "prototype_known": same,
            "best_parent": best,
        }
    return out


def why_not(entry: dict[str, Any], threshold: float = 1e-3) -> str:
    """The first obstacle between a future phase and the default generator's pool."""
    if entry["filter"]:
        return entry["filter"].split(":", 1)[0]
    if not entry["prototype_known"]:
        return "no known phase of its prototype"
    if not any(k["li_na"] for k in entry["prototype_known"]):
        return "prototype only among non-Li/Na known phases"
    best = entry["best_parent"]
    if best is None:
        return "prototype parents all > 30 sites"
    if best["ion_exchange"]:
        return "Li<->Na exchange of a known parent (filtered or undecorated parent)"
    if best["probability"] is None:
        return "no oxidation states / species outside the substitution table"
    if best["probability"] < threshold:
        return f"substitution probability {best['probability']:.1e} < {threshold:g}"
    return "unexplained (mapping above threshold)"


def parent_sets(known: list[Any], limit: int, seed: int) -> tuple[dict[str, list[tuple[str, Any]]], dict[str, int]]:
    """The parent sets (known ones cut to a random ``limit`` when > 0) and their full sizes."""
    from battery_discovery.rediscover import holds_elements, sample_seeds

    li_na = sorted((p for p in known if holds_elements(p.formula, ELEMENTS)), key=lambda p: p.id)
    sets = {
        "seeds48": as_parents(sample_seeds(known, ELEMENTS, 48, seed)),
        "known": as_parents(li_na),
    }
    sets["known30"] = [p for p in sets["known"] if len(p[1]) <= 30]
    full = {k: len(v) for k, v in sets.items()}
    if limit > 0:
        rng = np.random.default_rng(seed)
        for name in ("known", "known30"):
            if len(sets[name]) > limit:
                sets[name] = [sets[name][i] for i in sorted(rng.permutation(len(sets[name]))[:limit])]
    return sets, full


def main(argv: list[str] | None = None) -> None:
    """Run the chosen settings and the bound, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    every = ", ".join(SETTINGS)
    parser.add_argument("--settings", default=",".join(DEFAULT_RUN), help=f"comma-separated, of: {every}")
    parser.add_argument("--limit-parents", type=int, default=0, help="random subset of the known-* parents (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed sample (sample_seeds) and parent subset")
    parser.add_argument("--no-bound", action="store_true", help="skip the prototype upper bound (about 4 min)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "var/reach/reach.json")
    args = parser.parse_args(argv)
    chosen = [name for name in SETTINGS if name in args.settings.split(",")]
    import torch

    from battery_discovery.rediscover import FutureIndex

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")

    t0 = time.perf_counter()
    known, future = load_split()
    index = FutureIndex(future)
    sets, full = parent_sets(known, args.limit_parents, args.seed)
    print(f"{len(known)} known phases, {len(future)} future ones; parents {full} ({time.perf_counter() - t0:.0f} s)")
    results = {}
    for name in chosen:
        r = run_setting(name, sets[SETTINGS[name][0]], index)
        scale = full[SETTINGS[name][0]] / max(1, r["parents"])
        r["candidates_extrapolated"] = round(r["candidates"] * scale) if scale > 1 else r["candidates"]
        results[name] = r
        print(f"{name}: {r['candidates']} candidates, {r['matched']} matched ({r['wall_s']:.0f} s)", flush=True)
    reached = {fid for r in results.values() for fid in r["matched_ids"]}
    bound = {} if args.no_bound else prototype_bound(future, known)
    for fid, entry in bound.items():
        entry["reached"] = fid in reached
        entry["why_not"] = "" if fid in reached else why_not(entry)
    header = f"{'setting':22} {'parents':>8} {'candidates':>11} {'extrap.':>8} {'matched':>8} {'wall s':>7}"
    print(header + "\n" + "-" * len(header))
    for name, r in results.items():
        print(
            f"{name:22} {r['parents']:8d} {r['candidates']:11d} {r['candidates_extrapolated']:8d} "
            f"{r['matched']:5d}/{len(future)} {r['wall_s']:7.0f}"
        )
    by_formula = {p.id: p.formula for p in future}
    for name, r in results.items():
        print(f"{name}: {', '.join(sorted(by_formula[i] for i in r['matched_ids'])) or '-'}")
    if bound:
        counts = Counter(e["why_not"] or "reached" for e in bound.values())
        n_proto = sum(bool(e["prototype_known"]) for e in bound.values())
        n_parent = sum(e["best_parent"] is not None for e in bound.values())
        print(f"bound: {n_proto} with a known phase of their prototype, {n_parent} with a Li/Na one <= 30 sites")
        for reason, n in counts.most_common():
            print(f"  {n:4d}  {reason}")
    doc = {
        **{"known": list(KNOWN), "future": FUTURE, "n_known": len(known), "n_future": len(future)},
        **{"parents_full": full, "limit_parents": args.limit_parents, "seed": args.seed, "settings": results},
        "future_phases": bound or {p.id: {"formula": p.formula, "reached": p.id in reached} for p in future},
        "total_wall_s": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
