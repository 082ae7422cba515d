"""Same picks before and after a change: the replay benchmark on two code trees, batch by batch.

Runs ``battery-discovery benchmark`` on the same pool, target, seeds and settings twice - once with the
code of a base commit (checked out into a temporary git worktree and put first on ``PYTHONPATH``) and
once with this working tree - each in a fresh data home, then compares every campaign's acquired
candidate ids round by round and prints them side by side with each run's wall time. A refactoring that
changes structure, not behaviour, must report every batch identical.

    .venv/bin/python benchmarks/same_picks.py --base 3284127 [--rounds 2] [--seeds 2] \\
        [--strategies random,greedy,logei] [--surrogate auto|gnn] [--out benchmarks/results/same_picks.json]

The base commit must have the same ``battery-discovery benchmark`` command (flags as below).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_CLI = "import sys; from battery_discovery.cli import main; sys.argv[0] = 'battery-discovery'; main()"

_DUMP = """
import json, sys
from store import open_store
doc = json.load(open(sys.argv[1]))
store = open_store("embedded", doc["database"])
picks = {}
for r in store.list_rounds():
    picks.setdefault(r.campaign, {})[str(r.round)] = [e.candidate_id for e in r.acquired]
json.dump({"picks": picks, "strategies": {k: v["per_seed"] for k, v in doc["strategies"].items()}},
          open(sys.argv[2], "w"))
"""


def run_tree(label: str, code: Path | None, args: argparse.Namespace, work: Path) -> tuple[dict, float]:
    """Run the benchmark with the code in ``code`` (None: this tree); returns (picks document, wall s)."""
    home = work / label
    env = {
        **os.environ,
        "BATTERY_DISCOVERY_HOME": str(home / "home"),
        "PREFECT_HOME": str(home / "prefect"),
        "HF_HUB_OFFLINE": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",  # a fresh PREFECT_HOME migrates first
    }
    env.pop("PREFECT_API_URL", None)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    results = home / "results.json"
    cmd = [
        sys.executable, "-c", _CLI,
        "benchmark", "--pool", str(args.pool), "--target", args.target, "--initial", str(args.initial),
        "--batch", str(args.batch), "--rounds", str(args.rounds), "--seeds", str(args.seeds),
        "--strategies", args.strategies, "--surrogate", args.surrogate, "--workers", "1", "--out", str(results),
    ]  # fmt: skip
    home.mkdir(parents=True, exist_ok=True)
    print(f"[{label}] running the replay benchmark ...", flush=True)
    start = time.perf_counter()
    with open(home / "log.txt", "w") as log:
        subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=REPO)
    wall = time.perf_counter() - start
    picks = home / "picks.json"
    subprocess.run([sys.executable, "-c", _DUMP, str(results), str(picks)], env=env, check=True, cwd=REPO)
    subprocess.run(
        [sys.executable, "-c", "from store.embedded import stop_embedded_server; stop_embedded_server()"],
        env=env, check=False, cwd=REPO,
    )  # fmt: skip
    return json.loads(picks.read_text()), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="commit (or branch) whose picks are the reference")
    parser.add_argument("--pool", type=Path, default=REPO.parent / "shared" / "data" / "perov_5" / "val.csv")
    parser.add_argument("--target", default="ind_gap >= 1.5 and heat_all <= 0.5")
    parser.add_argument("--initial", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--strategies", default="random,greedy,logei")
    parser.add_argument(
        "--surrogate", default="auto", help="the benchmark's --surrogate: auto (descriptor ensembles) or gnn (MEGNet)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "same_picks.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bd-same-picks-"))
    base_tree = work / "base-tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=REPO, check=True)
    try:
        base, base_wall = run_tree("base", base_tree, args, work)
        head, head_wall = run_tree("head", None, args, work)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO, check=False)

    rows = []
    for campaign in sorted(base["picks"]):
        for r in sorted(base["picks"][campaign], key=int):
            a, b = base["picks"][campaign][r], head["picks"].get(campaign, {}).get(r)
            rows.append({"campaign": campaign, "round": int(r), "n": len(a), "identical": a == b})
    same = all(row["identical"] for row in rows) and base["picks"].keys() == head["picks"].keys()
    print(f"\n{'campaign':<20} {'round':>5} {'batch':>5}  identical")
    for row in rows:
        print(f"{row['campaign']:<20} {row['round']:>5} {row['n']:>5}  {row['identical']}")
    print(f"\n{'':<20} {'base ' + args.base:>16} {'this tree':>12}")
    for strategy in sorted(base["strategies"]):
        print(f"{strategy + ' found per seed':<20} {base['strategies'][strategy]!s:>16} "
              f"{head['strategies'].get(strategy)!s:>12}")  # fmt: skip
    print(f"{'wall time (s)':<20} {base_wall:>16.0f} {head_wall:>12.0f}")
    print(f"\nevery batch identical: {same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "base": args.base,
                "identical": same,
                "rows": rows,
                "wall_s": {"base": base_wall, "head": head_wall},
                "settings": {k: str(v) for k, v in vars(args).items()},
            },
            indent=2,
        )
    )
    print(f"written to {args.out}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
