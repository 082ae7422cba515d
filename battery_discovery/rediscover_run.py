"""Running the rediscovery benchmark: prepare the split's files, run one discovery-loop campaign per strategy and
seed, read each campaign's candidates back and score them (:mod:`battery_discovery.rediscover`)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from battery_discovery.rediscover import (
    DEFAULT_PROPERTIES,
    CandidateRow,
    FutureIndex,
    Phase,
    RediscoverConfig,
    RoundMetrics,
    campaign_metrics,
    drop_matching,
    holds_elements,
    parse_filtered_spec,
    results_document,
    sample_seeds,
    write_phase_file,
)
from core.errors import DiscoveryError

Say = Callable[[str], None]
#: (strategy, seed, round, metrics of that round) after each completed round of a campaign.
RoundCallback = Callable[[str, int, int, RoundMetrics], None]


@dataclass(frozen=True, kw_only=True)
class PreparedSplit:
    """The split on disk: what every campaign of one benchmark reads."""

    hash: str
    known_file: Path
    """Reference phase file of the known phases (``oracle.reference_phases: file:...``)."""
    seed_dirs: dict[int, Path]
    """Seed index -> folder of that seed's sampled known phases (pymatgen JSON)."""
    future: list[Phase]
    n_known: int
    dropped: list[str]
    parent_dir: Path | None = None
    """Folder of the known phases that are unlabelled parents (``generate.parent_pool``), or None."""


