"""The surrogate issue's table, measured with the commands a user types.

For each property (default ``heat_all`` and ``ind_gap`` of perov_5 ``val.csv``):

1. ``battery-discovery train --dataset perov5:PATH --property P --ensemble 5 --name N`` in a fresh data home,
   timed from process start to exit (``--architecture`` left at its default, ``auto``);
2. the model's held-out test records (``split.json``: the seed-0 80/20 split, never seen in training or
   calibration) written as a perov_5-format CSV, the "unseen perovskites";
3. ``battery-discovery predict --model N --input unseen.csv --out preds.csv``, timed likewise;
4. from ``preds.csv`` (``<property>_mean``, ``<property>_std``): MAE / dummy MAE (the training part's mean),
   Spearman(abs error, std), and for ``ind_gap`` the ROC-AUC of the mean for ``ind_gap >= 1.5 eV``.

``--base COMMIT`` runs the same commands with that commit's tree first (a ``git worktree`` sharing this
``.venv``), side by side. Run: ``flock /tmp/heavy.lock .venv/bin/python benchmarks/cli_models.py`` (about 5 min);
writes ``benchmarks/results/cli_models.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEROV = ROOT.parent / "shared" / "data" / "perov_5" / "val.csv"
GOALS = {"mae_ratio": 0.15, "spearman": 0.30, "auc": 0.97, "train_s": 150.0}


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def measure(prop: str, tree: Path, work: Path, python: Path) -> dict[str, Any]:
    """Train, write the unseen test records, predict and score one property with the CLI of ``tree``."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    home = work / f"home-{prop}"
    env = {**os.environ, "BATTERY_DISCOVERY_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(tree)}
    cli = [str(python), "-m", "battery_discovery.cli"]
    name = f"bench-{prop.replace('_', '-')}"
    train_s = _run(
        [*cli, "train", "--dataset", f"perov5:{PEROV}", "--property", prop, "--ensemble", "5", "--name", name],
        env,
        tree,
    )
    model_dir = next((home / "models").glob(f"*/{name}-v1"))
    split = json.loads((model_dir / "split.json").read_text())
    meta = json.loads((model_dir / "model.json").read_text())
    with PEROV.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        rows = {row["material_id"]: row for row in reader}
    test_ids = list(split["test"])
    fit_ids = list(split["train"]) + list(split["val"])
    unseen = work / f"unseen-{prop}.csv"
    with unseen.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows[i] for i in test_ids)
    preds = work / f"preds-{prop}.csv"
    predict_s = _run([*cli, "predict", "--model", name, "--input", str(unseen), "--out", str(preds)], env, tree)
    with preds.open(newline="") as fh:
        out = list(csv.DictReader(fh))
    y = np.array([float(rows[i][prop]) for i in test_ids])
    mean = np.array([float(r[f"{prop}_mean"]) for r in out])
    std = np.array([float(r[f"{prop}_std"]) for r in out])
    dummy = float(np.mean([float(rows[i][prop]) for i in fit_ids]))
    err = np.abs(mean - y)
    result: dict[str, Any] = {
        "property": prop,
        "architecture": meta.get("architecture") or meta.get("kind"),
        "n_test": len(y),
        "mae": float(err.mean()),
        "dummy_mae": float(np.abs(dummy - y).mean()),
        "spearman": float(spearmanr(err, std)[0]),
        "train_s": train_s,
        "predict_s": predict_s,
    }
    result["mae_ratio"] = result["mae"] / result["dummy_mae"]
    if prop == "ind_gap":
        result["auc"] = float(roc_auc_score(y >= 1.5, mean))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--properties", default="heat_all,ind_gap")
    parser.add_argument("--base", help="a commit to measure first, side by side")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cli_models.json")
    args = parser.parse_args()
    python = Path(sys.executable)
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="cli-models-") as tmp:
        trees = {"this tree": ROOT}
        if args.base:
            base = Path(tmp) / "base"
            subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True)
            trees = {f"base {args.base}": base, **trees}
        try:
            for label, tree in trees.items():
                work = Path(tmp) / label.replace(" ", "-")
                work.mkdir()
                results[label] = [measure(p, tree, work, python) for p in args.properties.split(",")]
        finally:
            if args.base:
                subprocess.run(["git", "worktree", "remove", "--force", str(Path(tmp) / "base")], cwd=ROOT)
    header = ("tree", "property", "model", "MAE/dummy", "Spearman", "AUC", "train s", "predict s")
    print("{:<22} {:<9} {:<10} {:>9} {:>8} {:>6} {:>8} {:>9}".format(*header))
    for label, rows in results.items():
        for r in rows:
            auc = f"{r['auc']:.3f}" if "auc" in r else "-"
            print(
                f"{label:<22} {r['property']:<9} {r['architecture']!s:<10} {r['mae_ratio']:>9.3f} "
                f"{r['spearman']:>8.3f} {auc:>6} {r['train_s']:>8.1f} {r['predict_s']:>9.1f}"
            )
    print(
        f"goals: MAE/dummy <= {GOALS['mae_ratio']}, Spearman >= {GOALS['spearman']} (heat_all), "
        f"AUC >= {GOALS['auc']} (ind_gap), train <= {GOALS['train_s']:.0f} s"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"goals": GOALS, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
