"""Stopping rules compared: the default relative rule vs the paper's plateau rule.

For each problem, fits with ``stopping="relative"`` (default tol/patience) and
``stopping="paper"`` (the authors' counter, up to 10,000 epochs) from the same seed and prints
epochs, seconds, final objective and held-out prediction quality:

- simulated screen (``pertspectra.datasets.simulate_screen``, 20% of doubles held out);
- the real Papalexi screen (80/20 cells per label; needs ``../shared/data``).

Usage: ``python benchmarks/stopping.py [--quick] [--factors 200 50]``.
"""

from __future__ import annotations

import argparse

import pandas as pd

import pertspectra as ps
from pertspectra.evaluate import holdout_cells, holdout_combinations
from pertspectra.testing import shared_data_dir

PAPALEXI = "screens/papalexi2021_thp1_eccite_299genes.h5ad"


def _run(name: str, n_factors: int, stopping: str, seed: int, quick: bool) -> dict:
    fits = {stopping: {"n_factors": n_factors, "stopping": stopping}}
    if name == "simulated":
        kw = {"n_genes": 300, "n_single": 12, "n_double": 20} if quick else {}
        adata = ps.datasets.simulate_screen(seed=seed, **kw)
        stats = ps.stats.compute_group_stats(adata, perturbation_key="perturbation", progress=False)
        res = holdout_combinations(stats, fits=fits, fraction=0.2, seed=seed, progress=False)
    else:
        import anndata as ad

        adata = ad.read_h5ad(shared_data_dir(required=PAPALEXI) / PAPALEXI)
        res = holdout_cells(
            adata,
            perturbation_key="target",
            fits=fits,
            seed=seed,
            progress=False,
            normalize="log1p",
            min_cells=30,
        )
    model = res.models[stopping]
    met = res.metrics[stopping].mean()
    return {
        "problem": name,
        "factors": n_factors,
        "stopping": stopping,
        "epochs": model.training["epochs"],
        "seconds": round(res.seconds[stopping], 1),
        "final_loss": round(model.training["final_loss"], 2),
        "pearson_delta": round(met["pearson_delta"], 4),
        "mse": round(met["mse"], 5),
    }


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--factors", type=int, nargs="+", default=[200, 50])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    problems = ["simulated"]
    if not args.quick and shared_data_dir(required=PAPALEXI) is not None:
        problems.append("papalexi")
    rows = []
    for name in problems:
        for n_factors in args.factors if not args.quick else [20]:
            for stopping in ("relative", "paper"):
                rows.append(_run(name, n_factors, stopping, args.seed, args.quick))
                print(
                    pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1),
                    flush=True,
                )
    table = pd.DataFrame(rows)
    print("\n" + table.to_string(index=False))


if __name__ == "__main__":
    main()