def load_phases(spec: str, *, cache_dir: Path | None, elements: tuple[str, ...] = ()) -> list[Phase]:
    """The phases of one filtered ingest spec (``'mpts52:val[year <= 2002]'``), holding one of ``elements`` when
    given. The filter reads the data set's labels and numeric metadata (e.g. ``year``)."""
    from core.expressions import parse_target
    from ingest.api import load_dataset

    base, expr = parse_filtered_spec(spec)
    try:
        condition = parse_target(expr) if expr else None
    except ValueError as exc:
        raise DiscoveryError(f"{spec}: {exc}") from None
    dataset = load_dataset(base, cache_dir=cache_dir)
    out = []
    for r in dataset.records:
        if r.structure is None:
            continue
        values = dict(r.labels)
        values.update(
            {k: float(v) for k, v in r.meta.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        )
        if condition is not None and not condition.holds(values):
            continue
        formula = r.structure.composition.reduced_formula
        if elements and not holds_elements(formula, elements):
            continue
        out.append(
            Phase(
                id=r.id,
                formula=formula,
                structure=r.structure,
                formation_energy_per_atom=r.labels.get("formation_energy_per_atom"),
            )
        )
    if condition is not None:
        missing = [n for n in condition.names if not any(n in r.labels or n in r.meta for r in dataset.records[:50])]
        if missing:
            raise DiscoveryError(f"{spec}: the data set has no column {', '.join(missing)}")
    return out


@dataclass(frozen=True, kw_only=True)
class SplitPhases:
    """The phases of a split: ``known`` and ``future`` by id (an id in both is future), ``kept`` the known phases
    matching no future one, ``dropped`` the ids of those that do."""

    known: dict[str, Phase]
    future: dict[str, Phase]
    kept: list[Phase]
    dropped: list[str]


def load_split(config: RediscoverConfig, *, say: Say = print) -> SplitPhases:
    """Load the known and future phases of ``config`` (from ``cache_dir``, or ``../shared/data`` when present) and
    drop the known ones matching a future one; DiscoveryError when no future phase holds ``config.elements``."""
    from surrogates.predictors import shared_data_dir

    cache_dir = Path(config.cache_dir) if config.cache_dir else shared_data_dir()
    future = {p.id: p for p in load_phases(config.future, cache_dir=cache_dir, elements=config.elements)}
    if not future:
        raise DiscoveryError(f"no future phase holding {', '.join(config.elements)} in {config.future}")
    known: dict[str, Phase] = {}
    for spec in config.known:
        for p in load_phases(spec, cache_dir=cache_dir):
            if p.id not in future:  # the same material id in both: it is future
                known.setdefault(p.id, p)
    say(f"rediscover: {len(known)} known phases, {len(future)} future ones; matching known against future")
    kept, dropped = drop_matching(list(known.values()), FutureIndex(list(future.values())))
    return SplitPhases(known=known, future=future, kept=kept, dropped=dropped)


def prepare_split(config: RediscoverConfig, *, say: Say = print) -> PreparedSplit:
    """Load the split (:func:`load_split`) and write the known phases' reference file and each seed's seed folder
    under ``<data home>/cache/rediscover/<split hash>/`` (reused when present)."""
    from core import paths

    phases = load_split(config, say=say)
    known, future, kept, dropped = phases.known, phases.future, phases.kept, phases.dropped
    identity = {
        "known": sorted(known),
        "future": sorted(future),
        "elements": list(config.elements),
        "n_seeds": config.n_seeds,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    folder = paths.subdir("cache") / "rediscover" / digest
    known_file = folder / "known_phases.csv.gz"
    if not known_file.is_file():
        write_phase_file(kept, known_file)
    seed_dirs = {}
    for s in range(config.seeds):
        seed_dir = folder / f"seeds-s{s}"
        if not seed_dir.is_dir():
            _write_structure_folder(sample_seeds(kept, config.elements, config.n_seeds, s), seed_dir)
        seed_dirs[s] = seed_dir
    parent_dir = _write_parent_pool(config, kept, folder, say=say) if config.parent_pool else None
    say(f"rediscover: dropped {len(dropped)} known phases matching a future one; split {digest} in {folder}")
    return PreparedSplit(
        parent_dir=parent_dir,
        hash=digest,
        known_file=known_file,
        seed_dirs=seed_dirs,
        future=list(future.values()),
        n_known=len(kept),
        dropped=dropped,
    )


def _write_parent_pool(config: RediscoverConfig, kept: list[Phase], folder: Path, *, say: Say) -> Path:
    """The known phases holding one of the elements, within ``generate.max_sites`` and readable as seeds, as a
    folder of pymatgen JSON (reused when present)."""
    from core.errors import SeedError
    from generation.config import GenerateConfig
    from generation.seeds import check_structure

    max_sites = int(config.loop.get("generate", {}).get("max_sites", GenerateConfig.model_fields["max_sites"].default))
    parent_dir = folder / f"parents-{max_sites}"
    if parent_dir.is_dir():
        return parent_dir
    parents = []
    for p in kept:
        if not holds_elements(p.formula, config.elements) or len(p.structure) > max_sites:
            continue
        try:
            check_structure(p.structure, p.id)
        except SeedError:
            continue  # what a seed file may not be (partial occupancy, ...) is no parent either
        parents.append(p)
    _write_structure_folder(parents, parent_dir)
    say(f"rediscover: {len(parents)} known phases are unlabelled parents ({parent_dir})")
    return parent_dir


def _write_structure_folder(phases: list[Phase], folder: Path) -> None:
    """Each phase as ``<id>.json`` (pymatgen JSON) in ``folder``, written beside it and renamed into place, so a
    crash never leaves a partial folder that a later run would reuse."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for p in phases:
        (tmp / f"{p.id}.json").write_text(json.dumps(p.structure.as_dict()))
    tmp.rename(folder)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def campaign_name(strategy: str, seed: int) -> str:
    """A valid campaign name for one run."""
    return f"rediscover-{strategy.replace('_', '-')}-s{seed}"


def loop_parameters(config: RediscoverConfig, split: PreparedSplit, strategy: str, seed: int) -> dict[str, Any]:
    """The discovery-loop parameters of one campaign: the user's ``loop`` keys, then what the benchmark fixes
    (seeds, hull of known phases only, MP online off, strategy, seed, rounds, batch)."""
    params = _merge({"properties": list(DEFAULT_PROPERTIES), "final_model": False}, config.loop)
    fixed = {
        "campaign": campaign_name(strategy, seed),
        "seeds": [str(split.seed_dirs[seed])],
        "source": "generated",
        "rounds": config.rounds,
        "batch_size": config.batch_size,
        "candidates_per_round": config.candidates_per_round,
        "acquisition": {"strategy": strategy, "seed": seed},
        "surrogate": {"seed": seed},
        "oracle": {"reference_phases": [f"file:{split.known_file}"], "competing_phases": "off"},
        **({"generate": {"parent_pool": [str(split.parent_dir)]}} if config.parent_pool and split.parent_dir else {}),
        "store_uri": config.store_uri,
        "database": config.database(split.hash),
    }
    return _merge(params, fixed)


def campaign_rows(store: Any, campaign: str) -> list[CandidateRow]:
    """Every candidate of ``campaign`` with the round that made it and its latest successful evaluation."""
    from pymatgen.core import Structure

    evaluations: dict[str, dict[str, Any]] = {}
    cursor = store.evaluations.find(
        {"campaign": campaign, "status": {"$ne": "failed"}},
        {"candidate_id": 1, "provenance": 1, "energy_above_hull": 1, "relaxed_structure": 1},
    )
    for d in cursor:
        evaluations[d["candidate_id"]] = d
    rows = []
    # whole sub-documents: the embedded server does not project dotted paths
    for d in store.candidates.find({"campaign": campaign}, {"structure": 1, "source": 1, "provenance": 1}):
        e = evaluations.get(d["_id"])
        relaxed = e.get("relaxed_structure") if e else None
        rows.append(
            CandidateRow(
                id=d["_id"],
                round=int(d["provenance"]["round"]),
                seed=d.get("source") == "seed",
                structure=Structure.from_dict(d["structure"]),
                evaluated_round=int(e["provenance"]["round"]) if e else None,
                relaxed=Structure.from_dict(relaxed) if relaxed else None,
                e_above_hull=e.get("energy_above_hull") if e else None,
            )
        )
    return sorted(rows, key=lambda r: r.id)


def run_campaign(
    config: RediscoverConfig,
    split: PreparedSplit,
    strategy: str,
    seed: int,
    on_round: RoundCallback | None = None,
) -> tuple[list[RoundMetrics], float]:
    """Run (or resume) one campaign, then score it. Returns (metrics per round 0..rounds, flow wall time in s)."""
    from flows.discovery_loop import discovery_loop
    from loop.plan import build_config
    from store import open_store

    params = loop_parameters(config, split, strategy, seed)
    build_config(params)  # one clear error before Prefect starts
    start = time.perf_counter()
    discovery_loop(**params)
    wall = time.perf_counter() - start
    store = open_store(config.store_uri, params["database"])
    rows = campaign_rows(store, params["campaign"])
    metrics = campaign_metrics(rows, FutureIndex(split.future), config.rounds, stable=config.stable)
    if on_round is not None:
        for m in metrics:
            on_round(strategy, seed, m.round, m)
    return metrics, wall


def complete_seed_hulls(config: RediscoverConfig, split: PreparedSplit, *, num_threads: int, say: Say = print) -> None:
    """Complete the hull of every seed's chemical system once, before the campaigns start (each campaign's round 0
    would do it, but side by side they would compute the same sub-systems twice). Cached like any completion."""
    from generation import load_seeds
    from loop.plan import build_config
    from oracle.completion import complete, reference_phase_set

    oracle = build_config(loop_parameters(config, split, config.strategies[0], 0)).oracle
    phase_set = reference_phase_set(oracle)
    if phase_set is None:
        return  # energies not on the MP scale: no hull, nothing to complete
    systems = {
        frozenset(el.symbol for el in seed.structure.composition.elements)
        for folder in split.seed_dirs.values()
        for seed in load_seeds([str(folder)])
    }
    report = complete(phase_set, systems, oracle, num_threads=num_threads, progress=say, **oracle.completion.kwargs())
    say(
        f"rediscover: seed hulls complete ({len(report.missing)} sub-systems lacked phases, {report.n_relaxed} "
        f"relaxed now, {len(report.from_cache)} from the cache, {report.seconds:.0f} s)"
    )


def _worker(config_doc: dict[str, Any], split: PreparedSplit, strategy: str, seed: int) -> tuple[Any, float]:
    import torch

    torch.set_num_threads(1)
    return run_campaign(RediscoverConfig.model_validate(config_doc), split, strategy, seed)


def run_rediscovery(
    config: RediscoverConfig,
    *,
    workers: int = 1,
    say: Say = print,
    on_round: RoundCallback | None = None,
) -> dict[str, Any]:
    """Prepare the split, run (or resume) every campaign, and return the results document.

    Args:
        workers: campaigns side by side, each in its own process with one torch thread (1: one after another in
            this process). Campaigns are independent (own name, own seeded models): results do not depend on it.
    """
    started = time.perf_counter()
    split = prepare_split(config, say=say)
    complete_seed_hulls(config, split, num_threads=max(1, workers), say=say)
    campaigns = [(strategy, seed) for seed in range(config.seeds) for strategy in config.strategies]
    per_campaign: dict[tuple[str, int], list[RoundMetrics]] = {}
    wall = dict.fromkeys(config.strategies, 0.0)
    if workers <= 1:
        for strategy, seed in campaigns:
            say(f"rediscover: campaign {campaign_name(strategy, seed)}")
            per_campaign[(strategy, seed)], seconds = run_campaign(config, split, strategy, seed, on_round)
            wall[strategy] += seconds
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        from battery_discovery.benchmark import _prefect_api_for_workers

        context = multiprocessing.get_context("spawn")  # torch and Prefect do not survive fork
        with _prefect_api_for_workers(), ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {
                pool.submit(_worker, config.model_dump(), split, strategy, seed): (strategy, seed)
                for strategy, seed in campaigns
            }
            for future in as_completed(futures):
                strategy, seed = futures[future]
                metrics, seconds = future.result()
                per_campaign[(strategy, seed)] = metrics
                wall[strategy] += seconds
                say(f"rediscover: campaign {campaign_name(strategy, seed)} done in {seconds:.0f} s")
                if on_round is not None:
                    for m in metrics:
                        on_round(strategy, seed, m.round, m)
    results = results_document(
        config, per_campaign, n_future=len(split.future), n_known=split.n_known, n_dropped=len(split.dropped), wall=wall
    )
    results["split"] = split.hash
    results["database"] = config.database(split.hash)
    results["workers"] = max(1, workers)
    results["total_wall_s"] = round(time.perf_counter() - started, 1)
    return results
