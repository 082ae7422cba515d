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
import hashlib
import json
import math
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DATABASE = "bench_store_scale"
DOC_VERSION = 1  # bump when the documents change: a reused database of another version is rebuilt

CAMPAIGNS = ("li-cathode", "na-cathode", "solid-electrolyte", "wide-gap")
GENERATORS = ("substitution", "ion-exchange", "pyxtal", "learned")
ALKALI = (("Li", 0.40), ("Na", 0.25), ("K", 0.05), ("Mg", 0.05), ("", 0.25))
CATIONS = ("Fe", "Mn", "Co", "Ni", "Ti", "V", "Cr", "Cu", "Zn", "Nb", "Mo", "Zr", "Al", "Si", "Sn", "Ge", "La", "Y")
ANIONS = (("O", 0.55), ("S", 0.10), ("F", 0.10), ("Cl", 0.06), ("P", 0.08), ("N", 0.04), ("Se", 0.04), ("Br", 0.03))
STATUSES = (("generated", 0.72), ("acquired", 0.03), ("evaluated", 0.20), ("failed", 0.05))
T0 = datetime(2026, 1, 1, tzinfo=UTC)
COUNT_CAP = 1000  # dashboard.widgets.COUNT_CAP: the table counts up to 1,001 rows
KINDS = ("default_page", "elements_range", "alkali_oracle", "formula_generator", "count", "cli_query")


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    x, acc = rng.random(), 0.0
    for value, weight in table:
        acc += weight
        if x < acc:
            return value
    return table[-1][0]


def _formula(counts: dict[str, int]) -> str:
    """A reduced formula, alkali first and anions last (as pymatgen writes most of these)."""
    g = 0
    for c in counts.values():
        g = math.gcd(g, c)
    return "".join(f"{el}{'' if c // g == 1 else c // g}" for el, c in counts.items())


def _structure(rng: random.Random, species: list[str]) -> dict[str, Any]:
    """A pymatgen ``Structure.as_dict()``-shaped dict (Å) with one site per entry of ``species``."""
    a, b, c = (round(rng.uniform(3.5, 12.0), 6) for _ in range(3))
    sites = []
    for el in species:
        frac = [round(rng.random(), 6) for _ in range(3)]
        sites.append(
            {
                "species": [{"element": el, "occu": 1}],
                "abc": frac,
                "properties": {},
                "label": el,
                "xyz": [round(frac[0] * a, 6), round(frac[1] * b, 6), round(frac[2] * c, 6)],
            }
        )
    return {
        "@module": "pymatgen.core.structure",
        "@class": "Structure",
        "charge": 0,
        "lattice": {
            "matrix": [[a, 0.0, 0.0], [0.0, b, 0.0], [0.0, 0.0, c]],
            "pbc": [True, True, True],
            "a": a,
            "b": b,
            "c": c,
            "alpha": 90.0,
            "beta": 90.0,
            "gamma": 90.0,
            "volume": round(a * b * c, 6),
        },
        "properties": {},
        "sites": sites,
    }


