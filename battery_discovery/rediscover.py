"""The temporal rediscovery benchmark: does a campaign find real Li/Na materials it was never shown?

A split has *known* phases (everything the campaign may know: its seeds, its hull's reference phases) and *future*
phases (first reported later, hidden). Known phases that match a future one (same reduced formula and pymatgen's
``StructureMatcher``) are dropped first. Every (strategy, seed) pair is then an ordinary ``discovery-loop``
campaign (Prefect flow, store, oracle, retraining): seeded with ``n_seeds`` known phases holding one of
``elements`` (a seed's own sample, the same for every strategy), its hull made of the known phases only
(``oracle.reference_phases: file:<known phases>``, MP online off, hull completion from the known phases), with
the loop's default generators, surrogate and acquisition; only the strategy and the seed vary. ``random`` picks
at random from the same generated candidates: the baseline.

After each round, per campaign: oracle calls so far; future phases matched among the generated candidates (what
the generators can reach), among the evaluated ones (rediscovered), and among those the oracle calls stable
(energy above hull <= ``stable`` eV/atom); the round's hit rates (share of its evaluations with energy above hull
<= 0 and <= 0.1 eV/atom). A future phase counts once, however many candidates match it.

Pure functions of values here (split, matching, metrics, results); the CLI (``battery-discovery rediscover``) and
:func:`run_rediscovery` do the I/O.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The hit-rate thresholds (energy above hull, eV/atom).
HIT_THRESHOLDS: tuple[float, ...] = (0.0, 0.1)
#: What the campaigns compute unless ``loop`` says otherwise: stability only (other properties cost a second
#: relaxation or use property models trained on data of every year).
DEFAULT_PROPERTIES: tuple[str, ...] = ("e_above_hull",)


class RediscoverConfig(BaseModel):
    """What to split and how to run the campaigns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    known: tuple[str, ...] = Field(
        description="Ingest specs of the phases the campaign may know, each optionally filtered: "
        "'mpts52:val[year <= 2002]' (an expression over the data set's labels and metadata)."
    )
    future: str = Field(
        description="Ingest spec of the hidden phases (filtered like known), e.g. 'mpts52:val[year >= 2003]'."
    )
    elements: tuple[str, ...] = Field(("Li", "Na"), description="Future phases and seeds hold one of these.")
    rounds: int = Field(10, ge=1, le=1000, description="Rounds after round 0 (which labels the seeds).")
    batch_size: int = Field(16, ge=1, le=10_000, description="Oracle calls per round.")
    strategies: tuple[str, ...] = Field(("ucb", "random"), min_length=1)
    seeds: int = Field(2, ge=1, le=100, description="Repetitions (seed 0..seeds-1: seed sample, models, acquisition).")
    n_seeds: int = Field(48, ge=1, description="Known phases seeding each campaign (sampled per seed).")
    candidates_per_round: int = Field(100, ge=1, description="New candidates generated per round.")
    parent_pool: bool = Field(
        False,
        description="Every known phase holding one of `elements` (and within `generate.max_sites`) is also a "
        "parent of every campaign without being evaluated (`generate.parent_pool`): the generators then reach far "
        "more future phases than from the seeds alone.",
    )
    stable: float = Field(0.05, description="Energy above hull (eV/atom) at or below which a rediscovery is stable.")
    loop: dict[str, Any] = Field(
        default_factory=dict, description="Further LoopConfig keys for every campaign (surrogate, generate, ...)."
    )
    store_uri: str = Field("embedded", description="Store of the campaigns.")
    cache_dir: str | None = Field(None, description="Raw data folder of the ingest specs (default ../shared/data).")

    @field_validator("elements")
    @classmethod
    def _elements(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from pymatgen.core import Element

        for symbol in value:
            if not Element.is_valid_symbol(symbol):
                raise ValueError(f"unknown element {symbol!r}")
        return value

    def database(self, split_hash: str) -> str:
        """A database per split and setting (the same command resumes; strategies and seeds share it)."""
        doc = self.model_dump(mode="json", exclude={"strategies", "seeds", "store_uri", "cache_dir"})
        doc["split"] = split_hash
        return "rediscover_" + hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:10]


# the split ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Phase:
    """One known or future phase."""

    id: str
    formula: str
    """Reduced formula."""
    structure: Any
    """pymatgen Structure."""
    formation_energy_per_atom: float | None = None
    """eV/atom, MP scale (known phases in the hull need it)."""


def parse_filtered_spec(spec: str) -> tuple[str, str]:
    """``'mpts52:val[year <= 2002]'`` -> ``('mpts52:val', 'year <= 2002')``; no brackets -> ``(spec, '')``."""
    text = spec.strip()
    if text.endswith("]") and "[" in text:
        base, _, expr = text[:-1].partition("[")
        return base.strip(), expr.strip()
    return text, ""


