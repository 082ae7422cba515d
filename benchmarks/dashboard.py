"""Dashboard speed at 1,000 and 100,000 candidates, side by side: the candidates page's first render and a filter
change, in a real headless browser, plus the store queries behind them.

The store is the embedded default (nx-27017 on SQLite) under ``--home`` (default ``var/bench-dashboard``), one
database per size, seeded once (about 2.5 min for 100,000 on 2 cores; later runs reuse it). Candidates are real
structures (pymatgen's bundled examples, 3-56 sites) with synthetic predictions, generators and rounds drawn from
a seeded generator; 2 % carry an oracle summary as evaluated ones do. ``battery-discovery dashboard`` is started
on each database and driven by Debian chromium (Selenium).

Figures (median of ``--repeats``, seconds):

- ``first render``: from the start of navigation to /candidates until its first page of 25 rows is in the table,
  on the page's own clock (``performance.now()``, read by polling every 5 ms); ``cold`` in a new browser
  profile (nothing cached: Dash's JavaScript, 1.5 MB, loads too), ``warm`` on reload.
- ``filter change``: from just before typing into the Where box (or clicking) until the table shows the new rows,
  on the page's clock; five kinds of change (a property range, elements, another range, a sort, the next page),
  each from a settled page (1.5 s after the previous one, as a user reading it). ``back to back``: the same
  changes without the pause, so a change may wait for the previous one's count (the embedded store answers one
  query at a time).
- ``count``: until "N candidates match" appears (a separate request, after the rows).
- ``store page`` / ``store count``: the same queries through :mod:`store.browse` without a browser.

Goal: first render and filter change under 1 s at 100,000 candidates. Run::

    flock /tmp/heavy.lock .venv/bin/python benchmarks/dashboard.py [--sizes 1000,100000] [--repeats 5]

Writes ``benchmarks/results/dashboard.json``; the last line reads ``first_render_s=<x> filter_change_s=<y>`` for
the largest size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
GENERATORS = ("substitution", "ion-exchange", "pyxtal", "learned")
SETTLE_S = 1.5  # pause before each filter change (a user reading the page), so the last count has finished


def _structures() -> list[Any]:
    import pymatgen.core
    from pymatgen.core import Structure

    folder = Path(pymatgen.core.__file__).resolve().parents[1] / "util" / "structures"
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            s = Structure.from_file(path)
        except Exception:
            continue
        if s.is_ordered and len(s) <= 60:
            out.append(s)
    return out


def seed(store: Any, n: int, seed_value: int = 0) -> float:
    """Insert ``n`` candidates (if the database holds fewer); returns the seconds it took (0 when reused)."""
    have = store.candidates.estimated_document_count()
    if have >= n:
        return 0.0
    store.candidates.delete_many({})
    rng = random.Random(seed_value)
    structures = _structures()
    dicts = [(s, s.as_dict(), sorted(e.symbol for e in s.composition.elements)) for s in structures]
    start = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for i in range(n):
        s, sdict, elements = dicts[i % len(dicts)]
        gap, e_hull = max(0.0, rng.gauss(2.0, 1.5)), rng.gauss(0.15, 0.15)
        doc: dict[str, Any] = {
            "_id": f"bench-{i:06d}",
            "campaign": "bench",
            "fingerprint": f"{i:06d}",
            "formula": s.composition.reduced_formula,
            "elements": elements,
            "chemsys": "-".join(elements),
            "n_sites": len(s),
            "structure": sdict,
            "source": "substitution",
            "generator": rng.choice(GENERATORS),
            "status": "generated",
            "predictions": {
                "e_above_hull": {"mean": e_hull, "std": rng.uniform(0.01, 0.1)},
                "formation_energy_per_atom": {"mean": rng.gauss(-1.5, 0.5), "std": rng.uniform(0.01, 0.1)},
                "band_gap": {"mean": gap, "std": rng.uniform(0.1, 0.8)},
                "log10_conductivity": {"mean": rng.gauss(-6, 2), "std": rng.uniform(0.5, 2)},
            },
            "provenance": {"campaign": "bench", "round": 1 + i * 20 // n, "code_version": "bench"},
        }
        if rng.random() < 0.02:
            doc["status"] = "evaluated"
            doc["oracle"] = {
                "status": "converged",
                "e_above_hull": e_hull + rng.gauss(0, 0.05),
                "formation_energy_per_atom": rng.gauss(-1.5, 0.5),
                "band_gap": gap,
                "band_gap_std": 0.3,
            }
        batch.append(doc)
        if len(batch) == 2000:
            store.candidates.insert_many(batch)
            batch = []
            print(f"\r  seeding {i + 1:,}/{n:,}", end="", file=sys.stderr, flush=True)
    if batch:
        store.candidates.insert_many(batch)
    print(file=sys.stderr)
    return time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(database: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "battery_discovery.cli", "dashboard", "--port", str(port), "--database", database]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(url + "/", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the dashboard did not start")


def _browser() -> Any:
    from dashboard.testing import headless_chromium

    return headless_chromium()


_ROWS = (
    "return [Array.from(document.querySelectorAll(\"#cand-table td[data-dash-column='id']\")).map(e => e.innerText),"
    " performance.now()];"
)


def _rows(driver: Any) -> tuple[list[str], float]:
    """The ids in the table and the page's clock (ms since navigation started), read in one script."""
    rows, now = driver.execute_script(_ROWS)
    return rows or [], float(now)