class DocumentSource:
    """Deterministic candidate documents: document ``i`` depends on the seed and the documents before it."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.polymorphs: dict[tuple[str, str], int] = {}
        self.i = 0

    def next(self) -> dict[str, Any]:
        """The next document, as ``CandidateDoc(...).to_mongo()`` gives it."""
        from store.documents import CandidateDoc, oracle_summary

        rng, i = self.rng, self.i
        self.i += 1
        campaign = CAMPAIGNS[i % len(CAMPAIGNS)] if rng.random() < 0.7 else rng.choice(CAMPAIGNS)
        counts: dict[str, int] = {}
        alkali = _weighted(rng, ALKALI)
        if alkali:
            counts[alkali] = rng.randint(1, 3)
        for el in rng.sample(CATIONS, rng.choice((1, 1, 2))):
            counts[el] = rng.randint(1, 2)
        anion = _weighted(rng, ANIONS)
        if anion == "P":  # phosphates
            counts["P"], counts["O"] = 1, 4
        else:
            counts[anion] = rng.randint(1, 4)
            if rng.random() < 0.15:
                other = _weighted(rng, ANIONS)
                if other not in counts and other != "P":
                    counts[other] = rng.randint(1, 2)
        formula = _formula(counts)
        elements = sorted(counts)
        mult = rng.choice((1, 1, 2, 2, 4))
        species = [el for el, c in counts.items() for _ in range(c * mult)][:48]
        fp = hashlib.sha1(formula.encode()).hexdigest()[:12]
        k = self.polymorphs[(campaign, fp)] = self.polymorphs.get((campaign, fp), 0) + 1
        cid = f"{campaign}-{fp}" if k == 1 else f"{campaign}-{fp}-{k}"
        source_roll = rng.random()
        source = "seed" if source_roll < 0.01 else "dataset" if source_roll < 0.05 else rng.choice(GENERATORS)
        generated = source not in ("seed", "dataset")
        rnd = 0 if source == "seed" else rng.randint(1, 30)
        status = _weighted(rng, STATUSES)
        gap, e_hull = max(0.0, rng.gauss(2.0, 1.5)), rng.gauss(0.12, 0.15)
        e_form = rng.gauss(-1.6, 0.6)
        predictions: dict[str, dict[str, float]] = {}
        if rng.random() < 0.95:
            predictions = {
                "e_above_hull": {"mean": e_hull, "std": rng.uniform(0.01, 0.1)},
                "formation_energy_per_atom": {"mean": e_form, "std": rng.uniform(0.01, 0.1)},
                "band_gap": {"mean": gap, "std": rng.uniform(0.1, 0.8)},
                "log10_conductivity": {"mean": rng.gauss(-6.0, 2.0), "std": rng.uniform(0.5, 2.0)},
            }
        oracle: dict[str, Any] = {}
        oracle_key = "chgnet-0.3.0:fmax0.05:steps500"
        if status == "evaluated":
            evaluation: dict[str, Any] = {
                "status": "converged" if rng.random() < 0.93 else "unconverged",
                "oracle_key": oracle_key,
                "formation_energy_per_atom": e_form + rng.gauss(0, 0.08),
                "energy_above_hull": e_hull + rng.gauss(0, 0.05),
                "hull": {"n_phases": rng.randint(0, 40), "thin": rng.random() < 0.3},
                "properties": {
                    "band_gap": {"mean": gap + rng.gauss(0, 0.2), "std": rng.uniform(0.1, 0.5)},
                    "log10_conductivity": {"mean": rng.gauss(-6.0, 2.0), "std": rng.uniform(0.5, 2.0)},
                },
            }
            if alkali in ("Li", "Na") and rng.random() < 0.5:
                evaluation["electrode"] = {
                    "average_voltage": rng.uniform(1.0, 4.8),
                    "capacity_mAh_g": rng.uniform(50, 300),
                }
                evaluation["window"] = {"low_V": rng.uniform(0, 2), "high_V": rng.uniform(2, 5)}
            oracle = oracle_summary(evaluation)
        elif status == "failed":
            oracle = oracle_summary({"status": "failed", "oracle_key": oracle_key})
        doc = CandidateDoc.model_validate(
            {
                "_id": cid,
                "campaign": campaign,
                "fingerprint": fp,
                "formula": formula,
                "elements": elements,
                "chemsys": "-".join(elements),
                "n_sites": len(species),
                "structure": _structure(rng, species),
                "source": source,
                "labels": {"heat_all": rng.gauss(-1.5, 0.7)} if source == "dataset" else {},
                "parent": None if source == "seed" else f"{campaign}-seed-{rng.randrange(200)}",
                "substitutions": {"Li": "Na"} if source == "ion-exchange" else {},
                "probability": round(rng.random(), 4),
                "generator": source if generated else None,
                "generator_version": "bench-1" if generated else "",
                "parameters": {"seed": rng.randrange(10**6)} if source == "pyxtal" else {},
                "status": status,
                "predictions": predictions,
                "oracle": oracle,
                "predicted_by": f"{campaign}-r{max(0, rnd - 1)}" if predictions else None,
                "predicted_round": rnd if predictions else None,
                "provenance": {
                    "campaign": campaign,
                    "round": rnd,
                    "code_version": "bench",
                    "created_at": T0 + timedelta(seconds=i),
                    "oracle": "chgnet" if oracle else None,
                },
            }
        )
        return doc.to_mongo()


# ------------------------------------------------------------------------------------------------ queries


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server this benchmark measures: its URI, and how to stop it if it was started here."""

    def __init__(self, name: str, uri: str, stop: Callable[[], None] | None = None) -> None:
        self.name, self.uri, self._stop = name, uri, stop

    def stop(self) -> None:
        """Stop the server if this benchmark started it (data kept)."""
        if self._stop is not None:
            self._stop()


