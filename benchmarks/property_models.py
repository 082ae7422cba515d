"""Property-model benchmark: dummy vs classical baseline vs single GNN vs GNN ensemble, and the graph cache.

- perov_5 ``val.csv`` (3,787 ABX3 cells), fixed seed-0 80/20 split (10% of the training part held out for
  early stopping / std recalibration), targets ``heat_all`` (eV/atom) and ``ind_gap`` (eV);
- OBELiX official train/test split, ``log10_conductivity`` (log10 S/cm), composition models (most
  records lack a usable structure).

The ensemble is 5 MEGNets trained together as one vectorised module (``StackedMEGNet``) for a fixed number of
epochs. "single GNN" is member 0 of that ensemble (members are trained independently: separate weights,
seeds and losses, only the batches are shared), with the mean over members alongside. Throughput is
measured in this process side by side: graphs built from structures vs read from the on-disk cache, for
training (member-structures per second including graph preparation) and inference (structures per second
from structures to predictions).

Uncertainty variants, side by side on each task's test split (``perov_5`` ``heat_all`` and ``ind_gap``, and MP-20
``band_gap`` on the seed-0 split of ``mp_20_biternary/val.csv.gz``): MAE, R², ROC-AUC of the mean for the wide-gap
class (``ind_gap >= 1.5``, ``band_gap >= 3`` eV), Spearman(abs error, std), Gaussian NLL, miscalibration area
and fit time, for the composition random forest (spread of its trees), the plain GNN ensemble and its three
post-hoc calibrations on the validation part (a scale, a scale with a floor, a split-conformal scale), the
bootstrap gradient-boosting ensemble, the hurdle model (zero-inflated targets only), the GNN + boosting mixed
ensemble and ``chgnet-gb`` (cross-fitted boosting on CHGNet features with an error model; raw and calibrated).

Run (about 25 minutes on 2 cores): ``flock /tmp/heavy.lock .venv/bin/python benchmarks/property_models.py``.
Writes ``benchmarks/results/property_models.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def _first_rows(data: Any, n: int) -> Any:
    """The first ``n`` records of ``data`` (``--quick``)."""
    from dataclasses import replace

    keep = np.arange(n)
    return replace(
        data,
        ids=[data.ids[i] for i in keep],
        formulas=[data.formulas[i] for i in keep],
        structures=[data.structures[i] for i in keep],
        compositions=[data.compositions[i] for i in keep],
        y=data.y[keep],
    )


def _graph_timings(everything: list[Any], cutoff: float) -> tuple[Any, Any, tuple[float, float, float, float]]:
    """Graphs built from the structures vs read back from the on-disk cache (same process, side by side):
    (built graphs, cached graphs, (build, cache miss, cache hit, structures hash) in s)."""
    from matgl.config import DEFAULT_ELEMENTS

    from surrogates.graphs import GraphCache, build_graphs

    with tempfile.TemporaryDirectory() as tmp:
        cache = GraphCache(directory=Path(tmp))
        t = time.perf_counter()
        graphs = build_graphs(everything, cutoff, DEFAULT_ELEMENTS)  # type: ignore[arg-type]
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        cache.load_or_build(everything, cutoff=cutoff, element_types=DEFAULT_ELEMENTS)  # type: ignore[arg-type]
        miss_s = time.perf_counter() - t
        t = time.perf_counter()
        cached, hit = cache.load_or_build(everything, cutoff=cutoff, element_types=DEFAULT_ELEMENTS)  # type: ignore[arg-type]
        hit_s = time.perf_counter() - t
        assert hit
        key_s = _time(lambda: __import__("surrogates.graphs").graphs.structures_hash(everything))
    return graphs, cached, (build_s, miss_s, hit_s, key_s)


def _perov(prop: str, config: Any, threads: int, quick: bool, spec: str | None = None) -> dict[str, Any]:

    from surrogates.baseline import CompositionBaseline
    from surrogates.data import load_property_data, split_data
    from surrogates.ensemble import GNNEnsemble
    from surrogates.metrics import ensemble_metrics, fit_std_scale, regression_metrics

    data = load_property_data(spec or f"perov5:{SHARED / 'perov_5' / 'val.csv'}", prop, cache_dir=SHARED)
    if quick:
        data = _first_rows(data, 400)
    split = split_data(data, seed=0)
    y = data.y
    fit_pos = np.concatenate([split.train, split.val])
    structures = data.structures
    name = "perov_5 val.csv" if spec is None else spec
    out: dict[str, Any] = {"dataset": name, "property": prop, "split": split.describe(), "models": {}}
    test_y = y[split.test]
    out["models"]["dummy mean"] = regression_metrics(test_y, np.full(len(test_y), y[fit_pos].mean()))
    for kind in ("random_forest", "gradient_boosting"):
        t = time.perf_counter()
        model = CompositionBaseline(kind=kind, seed=0).fit([structures[i] for i in fit_pos], y[fit_pos])  # type: ignore[misc]
        fit_s = time.perf_counter() - t
        pred = model.predict([structures[i] for i in split.test])  # type: ignore[misc]
        out["models"][f"baseline {kind}"] = {**regression_metrics(test_y, pred), "fit_s": fit_s}

    # graphs: built from structures vs read back from the on-disk cache (same process, side by side)
    everything = list(structures)
    graphs, cached, (build_s, miss_s, hit_s, key_s) = _graph_timings(everything, config.cutoff)
    fit_graphs = cached.subset(fit_pos)
    n_fit = len(fit_pos)
    t = time.perf_counter()
    ensemble = GNNEnsemble.fit(
        [structures[i] for i in fit_pos],  # type: ignore[misc]
        y[fit_pos],
        config=config,
        property_name=prop,
        version="bench",
        graphs=fit_graphs,
        val_indices=np.arange(len(split.train), n_fit),
    )
    fit_s = time.perf_counter() - t
    val_members = ensemble.predict_graphs(fit_graphs.subset(np.arange(len(split.train), n_fit)))
    scale = fit_std_scale(y[split.val], val_members.mean(0), val_members.std(0))
    test_members = ensemble.predict_graphs(cached.subset(split.test))
    raw = ensemble_metrics(test_y, test_members)
    cal = ensemble_metrics(test_y, test_members, std_scale=scale)
    members_mae = [float(np.abs(m - test_y).mean()) for m in test_members]
    out["models"]["single GNN (member 0)"] = {**regression_metrics(test_y, test_members[0]), "fit_s": None}
    out["models"][f"GNN ensemble of {config.n_members}"] = {
        **raw,
        "fit_s": fit_s,
        "member_mae": members_mae,
        "nll_recalibrated": cal["nll"],
        "miscalibration_area_recalibrated": cal["miscalibration_area"],
        "std_scale": scale,
        "epochs": ensemble.metrics["epochs_run"][0],
    }
    m = ensemble.metrics
    train_time = m["train_time_s"] - m["graph_time_s"]
    member_structures = m["train_structures_per_s"] * train_time
    t = time.perf_counter()
    ensemble.predict_graphs(graphs)
    predict_s = time.perf_counter() - t
    n = len(everything)
    out["throughput"] = {
        "n_structures": n,
        "graph_build_s": build_s,
        "graph_cache_miss_s": miss_s,
        "graph_cache_hit_s": hit_s,
        "structures_hash_s": key_s,
        "train_member_structures_per_s": m["train_structures_per_s"],
        "train_per_s_with_cache": member_structures / (train_time + hit_s * n_fit / n),
        "train_per_s_without_cache": member_structures / (train_time + build_s * n_fit / n),
        "inference_per_s_with_cache": n / (hit_s + predict_s),
        "inference_per_s_without_cache": n / (build_s + predict_s),
        "inference_model_only_per_s": n / predict_s,
        "threads": threads,
    }
    val_members = ensemble.predict_graphs(cached.subset(split.val))
    out["variants"] = _variants(data, split, val_members, test_members, fit_s, threads=threads)
    return out


#: Wide-gap class of each zero-inflated target (eV) for the ROC-AUC of the mean.
WIDE_GAP = {"ind_gap": 1.5, "band_gap": 3.0}


def _row(y: np.ndarray, mean: np.ndarray, std: np.ndarray | None, fit_s: float | None, prop: str) -> dict[str, Any]:
    """MAE, R², wide-gap ROC-AUC, Spearman(abs error, std), NLL, miscalibration area, fit seconds."""
    from sklearn.metrics import roc_auc_score

    from surrogates.metrics import gaussian_nll, miscalibration_area, regression_metrics, spearman_error_std

    reg = regression_metrics(y, mean)
    row: dict[str, Any] = {"mae": reg["mae"], "r2": reg["r2"], "fit_s": fit_s}
    if prop in WIDE_GAP:
        hits = y >= WIDE_GAP[prop]
        row["auc"] = float(roc_auc_score(hits, mean)) if 0 < hits.sum() < len(y) else float("nan")
    if std is not None:
        row.update(
            spearman=spearman_error_std(y, mean, std),
            nll=gaussian_nll(y, mean, std),
            miscalibration_area=miscalibration_area(y, mean, std),
        )
    return row


def _variants(
    data: Any, split: Any, gnn_val: np.ndarray, gnn_test: np.ndarray, gnn_fit_s: float, *, threads: int
) -> dict[str, dict[str, Any]]:
    """Every uncertainty variant on ``split.test``: ``gnn_val``/``gnn_test`` are the GNN members ``(K, n)``."""
    import copy

    from surrogates.baseline import CompositionBaseline
    from surrogates.descriptor_models import DescriptorEnsemble
    from surrogates.metrics import conformal_scale, fit_std_affine, fit_std_scale
    from surrogates.property_models import CHGNET_GB, GB_ENSEMBLE, zero_fraction
    from surrogates.workflow import fit_descriptor

    prop = data.property_name
    y = np.asarray(data.y, dtype=np.float64)
    yv, yt = y[split.val], y[split.test]
    items = data.structures
    fit_pos = np.concatenate([split.train, split.val])
    rows: dict[str, dict[str, Any]] = {}

    t = time.perf_counter()
    rf = CompositionBaseline(kind="random_forest", seed=0).fit([items[i] for i in fit_pos], y[fit_pos])
    rf_s = time.perf_counter() - t
    trees = rf.predict_members([items[i] for i in split.test])
    rows["composition random forest (tree spread)"] = _row(yt, trees.mean(0), trees.std(0), rf_s, prop)

    k = len(gnn_test)
    mv, sv = gnn_val.mean(0), gnn_val.std(0)
    mt, st = gnn_test.mean(0), gnn_test.std(0)
    rows[f"GNN ensemble x{k}, raw spread"] = _row(yt, mt, st, gnn_fit_s, prop)
    rows[f"GNN ensemble x{k}, scale (val NLL)"] = _row(yt, mt, st * fit_std_scale(yv, mv, sv), gnn_fit_s, prop)
    a, b = fit_std_affine(yv, mv, sv)
    rows[f"GNN ensemble x{k}, scale + floor (val NLL)"] = _row(yt, mt, np.sqrt((a * st) ** 2 + b**2), gnn_fit_s, prop)
    rows[f"GNN ensemble x{k}, conformal scale (val)"] = _row(yt, mt, st * conformal_scale(yv, mv, sv), gnn_fit_s, prop)

    t = time.perf_counter()
    x_describe = DescriptorEnsemble().featurize(items)
    describe_s = time.perf_counter() - t
    settings = {**GB_ENSEMBLE, "features": "describe"}
    gb = DescriptorEnsemble(kind="regressor", n_members=5, bootstrap=True, num_threads=threads, **settings)
    t = time.perf_counter()
    gb_model, _ = fit_descriptor(gb, x_describe, y, split)
    gb_s = time.perf_counter() - t + describe_s
    gb_members = gb_model.predict_members(None, x=x_describe[split.test])
    gb_mean, gb_std = gb_model.predict(None, x=x_describe[split.test])
    rows["bootstrap gradient boosting x5 (describe), scale"] = _row(yt, gb_mean, gb_std, gb_s, prop)

    if zero_fraction(y) >= 0.3 and (y >= 0).all():
        hurdle = DescriptorEnsemble(kind="hurdle", n_members=5, num_threads=threads)
        t = time.perf_counter()
        h_model, _ = fit_descriptor(hurdle, x_describe, y, split)
        h_s = time.perf_counter() - t + describe_s
        rows["hurdle-gb x5 (mixture std)"] = _row(yt, *h_model.predict(None, x=x_describe[split.test]), h_s, prop)

    gb_val = copy.deepcopy(gb).fit(None, y[split.train], x=x_describe[split.train])  # out-of-sample val members
    mixed_val = np.concatenate([gnn_val, gb_val.predict_members(None, x=x_describe[split.val])])
    mixed_test = np.concatenate([gnn_test, gb_members])
    scale = fit_std_scale(yv, mixed_val.mean(0), mixed_val.std(0))
    rows[f"mixed GNN x{k} + boosting x5, scale"] = _row(
        yt, mixed_test.mean(0), mixed_test.std(0) * scale, gnn_fit_s + gb_s, prop
    )

    t = time.perf_counter()
    cf = DescriptorEnsemble(kind="crossfit", n_members=5, num_threads=threads, **CHGNET_GB)
    x_cf = cf.featurize(items)
    cf_model, _ = fit_descriptor(cf, x_cf, y, split)
    cf_s = time.perf_counter() - t
    cf_mean, cf_std = cf_model.predict(None, x=x_cf[split.test])
    raw = copy.deepcopy(cf_model)
    raw.std_scale = 1.0
    rows["chgnet-gb x5, error model, raw"] = _row(yt, *raw.predict(None, x=x_cf[split.test]), cf_s, prop)
    rows["chgnet-gb x5, error model, scale (default)"] = _row(yt, cf_mean, cf_std, cf_s, prop)
    spread = cf_model.predict_members(None, x=x_cf[split.test]).std(0)
    rows["chgnet-gb x5, fold spread only"] = _row(yt, cf_mean, spread, cf_s, prop)
    return rows


def _time(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _obelix() -> dict[str, Any]:
    from surrogates.baseline import CompositionBaseline
    from surrogates.data import load_property_data, split_data
    from surrogates.metrics import regression_metrics

    data = load_property_data(f"obelix:{SHARED / 'obelix'}", "log10_conductivity")
    split = split_data(data, seed=0)
    y = data.y
    fit_pos = np.concatenate([split.train, split.val])  # the official train split
    test_y = y[split.test]
    out: dict[str, Any] = {
        "dataset": "OBELiX",
        "property": "log10_conductivity",
        "split": split.describe(),
        "n_with_structure": int(sum(s is not None for s in data.structures)),
        "models": {"dummy mean": regression_metrics(test_y, np.full(len(test_y), y[fit_pos].mean()))},
    }
    comps = data.compositions
    mixed = [s if s is not None else c for s, c in zip(data.structures, comps, strict=True)]
    for label, items in (("composition", comps), ("composition + structure where present", mixed)):
        for kind in ("random_forest", "gradient_boosting"):
            model = CompositionBaseline(kind=kind, seed=0).fit([items[i] for i in fit_pos], y[fit_pos])
            pred = model.predict([items[i] for i in split.test])
            out["models"][f"baseline {kind} ({label})"] = regression_metrics(test_y, pred)
    out["published_test_mae_range"] = [1.2, 1.6]
    return out


def _print(results: dict[str, Any]) -> None:
    print()
    for block in results["tasks"]:
        print(f"## {block['dataset']} / {block['property']} (split {block['split']})")
        print(f"{'model':<58} {'MAE':>8} {'RMSE':>8} {'R2':>7}")
        for name, r in block["models"].items():
            print(f"{name:<58} {r['mae']:8.4f} {r['rmse']:8.4f} {r['r2']:7.3f}")
        if "throughput" in block:
            th = block["throughput"]
            print(
                f"graphs for {th['n_structures']}: build {th['graph_build_s']:.2f} s, "
                f"cache hit {th['graph_cache_hit_s']:.2f} s; training "
                f"{th['train_per_s_without_cache']:.0f} -> {th['train_per_s_with_cache']:.0f} member-structures/s; "
                f"inference {th['inference_per_s_without_cache']:.0f} -> "
                f"{th['inference_per_s_with_cache']:.0f} structures/s (without -> with cache)"
            )
        if "variants" in block:
            print(
                f"{'variant':<52} {'MAE':>7} {'R2':>6} {'AUC':>6} {'Spearman':>8} {'NLL':>7} {'miscal':>6} {'fit s':>6}"
            )
            for name, r in block["variants"].items():
                auc = f"{r['auc']:.3f}" if "auc" in r else "-"
                print(
                    f"{name:<52} {r['mae']:7.4f} {r['r2']:6.3f} {auc:>6} {r.get('spearman', float('nan')):8.3f} "
                    f"{r.get('nll', float('nan')):7.3f} {r.get('miscalibration_area', float('nan')):6.3f} "
                    f"{r['fit_s']:6.0f}"
                )
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads (2 on a quiet 2-core machine; 1 if others share it)"
    )
    parser.add_argument("--epochs", type=int, default=60, help="ensemble training epochs (fixed: same model anywhere)")
    parser.add_argument("--quick", action="store_true", help="400 structures, 3 epochs: a smoke test")
    parser.add_argument("--loss", choices=("mse", "l1", "huber"), default="mse", help="training loss of the GNNs")
    parser.add_argument(
        "--hidden-size", choices=("small", "medium", "default"), default="small", help="MEGNet width preset"
    )
    parser.add_argument("--properties", default="heat_all,ind_gap", help="perov_5 properties to run, comma separated")
    parser.add_argument("--no-obelix", action="store_true", help="skip the OBELiX block")
    parser.add_argument("--no-mp20", action="store_true", help="skip the MP-20 band-gap block")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "property_models.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")
    from surrogates.config import EnsembleConfig

    config = EnsembleConfig(
        architecture="megnet",
        hidden_size=args.hidden_size,
        loss=args.loss,
        n_members=5,
        epochs=3 if args.quick else args.epochs,
        batch_size=64,
        learning_rate=5e-3,
        lr_schedule="cosine",
        bootstrap=False,
        cutoff=4.0,
        num_threads=args.threads,
        seed=0,
    )
    start = time.perf_counter()
    tasks = [_perov(prop, config, args.threads, args.quick) for prop in args.properties.split(",") if prop]
    if not args.no_mp20:
        tasks.append(_perov("band_gap", config, args.threads, args.quick, spec="mp20:val"))
    if not args.no_obelix:
        tasks.append(_obelix())
    results = {
        "config": config.model_dump(mode="json"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "tasks": tasks,
        "total_s": time.perf_counter() - start,
    }
    _print(results)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=float))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
