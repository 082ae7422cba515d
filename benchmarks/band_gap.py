"""Band-gap and ionic-conductivity property models side by side, one run, same splits.

Band gap (eV, PBE/GGA+U) on MP-20 ``mp20:val`` (7,092 structures after de-duplication), the seed-0 80/20 split
of ``surrogates.data.split_data`` (10 % of the training part is the validation part that calibrates the
uncertainty); metrics on the whole test split and on its Li/Na-containing compounds:

- dummy mean, the composition random forest (``CompositionBaseline``, 35 descriptors);
- ``gb-ensemble``: 8 bootstrap gradient-boosting regressors on ``surrogates.descriptors.describe``;
- ``hurdle-gb``: 8 members of P(gap > 0) x E[gap | gap > 0] on the same descriptors (the registered default);
- MEGNet: the project's vectorised ensemble (5 small members, fixed epochs, cosine schedule), and the mean
  of MEGNet and ``hurdle-gb`` (a GNN/descriptor mix). ``--skip-gnn`` leaves them out.

Metrics: MAE (eV), MAE / dummy MAE (dummy on the same subset), R², ROC-AUC of the predicted mean for
gap >= 3 eV, Spearman(|error|, std), training wall time (s; descriptors excluded, listed apart).

Conductivity (log10 S/cm) on OBELiX's official test split: dummy, the composition+structure baselines
(``CompositionBaseline`` random forest and gradient boosting on 35 descriptors) and ``gb-ensemble`` on
``describe`` with OBELiX alone (``obelix``) and with the room-temperature Liverpool records (``obelix-liverpool``).

Run: ``flock /tmp/heavy.lock .venv/bin/python benchmarks/band_gap.py`` (about 15 min on 2 cores with MEGNet).
Writes ``benchmarks/results/band_gap.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def _metrics(y: np.ndarray, mean: np.ndarray, std: np.ndarray | None, dummy: float, auc_at: float | None) -> dict:
    """MAE, MAE / dummy MAE, R², ROC-AUC (mean vs y >= auc_at) and Spearman(|error|, std) of one subset."""
    from sklearn.metrics import roc_auc_score

    from surrogates.metrics import regression_metrics, spearman_error_std

    out: dict[str, Any] = {"n": len(y), **regression_metrics(y, mean)}
    out["mae_over_dummy"] = out["mae"] / float(np.abs(y - dummy).mean())
    if auc_at is not None:
        hits = y >= auc_at
        out["roc_auc"] = float(roc_auc_score(hits, mean)) if 0 < hits.sum() < len(y) else float("nan")
        out["n_positive"] = int(hits.sum())
    out["spearman"] = spearman_error_std(y, mean, std) if std is not None else float("nan")
    return out


def band_gap(args: argparse.Namespace) -> dict[str, Any]:
    from surrogates.baseline import CompositionBaseline
    from surrogates.config import EnsembleConfig
    from surrogates.data import load_property_data, split_data
    from surrogates.descriptor_models import DescriptorEnsemble
    from surrogates.descriptors import describe
    from surrogates.workflow import fit_descriptor

    data = load_property_data("mp20:val", "band_gap", cache_dir=SHARED)
    split = split_data(data, seed=args.seed)
    fit, test = np.concatenate([split.train, split.val]), split.test
    y = data.y
    lina = np.array([any(str(e) in ("Li", "Na") for e in c.elements) for c in data.compositions])[test]
    subsets = {"all": np.ones(len(test), bool), "li_na": lina}
    dummy = float(y[fit].mean())
    rows: list[dict[str, Any]] = []
    preds: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    def add(name: str, mean: np.ndarray, std: np.ndarray | None, fit_s: float, note: str = "") -> None:
        preds[name] = (mean, std)
        row = {"model": name, "fit_s": fit_s, "note": note}
        for key, mask in subsets.items():
            row[key] = _metrics(y[test][mask], mean[mask], None if std is None else std[mask], dummy, 3.0)
        rows.append(row)
        print(_line(row), flush=True)

    add("dummy mean", np.full(len(test), dummy), None, 0.0)
    structures = data.structures
    t = time.perf_counter()
    rf = CompositionBaseline(kind="random_forest", seed=args.seed).fit([structures[i] for i in fit], y[fit])  # type: ignore[misc]
    fit_s = time.perf_counter() - t
    trees = rf.predict_members([structures[i] for i in test])  # type: ignore[misc]
    add("composition RF (baseline.py)", trees.mean(0), trees.std(0), fit_s)

    t = time.perf_counter()
    x = describe(structures)  # type: ignore[arg-type]
    describe_s = time.perf_counter() - t
    for name, kind in (("gb-ensemble (8, bootstrap)", "regressor"), ("hurdle-gb (8)", "hurdle")):
        template = DescriptorEnsemble(
            kind=kind,  # type: ignore[arg-type]
            n_members=8,
            seed=args.seed,
            bootstrap=kind == "regressor",
            num_threads=args.threads,
        )
        model, timings = fit_descriptor(template, x, y, split)
        mean, std = model.predict(None, x=x[test])
        add(name, np.clip(mean, 0, None), std, timings["descriptor_fit_s"], "fit on train, calibrated on val, refit")
        if kind == "hurdle":
            samples = model.sample(None, 256, seed=0, x=x[test])
            rows[-1]["samples_zero_fraction"] = float((samples == 0).mean())
            rows[-1]["sigma"] = model.sigma

    if not args.skip_gnn:
        from surrogates.ensemble import GNNEnsemble
        from surrogates.workflow import load_graphs

        config = EnsembleConfig(
            n_members=5, epochs=args.epochs, batch_size=64, learning_rate=5e-3, lr_schedule="cosine",
            num_threads=args.threads, seed=args.seed, bootstrap=False,
        )  # fmt: skip
        all_pos = np.concatenate([fit, test])
        graphs, _ = load_graphs(data, all_pos, config.cutoff, use_cache=False)
        n_fit = len(fit)
        t = time.perf_counter()
        ensemble = GNNEnsemble.fit(
            [structures[int(i)] for i in fit],  # type: ignore[misc]
            y[fit],
            config=config,
            property_name="band_gap",
            version="benchmark",
            graphs=graphs.subset(np.arange(n_fit)),
            val_indices=np.arange(len(split.train), n_fit),
        )
        fit_s = time.perf_counter() - t
        from surrogates.metrics import fit_std_scale

        val = ensemble.predict_graphs(graphs.subset(np.arange(len(split.train), n_fit)))
        scale = fit_std_scale(y[split.val], val.mean(0), val.std(0))
        members = ensemble.predict_graphs(graphs.subset(np.arange(n_fit, len(all_pos))))
        add(f"MEGNet x5 small ({args.epochs} epochs)", members.mean(0), members.std(0) * scale, fit_s)
        hurdle_mean, hurdle_std = preds["hurdle-gb (8)"]
        mix_std = np.sqrt(0.5 * (hurdle_std**2 + (members.std(0) * scale) ** 2))  # type: ignore[operator]
        add("mix: mean of hurdle-gb and MEGNet", 0.5 * (hurdle_mean + members.mean(0)), mix_std, 0.0, "sum of both")
    return {
        "dataset": "mp20:val",
        "n_records": len(data),
        "split": split.describe(),
        "n_test_li_na": int(lina.sum()),
        "describe_s": describe_s,
        "rows": rows,
    }


def _conductivity_one(spec: str, seed: int, threads: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of every conductivity model trained on ``spec`` and the test ids."""
    from surrogates.baseline import CompositionBaseline
    from surrogates.data import load_property_data, split_data
    from surrogates.descriptor_models import DescriptorEnsemble
    from surrogates.property_models import GB_ENSEMBLE
    from surrogates.workflow import fit_descriptor

    data = load_property_data(spec, "log10_conductivity", cache_dir=SHARED)
    split = split_data(data, seed=seed)
    fit, test = np.concatenate([split.train, split.val]), split.test
    y = data.y
    items = [s if s is not None else c for s, c in zip(data.structures, data.compositions, strict=True)]
    dummy = float(y[fit].mean())
    rows: list[dict[str, Any]] = []

    def add(name: str, mean: np.ndarray, std: np.ndarray | None, fit_s: float) -> None:
        row = {"model": name, "dataset": spec, "n_train": len(fit), "fit_s": fit_s}
        row["test"] = _metrics(y[test], mean, std, dummy, None)
        rows.append(row)
        print(_line(row, keys=("test",)), flush=True)

    add("dummy mean", np.full(len(test), dummy), None, 0.0)
    for kind in ("random_forest", "gradient_boosting"):
        t = time.perf_counter()
        base = CompositionBaseline(kind=kind, seed=seed).fit([items[i] for i in fit], y[fit])  # type: ignore[arg-type]
        fit_s = time.perf_counter() - t
        members = base.predict_members([items[i] for i in test])  # type: ignore[arg-type]
        add(f"baseline.py {kind}", members.mean(0), members.std(0) if len(members) > 1 else None, fit_s)
    for label, settings in (("describe", {}), ("baseline descriptors (registered)", GB_ENSEMBLE)):
        template = DescriptorEnsemble(
            kind="regressor", n_members=8, seed=seed, bootstrap=True, num_threads=threads, **settings
        )
        x = template.featurize(items)
        model, timings = fit_descriptor(template, x, y, split)
        mean, std = model.predict(None, x=x[test])
        add(f"gb-ensemble (8, bootstrap) on {label}", mean, std, timings["descriptor_fit_s"])
    return rows, [data.ids[int(i)] for i in test]