def start_nx(home: Path) -> Server:
    """The project's embedded server (nx-27017) for data home ``home``, started by ``store.embedded``."""
    from store.embedded import ensure_embedded_server, stop_embedded_server

    info = ensure_embedded_server(home)
    return Server("nx-27017", info.uri, lambda: stop_embedded_server(home))


def start_secantus(home: Path) -> Server:
    """A secantusdb daemon (WiredTiger) on data folder ``home``, started here; needs ``secantusdb`` installed."""
    try:
        import secantus  # noqa: F401
    except ImportError:
        raise SystemExit("secantusdb is not installed: .venv/bin/pip install secantusdb==0.7.0b3") from None
    import pymongo

    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    cmd = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--storage-path", str(home / "data"), "--log-level", "WARNING"]
    log = open(home / "server.log", "ab")  # noqa: SIM115 (closed by stop)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"secantusdb exited with {proc.returncode}; see {home / 'server.log'}")
        try:
            with pymongo.MongoClient(uri, serverSelectionTimeoutMS=500, directConnection=True) as client:
                client.admin.command("ping")
            break
        except pymongo.errors.PyMongoError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("secantusdb did not answer within 120 s") from None
            time.sleep(0.2)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    return Server("secantusdb", uri, stop)


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


def main() -> int:
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
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    from rich.console import Console
    from rich.table import Table

    from store.connection import connect, redact_uri
    from store.repository import CandidateStore

    console = Console(stderr=True)
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
            store = CandidateStore(connect(server.uri, args.database, timeout_ms=30_000))
            loaded = load(store, args.n, args.seed, args.batch, args.reuse, name)
            count = store.candidates.estimated_document_count()
            if count != args.n:
                raise SystemExit(f"{name}: {count:,} documents after inserting {args.n:,}")
            console.print(f"{name}: {args.n:,} documents; timing {len(specs)} queries")
            times, results = measure(store, specs, args.query_budget_s)
            done = specs[: len(times)]
            kinds = {k: _summary([t for s, t in zip(done, times, strict=True) if s.kind == k]) for k in KINDS}
            slowest = sorted(zip(times, done, strict=True), key=lambda p: -p[0])[:5]
            report["servers"][name] = {
                "uri": redact_uri(server.uri),
                "version": _server_version(store),
                **loaded,
                "n_queries_timed": len(times),
                "overall": _summary(times),
                "kinds": kinds,
                "slowest": [{"ms": t, "kind": s.kind, "query": s.label} for t, s in slowest],
            }
            all_results[name] = results
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")  # after each server
        finally:
            server.stop()

    names = list(all_results)
    if len(names) > 1:
        disagreements = []
        for i, spec in enumerate(specs[: min(len(all_results[n]) for n in names)]):
            outcomes = {n: all_results[n][i] for n in names}
            if len({json.dumps(v) for v in outcomes.values()}) > 1:
                disagreements.append({"kind": spec.kind, "query": spec.label, "results": outcomes})
        report["disagreements"] = disagreements
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")

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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