def _until(driver: Any, predicate: Any, timeout: float = 60.0) -> float:
    """Poll until ``predicate(rows)``; returns the page's clock (ms) at that poll."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        rows, now = _rows(driver)
        if predicate(rows):
            return now
        time.sleep(0.005)
    raise TimeoutError("the page did not update within 60 s")


def measure_browser(url: str, repeats: int, settle_s: float) -> dict[str, Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    cold, warm, count, changes = [], [], [], {}
    for _ in range(repeats):
        driver = _browser()
        try:
            driver.get(url + "/candidates?campaign=bench")
            cold.append(_until(driver, lambda r: len(r) == 25) / 1000)
            for _poll in range(6000):
                if "match" in driver.find_element(By.ID, "cand-count").text:
                    count.append(driver.execute_script("return performance.now();") / 1000)
                    break
                time.sleep(0.01)
            driver.refresh()
            warm.append(_until(driver, lambda r: len(r) == 25) / 1000)

            def change(name: str, act: Any, d: Any = driver) -> None:
                if settle_s:
                    time.sleep(settle_s)  # the previous change's count has finished: the store is idle
                before, t0 = _rows(d)
                act()
                t1 = _until(d, lambda r: bool(r) and r != before)
                changes.setdefault(name, []).append((t1 - t0) / 1000)

            box = driver.find_element(By.ID, "f-where")
            change("where pred_band_gap >= 3", lambda b=box: b.send_keys("pred_band_gap >= 3", Keys.ENTER))
            elements = driver.find_element(By.ID, "f-elements")
            change("elements Fe,O", lambda e=elements: e.send_keys("Fe,O", Keys.ENTER))
            change(
                "where replaced by pred_e_above_hull <= 0.05",
                lambda b=box: (b.clear(), b.send_keys("pred_e_above_hull <= 0.05", Keys.ENTER)),
            )
            sort = driver.find_element(
                By.CSS_SELECTOR, "#cand-table th[data-dash-column='pred_band_gap'] .column-header--sort"
            )
            change("sort by pred. gap", sort.click)
            nxt = driver.find_element(By.CSS_SELECTOR, "#cand-table button.next-page")
            change("next page", nxt.click)
        finally:
            driver.quit()
    every_change = [v for values in changes.values() for v in values]
    return {
        "first_render_cold_s": statistics.median(cold),
        "first_render_warm_s": statistics.median(warm),
        "count_shown_s": statistics.median(count),
        "filter_change_s": statistics.median(every_change),
        "filter_change_max_s": max(every_change),
        "filter_changes_s": {k: statistics.median(v) for k, v in changes.items()},
    }


def measure_store(store: Any, repeats: int) -> dict[str, float]:
    from store.browse import CandidateQuery, candidate_page, count_candidates

    queries = {
        "default page": CandidateQuery(campaign="bench"),
        "where pred_band_gap >= 3": CandidateQuery(campaign="bench", where="pred_band_gap >= 3"),
        "elements Fe,O": CandidateQuery(campaign="bench", elements=("Fe", "O")),
        "page 100": CandidateQuery(campaign="bench", page=100),
    }
    out: dict[str, float] = {}
    for name, q in queries.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            candidate_page(store, q)
            times.append(time.perf_counter() - t0)
        out[f"page: {name}"] = statistics.median(times)
    t0 = time.perf_counter()
    count_candidates(store, queries["default page"])
    out["count: all"] = time.perf_counter() - t0
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000", help="Candidate counts to compare (comma-separated).")
    parser.add_argument("--repeats", type=int, default=5, help="Browser sessions per size (median reported).")
    parser.add_argument("--home", type=Path, default=REPO / "var" / "bench-dashboard", help="Data home of the store.")
    args = parser.parse_args()
    os.environ["BATTERY_DISCOVERY_HOME"] = str(args.home.resolve())
    from store import open_store

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    sizes = [int(x) for x in args.sizes.split(",")]
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "sizes": {}}
    for n in sizes:
        database = f"bench_dashboard_{n}"
        store = open_store("embedded", database)
        seconds = seed(store, n)
        note = f"seeded in {seconds:.0f} s" if seconds else "reused"
        print(f"{n:,} candidates: {note}", file=sys.stderr)
        store.ensure_indexes()
        proc, url = _serve(database, env)
        try:
            browser = measure_browser(url, args.repeats, SETTLE_S)
            rushed = measure_browser(url, max(1, args.repeats // 2), 0.0)
            browser["filter_change_back_to_back_s"] = rushed["filter_change_s"]
            browser["filter_change_back_to_back_max_s"] = rushed["filter_change_max_s"]
        finally:
            proc.terminate()
            proc.wait(10)
        results["sizes"][str(n)] = {"browser": browser, "store": measure_store(store, args.repeats)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dashboard.json").write_text(json.dumps(results, indent=1))

    cols = [f"{n:,}" for n in sizes]
    print(f"\nDashboard, candidates page ({results['machine']}; median of {args.repeats}; seconds)")
    print(f"{'':34}" + "".join(f"{c:>12}" for c in cols))
    rows = [
        ("first render, cold browser", lambda r: r["browser"]["first_render_cold_s"]),
        ("first render, warm browser", lambda r: r["browser"]["first_render_warm_s"]),
        ("filter change (median of 5 kinds)", lambda r: r["browser"]["filter_change_s"]),
        ("filter change (slowest)", lambda r: r["browser"]["filter_change_max_s"]),
        ("filter change, back to back", lambda r: r["browser"]["filter_change_back_to_back_s"]),
        ("  (slowest)", lambda r: r["browser"]["filter_change_back_to_back_max_s"]),
        ("'N candidates match' shown", lambda r: r["browser"]["count_shown_s"]),
    ]
    kinds = list(results["sizes"][str(sizes[0])]["browser"]["filter_changes_s"])
    rows += [(f"  {k}", lambda r, k=k: r["browser"]["filter_changes_s"][k]) for k in kinds]
    rows += [(f"store {k}", lambda r, k=k: r["store"][k]) for k in results["sizes"][str(sizes[0])]["store"]]
    for label, get in rows:
        print(f"{label:34}" + "".join(f"{get(results['sizes'][str(n)]):>12.3f}" for n in sizes))
    big = results["sizes"][str(sizes[-1])]["browser"]
    goal = big["first_render_cold_s"] < 1 and big["filter_change_max_s"] < 1
    print(f"goal (< 1 s at {sizes[-1]:,}): {'met' if goal else 'NOT met'}")
    print(f"first_render_s={big['first_render_cold_s']:.3f} filter_change_s={big['filter_change_s']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
