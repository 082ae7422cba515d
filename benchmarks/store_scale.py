"""Store at scale: insert N candidate documents, then time the queries the dashboard and the CLI make.

Documents are real :class:`store.documents.CandidateDoc` documents (validated by the model, ``to_mongo()``),
drawn from a seeded generator: sorted ``elements`` (Li/Na/K/Mg or no alkali, one or two framework cations, one or
two anions), reduced ``formula``, ``chemsys``, a pymatgen-shaped ``structure`` of ``n_sites`` sites, campaign,
round, generator/source, status, ``predictions`` of four outcomes and, for evaluated and failed ones, the
``oracle`` summary the store keeps (:func:`store.documents.oracle_summary`). The same seed gives the same
documents and the same queries. Indexes are the repository's own (``CandidateStore.ensure_indexes``), created
before the first insert, as a campaign's store has them.

Query kinds (``--queries`` in all, split evenly, parameters from a seeded generator; latency is the wall time of
the project's call, decoding included, in ms):

- ``default_page``: the dashboard's opening table: one campaign, sorted by predicted E_hull, a page of 25.
- ``elements_range``: elements + a predicted band-gap range, sorted by a predicted property, paged.
- ``alkali_oracle``: Li / Na / Li or Na + an oracle E_hull bound, sorted by an oracle column, paged.
- ``formula_generator``: a formula prefix + generator (+ status), sorted by id/formula/sites/round, paged.
- ``count``: the dashboard's "N candidates match" (``count_candidates``, capped at 1,001).
- ``cli_query``: ``battery-discovery query --predicted`` (``store.queries.query_rows``, 20 rows).

Servers: ``--server nx-27017`` (the project's embedded server, started by ``store.embedded`` under ``--home``) and/or
``--server secantusdb`` (started here when ``secantusdb`` is importable; GPL-2.0-only, so it is never a
dependency: ``.venv/bin/pip install secantusdb==0.7.0b3`` to measure), plus any ``--uri mongodb://...``. When
several are measured, each query's result (ids in order, or the count) is compared across them. Run::

    flock /tmp/heavy.lock .venv/bin/python benchmarks/store_scale.py [--n 1000000] [--server nx-27017,secantusdb]

Writes ``benchmarks/results/store_scale.json``; the last line reads
``n_docs=<n> insert_per_s=<x> p50_ms=<y> p95_ms=<z>`` for the first server measured. Goal: p95 under 50 ms per
query at 1,000,000 documents.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DATABASE = "bench_store_scale"
sys.path.insert(0, str(REPO))  # benchmarks.store_scale_lib when run as a script

from benchmarks.store_scale_lib.documents import (  # noqa: E402
    CAMPAIGNS,
    COUNT_CAP,
    DOC_VERSION,
    GENERATORS,
    DocumentSource,
)
from benchmarks.store_scale_lib.servers import Server, start_nx, start_secantus  # noqa: E402

KINDS = ("default_page", "elements_range", "alkali_oracle", "formula_generator", "count", "cli_query")


@dataclass(frozen=True)
class QuerySpec:
    """One timed query: its kind, a label for the table and the call (store -> result summary)."""

    kind: str
    label: str
    run: Callable[[Any], Any] = field(repr=False)


def _page_ids(store: Any, query: Any) -> list[str]:
    from store.browse import candidate_page

    return [r["id"] for r in candidate_page(store, query).rows]


def query_specs(n_queries: int, seed: int) -> list[QuerySpec]:
    """``n_queries`` queries, the kinds taking turns, parameters drawn from ``seed``."""
    from store.browse import CandidateQuery, count_candidates
    from store.queries import query_rows

    rng = random.Random(seed * 7919 + 1)
    common = ("Fe", "Mn", "Co", "Ni", "Ti", "O", "S", "F", "P", "Cl")
    specs: list[QuerySpec] = []
    for k in range(n_queries):
        kind = KINDS[k % len(KINDS)]
        if kind == "default_page":
            q = CandidateQuery(campaign=rng.choice(CAMPAIGNS), sort="pred_e_above_hull", page=rng.randrange(8))
        elif kind == "elements_range":
            lo = round(rng.uniform(0.0, 4.0), 2)
            q = CandidateQuery(
                campaign=rng.choice((*CAMPAIGNS, "")),
                elements=tuple(sorted(rng.sample(common, rng.choice((1, 2))))),
                where=f"pred_band_gap >= {lo} and pred_band_gap <= {round(lo + rng.uniform(0.2, 1.5), 2)}",
                sort=rng.choice(("pred_band_gap", "pred_e_above_hull")),
                descending=rng.random() < 0.3,
                page=rng.randrange(4),
            )
        elif kind == "alkali_oracle":
            q = CandidateQuery(
                alkali=rng.choice(("Li", "Na", "Li or Na")),
                where=f"e_above_hull <= {round(rng.uniform(-0.05, 0.2), 3)}",
                sort=rng.choice(("e_above_hull", "formation_energy", "band_gap")),
                page=rng.randrange(4),
            )
        elif kind == "formula_generator":
            q = CandidateQuery(
                formula=rng.choice(("Li", "Na", "LiFe", "NaMn", "LiCo", "K", "Mg", "Fe", "Ti")),
                generator=rng.choice(GENERATORS),
                status=rng.choice(("", "generated", "evaluated")),
                sort=rng.choice(("id", "formula", "n_sites", "round")),
                page=rng.randrange(4),
            )
        elif kind == "count":
            q = CandidateQuery(
                campaign=rng.choice(CAMPAIGNS),
                elements=(rng.choice(common),),
                where=f"pred_e_above_hull <= {round(rng.uniform(-0.1, 0.2), 3)}",
            )
            specs.append(QuerySpec(kind, _describe(q), lambda s, q=q: count_candidates(s, q, limit=COUNT_CAP + 1)))
            continue
        else:  # cli_query
            campaign = rng.choice(CAMPAIGNS)
            elements = sorted(rng.sample(common, 2))
            lo = round(rng.uniform(2.5, 5.0), 2)
            where = f"e_above_hull <= {round(rng.uniform(-0.1, 0.05), 3)} and band_gap >= {lo}"

            def cli(s: Any, c: str = campaign, e: list[str] = elements, w: str = where) -> list[str]:
                rows = query_rows(s, campaign=c, where=w, elements=e, predicted=True, limit=20)
                return [r["id"] for r in rows]

            specs.append(QuerySpec(kind, f"query --campaign {campaign} -e {','.join(elements)} --where '{where}'", cli))
            continue
        specs.append(QuerySpec(kind, _describe(q), lambda s, q=q: _page_ids(s, q)))
    return specs


def _describe(q: Any) -> str:
    defaults = type(q)()
    return " ".join(f"{k}={v!r}" for k, v in q.__dict__.items() if v != getattr(defaults, k))


# ------------------------------------------------------------------------------------------------ servers


# ------------------------------------------------------------------------------------------------ measuring


def _batches(source: DocumentSource, n: int, size: int) -> Iterator[list[dict[str, Any]]]:
    while source.i < n:
        yield [source.next() for _ in range(min(size, n - source.i))]


def load(store: Any, n: int, seed: int, batch: int, reuse: bool, label: str) -> dict[str, Any]:
    """Insert ``n`` documents (unless ``reuse`` and the database already holds exactly these); insert seconds."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    meta = store.db["bench_meta"]
    wanted = {"_id": "docs", "n": n, "seed": seed, "version": DOC_VERSION}
    have = meta.find_one({"_id": "docs"})
    same = have is not None and {k: have.get(k) for k in wanted} == wanted
    if reuse and same and store.candidates.estimated_document_count() == n:
        return {"reused": True, **{k: have[k] for k in ("insert_s", "insert_per_s", "generate_s")}}
    store.db.client.drop_database(store.db.name)
    store.ensure_indexes()
    source = DocumentSource(seed)
    insert_s = generate_s = 0.0
    columns = (TextColumn(f"{label}: inserting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("insert", total=n)
        batches = _batches(source, n, batch)
        while True:
            t0 = time.perf_counter()
            docs = next(batches, None)
            t1 = time.perf_counter()
            generate_s += t1 - t0
            if docs is None:
                break
            store.candidates.insert_many(docs, ordered=False)
            insert_s += time.perf_counter() - t1
            progress.advance(task, len(docs))
    result = {"reused": False, "insert_s": insert_s, "insert_per_s": n / insert_s, "generate_s": generate_s}
    meta.replace_one({"_id": "docs"}, {**wanted, **result}, upsert=True)
    return result


def _percentile(values: list[float], q: float) -> float:
    """``q``-quantile (0-1) with linear interpolation."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _summary(ms: list[float]) -> dict[str, float]:
    if not ms:  # a kind the query budget left untimed
        return {"n": 0, "p50_ms": math.nan, "p95_ms": math.nan, "max_ms": math.nan, "mean_ms": math.nan}
    return {
        "n": len(ms),
        "p50_ms": _percentile(ms, 0.5),
        "p95_ms": _percentile(ms, 0.95),
        "max_ms": max(ms),
        "mean_ms": statistics.fmean(ms),
    }


def measure(store: Any, specs: list[QuerySpec], budget_s: float | None = None) -> tuple[list[float], list[Any]]:
    """Run each query once (after one untimed warm-up query per kind); latencies (ms) and results. With
    ``budget_s``, stop once that many seconds of queries were spent (the latencies are those measured so far)."""
    start = time.perf_counter()
    for kind in KINDS:
        next(s for s in specs if s.kind == kind).run(store)
    times, results = [], []
    for spec in specs:
        if budget_s is not None and times and time.perf_counter() - start > budget_s:
            break
        t0 = time.perf_counter()
        result = spec.run(store)
        times.append((time.perf_counter() - t0) * 1000)
        results.append(result)
    return times, results


def _server_version(store: Any) -> str:
    try:
        return str(store.db.client.server_info().get("version") or "?")
    except Exception:
        return "?"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="Candidate documents to insert.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the documents and the query parameters.")
    parser.add_argument("--queries", type=int, default=200, help="Timed queries (the kinds take turns).")
    parser.add_argument("--batch", type=int, default=5000, help="Documents per insert_many.")
    parser.add_argument(
        "--server", default="nx-27017", help="Servers to start, comma-separated: nx-27017, secantusdb, none."
    )
    parser.add_argument("--uri", action="append", default=[], help="Also measure this MongoDB URI (repeatable).")
    parser.add_argument(
        "--home", type=Path, default=REPO / "var" / "bench-store-scale", help="Data folder of started servers."
    )
    parser.add_argument("--database", default=DATABASE, help="Database to fill (dropped first).")
    parser.add_argument("--reuse", action="store_true", help="Keep a database that already holds these documents.")
    parser.add_argument("--fresh", action="store_true", help="Delete the data folder of started servers first.")
    parser.add_argument("--out", type=Path, default=RESULTS / "store_scale.json", help="Where to write the results.")
    parser.add_argument(
        "--query-budget-s",
        type=float,
        default=None,
        help="Stop timing a server's queries after this many seconds (a slow server is measured on fewer queries).",
    )
    return parser


def _servers(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[tuple[str, Callable[[], Server]]]:
    """(name, start) of every server to measure, in order."""
    servers: list[tuple[str, Callable[[], Server]]] = []
    for name in [s.strip() for s in args.server.split(",") if s.strip() and s.strip() != "none"]:
        home = (args.home / name).resolve()
        if args.fresh and home.exists():
            shutil.rmtree(home)
        if name == "nx-27017":
            servers.append((name, lambda h=home: start_nx(h)))
        elif name == "secantusdb":
            servers.append((name, lambda h=home: start_secantus(h)))
        else:
            parser.error(f"--server {name!r}: nx-27017, secantusdb or none")
    for k, uri in enumerate(args.uri):
        servers.append((f"uri{k + 1}", lambda u=uri, k=k: Server(f"uri{k + 1}", u)))
    if not servers:
        parser.error("nothing to measure: give --server or --uri")

    return servers


def _measure_server(
    name: str, server: Server, args: argparse.Namespace, specs: list[QuerySpec]
) -> tuple[dict[str, Any], list[Any]]:
    """Fill ``server`` with the documents, time the queries; (its report entry, the queries' results)."""
    from rich.console import Console

    from store.connection import connect, redact_uri
    from store.repository import CandidateStore

    store = CandidateStore(connect(server.uri, args.database, timeout_ms=30_000))
    loaded = load(store, args.n, args.seed, args.batch, args.reuse, name)
    count = store.candidates.estimated_document_count()
    if count != args.n:
        raise SystemExit(f"{name}: {count:,} documents after inserting {args.n:,}")
    Console(stderr=True).print(f"{name}: {args.n:,} documents; timing {len(specs)} queries")
    times, results = measure(store, specs, args.query_budget_s)
    done = specs[: len(times)]
    kinds = {k: _summary([t for s, t in zip(done, times, strict=True) if s.kind == k]) for k in KINDS}
    slowest = sorted(zip(times, done, strict=True), key=lambda p: -p[0])[:5]
    entry = {
        "uri": redact_uri(server.uri),
        "version": _server_version(store),
        **loaded,
        "n_queries_timed": len(times),
        "overall": _summary(times),
        "kinds": kinds,
        "slowest": [{"ms": t, "kind": s.kind, "query": s.label} for t, s in slowest],
    }
    return entry, results


def _disagreements(specs: list[QuerySpec], all_results: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The queries whose results differ between the servers measured."""
    names = list(all_results)
    out = []
    for i, spec in enumerate(specs[: min(len(all_results[n]) for n in names)]):
        outcomes = {n: all_results[n][i] for n in names}
        if len({json.dumps(v) for v in outcomes.values()}) > 1:
            out.append({"kind": spec.kind, "query": spec.label, "results": outcomes})
    return out


def _print_report(args: argparse.Namespace, report: dict[str, Any], all_results: dict[str, list[Any]]) -> None:
    """The latency table, the comparison and the goal; the last line for scripts."""
    from rich.console import Console
    from rich.table import Table

    names = list(all_results)
    table = Table(title=f"store at {args.n:,} candidates ({report['machine']}); latency in ms")
    table.add_column("")
    for n in names:
        table.add_column(f"{n} p50", justify="right")
        table.add_column(f"{n} p95", justify="right")
    for kind in (*KINDS, "overall"):
        cells = []
        for n in names:
            s = report["servers"][n]["overall" if kind == "overall" else "kinds"]
            s = s if kind == "overall" else s[kind]
            cells += [f"{s['p50_ms']:.1f}", f"{s['p95_ms']:.1f}"]
        table.add_row(kind, *cells)
    table.add_row("queries timed", *[c for n in names for c in (str(report["servers"][n]["n_queries_timed"]), "")])
    table.add_row("insert docs/s", *[c for n in names for c in (f"{report['servers'][n]['insert_per_s']:,.0f}", "")])
    out = Console()
    out.print(table)
    if len(names) > 1:
        compared = min(len(all_results[n]) for n in names)
        out.print(f"results that differ between servers: {len(report['disagreements'])} of {compared} queries")
    first = report["servers"][names[0]]
    met = first["overall"]["p95_ms"] < 50
    out.print(f"goal (p95 < 50 ms at {args.n:,}) on {names[0]}: {'met' if met else 'NOT met'}")
    print(
        f"n_docs={args.n} insert_per_s={first['insert_per_s']:.0f} "
        f"p50_ms={first['overall']['p50_ms']:.1f} p95_ms={first['overall']['p95_ms']:.1f}"
    )


def main() -> int:
    parser = _parser()
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    servers = _servers(args, parser)
    specs = query_specs(args.queries, args.seed)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "n_docs": args.n,
        "seed": args.seed,
        "n_queries": len(specs),
        "goal": "p95 < 50 ms per query",
        "servers": {},
    }
    all_results: dict[str, list[Any]] = {}
    for name, start in servers:
        server = start()
        try:
            report["servers"][name], all_results[name] = _measure_server(name, server, args, specs)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")  # after each server
        finally:
            server.stop()
    if len(all_results) > 1:
        report["disagreements"] = _disagreements(specs, all_results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    _print_report(args, report, all_results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