def holds_elements(formula: str, elements: Iterable[str]) -> bool:
    """Whether the formula holds one of ``elements``."""
    from pymatgen.core import Composition

    symbols = {el.symbol for el in Composition(formula).elements}
    return bool(symbols & set(elements))


class FutureIndex:
    """Future phases by reduced formula; :meth:`match` finds the one a structure is (StructureMatcher)."""

    def __init__(self, phases: Sequence[Phase]) -> None:
        from pymatgen.analysis.structure_matcher import StructureMatcher

        self.phases = list(phases)
        self._by_formula: dict[str, list[Phase]] = {}
        for p in self.phases:
            self._by_formula.setdefault(p.formula, []).append(p)
        self._matcher = StructureMatcher()

    def __len__(self) -> int:
        return len(self.phases)

    def match(self, structure: Any) -> str | None:
        """The id of the future phase ``structure`` matches (same reduced formula first), else None."""
        same = self._by_formula.get(structure.composition.reduced_formula)
        if not same:
            return None
        for p in same:
            try:
                if self._matcher.fit(structure, p.structure):
                    return p.id
            except Exception:
                continue
        return None


def drop_matching(known: Sequence[Phase], future: FutureIndex) -> tuple[list[Phase], list[str]]:
    """Known phases that match no future one, and the ids of those dropped."""
    kept, dropped = [], []
    for p in known:
        (dropped.append(p.id) if future.match(p.structure) is not None else kept.append(p))
    return kept, dropped


def sample_seeds(known: Sequence[Phase], elements: Iterable[str], n: int, seed: int) -> list[Phase]:
    """``n`` known phases holding one of ``elements``, drawn with ``seed`` (sorted by id first: reproducible)."""
    pool = sorted((p for p in known if holds_elements(p.formula, elements)), key=lambda p: p.id)
    if len(pool) <= n:
        return pool
    order = np.random.default_rng(seed).permutation(len(pool))[:n]
    return [pool[i] for i in sorted(order)]


