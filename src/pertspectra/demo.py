"""End-to-end demo: ``python -m pertspectra.demo --out demo_output`` (what ``make demo`` runs).

1. Simulates a combinatorial screen (known programs, singles and doubles, counts then
   log-normalization), holds out 20% of the doubles, fits PertSpectra on the rest, and prints
   held-out prediction quality beside the control-mean, mean and additive baselines.
2. When the shared real data are present (``../shared/data`` or ``$PERTSPECTRA_SHARED_DATA``),
   fits the Papalexi et al. 2021 ECCITE-seq screen on 80% of the cells of each label and scores
   the per-label means of the other 20%.

Numbers are printed as they are, including where a baseline wins.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import pertspectra as ps
from pertspectra.evaluate import baseline_predictions, prediction_metrics, split_combinations

COLUMNS = ["pearson_delta", "pearson_delta_top", "mse_top", "direction_top", "spearman"]


def shared_data_dir() -> Path | None:
    """The shared real-data folder, if present."""
    env = os.environ.get("PERTSPECTRA_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [
        Path.cwd().parent / "shared" / "data",
        Path(__file__).resolve().parents[3] / "shared" / "data",
    ]
    return next((c for c in candidates if (c / "screens").is_dir()), None)


def _table(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.DataFrame({name: df[COLUMNS].mean() for name, df in results.items()}).T


def simulated(out: Path, *, n_factors: int, seed: int, progress: bool) -> pd.DataFrame:
    """Simulated screen: fit on 80% of the doubles, score the held-out 20%."""
    adata = ps.datasets.simulate_screen(rng=seed)
    print(
        f"simulated screen: {adata.n_obs} cells x {adata.n_vars} genes, "
        f"{adata.obs['perturbation'].nunique()} labels (30 singles, 60 doubles, control)"
    )
    stats = ps.stats.compute_group_stats(adata, perturbation_key="perturbation", progress=False)
    train, test = split_combinations(list(stats.obs_names), fraction=0.2, rng=seed)
    train_stats = stats[train].copy()
    t0 = time.perf_counter()
    model = ps.train.fit(train_stats, n_factors=n_factors, rng=seed, progress=progress)
    print(
        f"fit: {model.training['epochs']} epochs, {time.perf_counter() - t0:.1f} s "
        f"({model.training['stop_reason']})"
    )
    t0 = time.perf_counter()
    effects = ps.train.fit(
        train_stats,
        n_factors=32,
        parametrization="effects",
        graph=False,
        rng=seed,
        progress=progress,
    )
    print(
        f"fit (effects parametrization, 32 factors, no graph term): {effects.training['epochs']} epochs, "
        f"{time.perf_counter() - t0:.1f} s"
    )
    observed = stats[test].to_df()
    ctrl = stats["ctrl"].to_df().iloc[0]
    preds = {"pertspectra": model.predict(test), "pertspectra effects": effects.predict(test)}
    preds.update(baseline_predictions(train_stats.to_df(), test))
    results = {name: prediction_metrics(p, observed, ctrl) for name, p in preds.items()}
    truth = adata.uns["simulation"]["true_mean"].loc[test]
    results["truth (noise ceiling)"] = prediction_metrics(truth, observed, ctrl)
    model.save(out / "simulated_model", overwrite=True)
    preds["pertspectra"].to_csv(out / "simulated_heldout_predictions.csv")
    table = _table(results)
    table.to_csv(out / "simulated_heldout_metrics.csv")
    print(
        f"\nheld-out doubles ({len(test)} labels), mean over labels "
        "(control: pearson_delta undefined, it predicts no change):"
    )
    print(table.round(4).to_string())
    return table


def papalexi(path: Path, out: Path, *, n_factors: int, seed: int, progress: bool) -> pd.DataFrame:
    """Real Papalexi screen: 80/20 cells per label; score per-label means of held-out cells."""
    import anndata as ad

    adata = ad.read_h5ad(path)
    adata.obs["target"] = adata.obs["target"].cat.remove_unused_categories()
    gen = np.random.default_rng(seed)
    is_test = np.zeros(adata.n_obs, dtype=bool)
    for _, idx in adata.obs.groupby("target", observed=True).indices.items():
        is_test[gen.choice(idx, size=round(0.2 * len(idx)), replace=False)] = True
    kw = {"perturbation_key": "target", "normalize": "log1p", "min_cells": 30, "progress": False}
    train_stats = ps.stats.compute_group_stats(adata[~is_test], **kw)
    test_stats = ps.stats.compute_group_stats(adata[is_test], **{**kw, "min_cells": 1})
    print(
        f"\nPapalexi 2021 (real, THP-1 ECCITE-seq): {adata.n_obs} cells x {adata.n_vars} genes, "
        f"{train_stats.n_obs - 1} knockouts + control; 80/20 cell split per label"
    )
    t0 = time.perf_counter()
    model = ps.train.fit(train_stats, n_factors=n_factors, rng=seed, progress=progress)
    print(
        f"fit: {model.training['epochs']} epochs, {time.perf_counter() - t0:.1f} s "
        f"({model.training['stop_reason']})"
    )
    labels = [lab for lab in test_stats.obs_names if lab != "ctrl" and lab in train_stats.obs_names]
    observed = test_stats[labels].to_df()
    ctrl = test_stats["ctrl"].to_df().iloc[0]
    preds = {"pertspectra": model.predict(labels), "training means": train_stats[labels].to_df()}
    base = baseline_predictions(train_stats.to_df(), labels)
    preds.update({"control": base["control"], "mean": base["mean"]})
    all_results = {name: prediction_metrics(p, observed, ctrl) for name, p in preds.items()}
    strong = ["IFNGR1", "IFNGR2", "JAK2", "STAT1", "IRF1", "SMAD4"]
    strong = [s for s in strong if s in labels]
    table = _table(all_results)
    table_strong = _table({k: v.loc[strong] for k, v in all_results.items()})
    model.save(out / "papalexi_model", overwrite=True)
    table.to_csv(out / "papalexi_heldout_metrics.csv")
    print(f"held-out cells, all {len(labels)} knockouts, mean over labels:")
    print(table.round(4).to_string())
    print(f"held-out cells, IFN-gamma pathway knockouts ({', '.join(strong)}):")
    print(table_strong.round(4).to_string())
    return table


def main(argv: list[str] | None = None) -> None:
    """Run the demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_output"))
    parser.add_argument("--factors", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--skip-real", action="store_true", help="Skip the real Papalexi screen.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # noqa: TID251 - demo script configures logging
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    simulated(args.out, n_factors=args.factors, seed=args.seed, progress=not args.no_progress)
    data = shared_data_dir()
    path = data / "screens" / "papalexi2021_thp1_eccite_299genes.h5ad" if data else None
    if args.skip_real or path is None or not path.is_file():
        print("\n(shared real data not found: skipping the Papalexi screen)")
    else:
        papalexi(
            path, args.out, n_factors=args.factors, seed=args.seed, progress=not args.no_progress
        )
    print(f"\noutputs in {args.out}/ ; total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