def conductivity(args: argparse.Namespace) -> dict[str, Any]:
    rows, test_ids = _conductivity_one("obelix", args.seed, args.threads)
    more, ids = _conductivity_one("obelix-liverpool", args.seed, args.threads)
    if ids != test_ids:
        raise RuntimeError("the OBELiX test split must be the same with and without Liverpool data")
    return {"split": "OBELiX official test", "n_test": len(test_ids), "rows": rows + more}


def _line(row: dict[str, Any], keys: tuple[str, ...] = ("all", "li_na")) -> str:
    parts = [f"{row['model'][:44]:44s} {row.get('dataset', ''):16s} fit {row['fit_s']:7.1f} s"]
    for key in keys:
        m = row[key]
        text = f"{key}: MAE {m['mae']:.3f} ({m['mae_over_dummy']:.3f}x) R2 {m['r2']:.3f}"
        if "roc_auc" in m:
            text += f" AUC {m['roc_auc']:.3f}"
        text += f" rho {m['spearman']:.2f}"
        parts.append(text)
    return " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-gnn", action="store_true", help="Leave MEGNet and the mix out (saves ~10 min).")
    parser.add_argument("--skip-conductivity", action="store_true", help="Band gaps only.")
    parser.add_argument("--epochs", type=int, default=30, help="MEGNet epochs (fixed; cosine schedule over them).")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads (MEGNet) and OpenMP threads (gradient boosting)."
    )
    parser.add_argument("--seed", type=int, default=0, help="Split and model seed.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "band_gap.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.time()
    print("== band gap, mp20:val seed-0 split ==", flush=True)
    results: dict[str, Any] = {"band_gap": band_gap(args)}
    if not args.skip_conductivity:
        print("== log10 conductivity, OBELiX official test split ==", flush=True)
        results["conductivity"] = conductivity(args)
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "wall_s": time.time() - started}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