def write_phase_file(phases: Sequence[Phase], path: Path) -> Path:
    """The known phases as a reference phase file (``oracle.reference_phases: file:PATH``): gzipped CSV with
    material_id, pretty_formula, formation_energy_per_atom (eV/atom) and cif."""
    import pandas as pd
    from pymatgen.io.cif import CifWriter

    rows = [
        {
            "material_id": p.id,
            "pretty_formula": p.formula,
            "formation_energy_per_atom": p.formation_energy_per_atom,
            "cif": str(CifWriter(p.structure)),
        }
        for p in phases
        if p.formation_energy_per_atom is not None and math.isfinite(p.formation_energy_per_atom)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as handle:
        pd.DataFrame(rows).to_csv(handle, index=False)
    tmp.replace(path)
    return path


# metrics -----------------------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class CandidateRow:
    """What the metrics need of one candidate of a campaign."""

    id: str
    round: int
    """Round that generated it (0: a seed)."""
    seed: bool
    structure: Any
    evaluated_round: int | None = None
    """Round whose oracle labelled it (None: not labelled, or the relaxation failed)."""
    relaxed: Any = None
    e_above_hull: float | None = None
    """eV/atom."""


@dataclass(kw_only=True)
class RoundMetrics:
    """Cumulative counts after one round of one campaign."""

    round: int
    oracle_calls: int
    generated_matches: int
    rediscovered: int
    rediscovered_stable: int
    hit_rate: float | None
    """Share of the round's evaluations with energy above hull <= 0 (None: no evaluation)."""
    hit_rate_01: float | None
    """The same at <= 0.1 eV/atom."""
    rediscovered_ids: list[str] = field(default_factory=list)


def campaign_metrics(
    rows: Sequence[CandidateRow],
    future: FutureIndex,
    rounds: int,
    *,
    stable: float = 0.05,
    matches: dict[str, str | None] | None = None,
) -> list[RoundMetrics]:
    """Per round 0..``rounds``: oracle calls so far (evaluations, seeds included), distinct future phases matched
    among the generated candidates, the evaluated ones, and those called stable, and the round's hit rates.

    Args:
        matches: candidate id -> matched future id (or None), filled and reused (matching is the slow part).
    """
    memo = {} if matches is None else matches

    def matched(row: CandidateRow) -> str | None:
        if row.id not in memo:
            hit = future.match(row.structure)
            if hit is None and row.relaxed is not None:
                hit = future.match(row.relaxed)
            memo[row.id] = hit
        return memo[row.id]

    out = []
    for r in range(rounds + 1):
        generated = {m for row in rows if not row.seed and row.round <= r and (m := matched(row))}
        done = [row for row in rows if row.evaluated_round is not None and row.evaluated_round <= r]
        found = {m for row in done if not row.seed and (m := matched(row))}
        good = {
            m
            for row in done
            if not row.seed and row.e_above_hull is not None and row.e_above_hull <= stable and (m := matched(row))
        }
        this = [row.e_above_hull for row in rows if row.evaluated_round == r and row.e_above_hull is not None]
        rates = [sum(e <= t for e in this) / len(this) if this else None for t in HIT_THRESHOLDS]
        out.append(
            RoundMetrics(
                round=r,
                oracle_calls=len(done),
                generated_matches=len(generated),
                rediscovered=len(found),
                rediscovered_stable=len(good),
                hit_rate=rates[0],
                hit_rate_01=rates[1],
                rediscovered_ids=sorted(found),
            )
        )
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


METRICS: tuple[str, ...] = (
    "oracle_calls",
    "generated_matches",
    "rediscovered",
    "rediscovered_stable",
    "hit_rate",
    "hit_rate_01",
)


def results_document(
    config: RediscoverConfig,
    per_campaign: dict[tuple[str, int], list[RoundMetrics]],
    *,
    n_future: int,
    n_known: int,
    n_dropped: int,
    wall: dict[str, float],
) -> dict[str, Any]:
    """``results.json``: ``n_future`` and, per strategy, the per-round means over seeds of every metric, the
    per-seed lists, rediscoveries per 100 oracle calls after the last round, and wall time (s)."""
    strategies: dict[str, Any] = {}
    for strategy in config.strategies:
        runs = [per_campaign[(strategy, s)] for s in range(config.seeds) if (strategy, s) in per_campaign]
        entry: dict[str, Any] = {}
        for name in METRICS:
            entry[name] = [_mean([getattr(run[r], name) for run in runs]) for r in range(config.rounds + 1)]
        entry["per_seed"] = {name: [[getattr(m, name) for m in run] for run in runs] for name in METRICS}
        entry["rediscovered_ids"] = [run[-1].rediscovered_ids for run in runs]
        calls, found = entry["oracle_calls"][-1], entry["rediscovered"][-1]
        acquired = (calls or 0) - (entry["oracle_calls"][0] or 0)
        entry["per_100_calls"] = 100.0 * found / calls if calls else None
        entry["per_100_acquired"] = 100.0 * found / acquired if acquired else None
        entry["wall_s"] = round(wall.get(strategy, 0.0), 1)
        strategies[strategy] = entry
    random_final = strategies.get("random", {}).get("rediscovered", [None])[-1]
    for entry in strategies.values():
        final = entry["rediscovered"][-1]
        entry["vs_random"] = final / random_final if random_final and final is not None else None
    return {
        "known": list(config.known),
        "future": config.future,
        "elements": list(config.elements),
        "n_future": n_future,
        "n_known": n_known,
        "n_known_dropped": n_dropped,
        "rounds": config.rounds,
        "batch_size": config.batch_size,
        "seeds": config.seeds,
        "stable": config.stable,
        "strategies": strategies,
        "settings": config.model_dump(mode="json"),
    }


def summary_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """(strategy, oracle calls, generated matches, rediscovered, stable, per 100 calls, vs random, final hit rate
    <= 0, wall s) per strategy."""

    def f(v: Any, fmt: str = "{:.1f}") -> str:
        return "-" if v is None else fmt.format(v)

    rows = []
    for name, e in results["strategies"].items():
        rows.append(
            (
                name,
                f(e["oracle_calls"][-1], "{:.0f}"),
                f(e["generated_matches"][-1]),
                f(e["rediscovered"][-1]),
                f(e["rediscovered_stable"][-1]),
                f(e["per_100_calls"], "{:.2f}"),
                f(e["vs_random"], "{:.2f}x"),
                f(_mean(e["hit_rate"][1:]), "{:.2f}"),
                f(e["wall_s"], "{:.0f}"),
            )
        )
    return rows


SUMMARY_COLUMNS = (
    "strategy",
    "oracle calls",
    "generated matches",
    "rediscovered",
    "stable",
    "per 100 calls",
    "vs random",
    "hit rate (<=0, mean)",
    "wall s",
)


def plot_results(results: dict[str, Any], path: Path | str) -> Path:
    """Two panels: rediscovered future phases vs oracle calls (stable ones dashed) and each round's hit rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, e in results["strategies"].items():
        calls = e["oracle_calls"]
        (line,) = left.plot(calls, e["rediscovered"], marker="o", ms=3, label=f"{name} (evaluated)")
        left.plot(calls, e["rediscovered_stable"], ls="--", color=line.get_color(), label=f"{name} (stable)")
        left.plot(calls, e["generated_matches"], ls=":", color=line.get_color(), label=f"{name} (generated)")
        rounds = list(range(1, len(e["hit_rate"])))
        right.plot(rounds, [np.nan if v is None else v for v in e["hit_rate"][1:]], marker="o", ms=3, label=name)
    left.set_xlabel("oracle calls")
    left.set_ylabel(f"future phases found (of {results['n_future']})")
    left.legend(fontsize=7)
    right.set_xlabel("round")
    right.set_ylabel("hit rate (E above hull <= 0)")
    right.legend(fontsize=8)
    fig.suptitle(f"rediscovery: {results['future']}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
