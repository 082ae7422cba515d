"""Wall time of the rounds of the embedded default, split by stage, with the orchestration overhead, for this
tree and (``--base COMMIT``) an earlier one side by side.

Runs round 0 (seed labelling, elemental references) and ``--rounds`` discovery rounds (generate → predict →
acquire → oracle → electrode → retrain → store) of the default configuration in a fresh data home, under
Prefect, against the embedded MongoDB-compatible server. With ``--base`` the base commit's own
``benchmarks/round.py`` runs first from a temporary git worktree (its code first on ``PYTHONPATH``), then this
tree's, each in its own fresh data home, one after the other; the table puts both side by side with the ratio.
The property models of this tree's default campaign are trained once before its rounds (``prepare``, reported
apart: a one-off cost, not a round's).

    .venv/bin/python benchmarks/round.py [--rounds 1] [--base 757e71d] [--out benchmarks/results/round.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/oracle.py is named like the project's ``oracle`` package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

REPO = Path(__file__).resolve().parents[1]
STAGES = ("generate", "predict", "acquire", "oracle", "electrode", "retrain", "store")


def run_here(rounds: int) -> dict[str, Any]:
    """Run the default campaign in this process (the data home is set by the caller); returns the result dict."""
    from flows.discovery_loop import discovery_loop
    from loop.config import LoopConfig
    from store import open_store

    config = LoopConfig(campaign="bench", rounds=rounds)
    prepare_s = 0.0
    try:
        from loop.plan import build_plan

        plan = build_plan(config)
        store = open_store(config.store_uri, config.database)
        t0 = time.perf_counter()
        for prop in plan.properties:
            prop.prepare(plan.context(store, 0))
        prepare_s = time.perf_counter() - t0
    except (ImportError, AttributeError, TypeError):
        pass  # a base tree without property providers
    start = time.perf_counter()
    discovery_loop(**{name: getattr(config, name) for name in type(config).model_fields})
    wall = time.perf_counter() - start
    rows = []
    for r in open_store(config.store_uri, config.database).list_rounds("bench"):
        t = r.timings
        stage_sum = sum(t.get(s, 0.0) for s in STAGES)
        rows.append(
            {
                "round": r.round,
                **{s: round(t.get(s, 0.0), 3) for s in STAGES},
                "stages_sum_s": round(stage_sum, 3),
                "total_s": round(t["total"], 3),
                "overhead_s": round(t["total"] - stage_sum, 3),
                "batch": [f"{e.formula}:{e.status}" for e in r.acquired],
                "n_pool": r.n_pool,
                "n_generated": r.n_generated,
            }
        )
    return {"wall_s_including_prefect_start": round(wall, 2), "prepare_s": round(prepare_s, 2), "rounds": rows}


def run_tree(code: Path | None, rounds: int, work: Path) -> dict[str, Any]:
    """This script's ``--worker`` run in a subprocess with ``code`` first on PYTHONPATH (None: this tree)."""
    home = work / ("base" if code else "head")
    (home / "prefect").mkdir(parents=True, exist_ok=True)
    (home / "home").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "BATTERY_DISCOVERY_HOME": str(home / "home"),
        "PREFECT_HOME": str(home / "prefect"),
        "HF_HUB_OFFLINE": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    shared = REPO.parent / "shared" / "data"  # a worktree in /tmp has no ../shared beside it
    env.setdefault(
        "BATTERY_DISCOVERY_MP_REFERENCES", str(shared / "mp" / "2023-02-07-mp-elemental-reference-entries.json.gz")
    )
    env.setdefault("BATTERY_DISCOVERY_PHASES_DIR", str(shared))
    env.pop("PREFECT_API_URL", None)
    script = (code or REPO) / "benchmarks" / "round.py"
    out = home / "round.json"
    if code is not None:
        env["PYTHONPATH"] = str(code)
        cmd = [sys.executable, str(script), "--rounds", str(rounds), "--out", str(out), "--home", str(home / "home")]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--rounds", str(rounds), "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, cwd=code or REPO)
    return json.loads(out.read_text())


def _table(label: str, result: dict[str, Any]) -> None:
    print(f"{label}: per-stage wall time (s); overhead = round total - sum of stages")
    print(f"{'round':>5} " + " ".join(f"{s:>9}" for s in STAGES) + f" {'sum':>8} {'total':>8} {'overhead':>9}")
    for row in result["rounds"]:
        print(
            f"{row['round']:>5} "
            + " ".join(f"{row.get(s, 0.0):>9.2f}" for s in STAGES)
            + f" {row['stages_sum_s']:>8.2f} {row['total_s']:>8.2f} {row['overhead_s']:>9.2f}"
        )
        print(f"      batch: {', '.join(row['batch'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="discovery rounds after round 0 (default 1)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/round.json"))
    parser.add_argument("--home", type=Path, default=None, help="data home (default: a fresh temporary one)")
    parser.add_argument("--base", default="", help="also run this commit's round benchmark first, side by side")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker or not args.base:
        home = args.home or Path(tempfile.mkdtemp(prefix="bd-bench-"))
        os.environ["BATTERY_DISCOVERY_HOME"] = str(home)
        os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.setdefault("DO_NOT_TRACK", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        result = {"benchmark": "round", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
        result.update(run_here(args.rounds))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        if not args.worker:
            _table("this tree", result)
            print(f"prepare (property models, once) {result['prepare_s']:.1f} s; written to {args.out}")
        return

    work = Path(tempfile.mkdtemp(prefix="bd-round-"))
    tree = work / "base-tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), args.base], check=True)
    if (REPO.parent / "shared").is_dir() and not (work / "shared").exists():
        (work / "shared").symlink_to(REPO.parent / "shared")  # the base tree finds ../shared/data like a checkout
    try:
        base = run_tree(tree, args.rounds, work)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    head = run_tree(None, args.rounds, work)
    _table(f"base {args.base}", base)
    _table("this tree", head)
    heads = ("base s", "this s", "ratio", "base w/o oracle", "this w/o oracle", "ratio")
    print(f"{'round':>5} " + " ".join(f"{h:>16}" for h in heads))
    ratios = []
    for b, h in zip(base["rounds"], head["rounds"], strict=False):
        rest_b, rest_h = b["total_s"] - b.get("oracle", 0.0), h["total_s"] - h.get("oracle", 0.0)
        ratio, ratio_rest = h["total_s"] / b["total_s"], rest_h / rest_b
        ratios.append(
            {"round": h["round"], "total_ratio": round(ratio, 3), "without_oracle_ratio": round(ratio_rest, 3)}
        )
        cells = (b["total_s"], h["total_s"], ratio, rest_b, rest_h, ratio_rest)
        print(f"{h['round']:>5} " + " ".join(f"{c:>16.2f}" for c in cells))
    print(f"prepare (property models, once, this tree only) {head.get('prepare_s', 0.0):.1f} s")
    doc = {
        "benchmark": "round",
        "base": args.base,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "base_result": base,
        "this_result": head,
        "ratios": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
