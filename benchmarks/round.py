"""Wall time of one round of the embedded default, split by stage, with the orchestration overhead.

Runs round 0 (seed labelling, elemental references) and round 1 (generate → predict → acquire →
oracle → retrain → store) of the default configuration in a fresh data home, in this process,
under Prefect, against the embedded MongoDB-compatible server. Prints a table and writes JSON.

    .venv/bin/python benchmarks/round.py [--rounds 1] [--out benchmarks/results/round.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/oracle.py is named like the project's ``oracle`` package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

STAGES = ("generate", "predict", "acquire", "oracle", "retrain", "store")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="discovery rounds after round 0 (default 1)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/round.json"))
    parser.add_argument("--home", type=Path, default=None, help="data home (default: a fresh temporary one)")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="bd-bench-"))
    os.environ["BATTERY_DISCOVERY_HOME"] = str(home)
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from flows.discovery_loop import discovery_loop
    from loop.config import LoopConfig
    from store import open_store

    config = LoopConfig(campaign="bench", rounds=args.rounds)
    start = time.perf_counter()
    discovery_loop(**{name: getattr(config, name) for name in type(config).model_fields})
    wall = time.perf_counter() - start
    rounds = open_store(config.store_uri, config.database).list_rounds("bench")

    rows = []
    for r in rounds:
        t = r.timings
        stage_sum = sum(t.get(s, 0.0) for s in STAGES)
        rows.append(
            {
                "round": r.round,
                **{s: round(t.get(s, 0.0), 3) for s in STAGES},
                "stages_sum_s": round(stage_sum, 3),
                "total_s": round(t["total"], 3),
                "overhead_s": round(t["total"] - stage_sum, 3),
                "overhead_share": round((t["total"] - stage_sum) / t["total"], 4),
                "batch": [f"{e.formula}:{e.status}" for e in r.acquired],
                "n_pool": r.n_pool,
                "n_generated": r.n_generated,
            }
        )
    header = f"{'round':>5} " + " ".join(f"{s:>9}" for s in STAGES) + f" {'sum':>8} {'total':>8} {'overhead':>9}"
    print("Per-stage wall time (s) of the embedded default; overhead = round total - sum of stages")
    print(header)
    for row in rows:
        print(
            f"{row['round']:>5} "
            + " ".join(f"{row[s]:>9.2f}" for s in STAGES)
            + f" {row['stages_sum_s']:>8.2f} {row['total_s']:>8.2f}"
            + f" {row['overhead_s']:>6.2f} ({row['overhead_share']:.1%})"
        )
    result = {
        "benchmark": "round",
        "config": "LoopConfig(campaign='bench') defaults: pymatgen Li/Na seeds, batch 4, MEGNet x5, qUCB, CHGNet",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "wall_s_including_prefect_start": round(wall, 2),
        "rounds": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wall time incl. temporary Prefect server start: {wall:.1f} s; written to {args.out}")


if __name__ == "__main__":
    main()
