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
import time
from pathlib import Path
from typing import Any

import pandas as pd

import pertspectra as ps
from pertspectra.evaluate import holdout_cells, holdout_combinations
from pertspectra.testing import shared_data_dir

COLUMNS = ["pearson_delta", "pearson_delta_top20", "mse_top20", "direction_top20", "spearman_raw"]


def simulated(out: Path, *, n_factors: int, seed: int, progress: bool) -> pd.DataFrame:
    """Simulated screen: fit on 80% of the doubles, score the held-out 20%."""
    adata = ps.datasets.simulate_screen(seed=seed)
    print(
        f"simulated screen: {adata.n_obs} cells x {adata.n_vars} genes, "
        f"{adata.obs['perturbation'].nunique()} labels (30 singles, 60 doubles, control)"
    )
    stats = ps.stats.compute_group_stats(adata, perturbation_key="perturbation", progress=False)
    fits: dict[str, dict[str, Any]] = {
        "pertspectra": {"n_factors": n_factors},
        "pertspectra effects": {"n_factors": 32, "parametrization": "effects", "graph": False},
    }
    res = holdout_combinations(stats, fits=fits, fraction=0.2, seed=seed, progress=progress)
    for name, model in res.models.items():
        print(
            f"fit ({name}, {model.config.n_factors} factors): {model.training['epochs']} epochs, "
            f"{res.seconds[name]:.1f} s ({model.training['stop_reason']})"
        )
    res.score("truth (noise ceiling)", adata.uns["simulation"]["true_mean"].loc[res.observed.index])
    res.models["pertspectra"].save(out / "simulated_model", overwrite=True)
    res.predictions["pertspectra"].to_csv(out / "simulated_heldout_predictions.csv")
    table = res.table(COLUMNS)
    table.to_csv(out / "simulated_heldout_metrics.csv")
    print(
        f"\nheld-out doubles ({len(res.observed)} labels), mean over labels "
        "(control: pearson_delta undefined, it predicts no change):"
    )
    print(table.round(4).to_string())
    return table


def papalexi(path: Path, out: Path, *, n_factors: int, seed: int, progress: bool) -> pd.DataFrame:
    """Real Papalexi screen: 80/20 cells per label; score per-label means of held-out cells."""
    import anndata as ad

    adata = ad.read_h5ad(path)
    res = holdout_cells(
        adata,
        perturbation_key="target",
        fits={"pertspectra": {"n_factors": n_factors}},
        fraction=0.2,
        seed=seed,
        progress=progress,
        normalize="log1p",
        min_cells=30,
    )
    model = res.models["pertspectra"]
    print(
        f"\nPapalexi 2021 (real, THP-1 ECCITE-seq): {adata.n_obs} cells x {adata.n_vars} genes, "
        f"{res.train.n_obs - 1} knockouts + control; 80/20 cell split per label"
    )
    print(
        f"fit: {model.training['epochs']} epochs, {res.seconds['pertspectra']:.1f} s "
        f"({model.training['stop_reason']})"
    )
    labels = list(res.observed.index)
    strong = [s for s in ("IFNGR1", "IFNGR2", "JAK2", "STAT1", "IRF1", "SMAD4") if s in labels]
    table = res.table(COLUMNS)
    table_strong = pd.DataFrame(
        {name: df.loc[strong, COLUMNS].mean() for name, df in res.metrics.items()}
    ).T
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
    name = "screens/papalexi2021_thp1_eccite_299genes.h5ad"
    data = shared_data_dir(required=name)
    path = data / name if data else None
    if args.skip_real or path is None:
        print("\n(shared real data not found: skipping the Papalexi screen)")
    else:
        papalexi(
            path, args.out, n_factors=args.factors, seed=args.seed, progress=not args.no_progress
        )
    print(f"\noutputs in {args.out}/ ; total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
