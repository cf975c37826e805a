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
import time

import pandas as pd

import pertspectra as ps
from pertspectra.demo import shared_data_dir
from pertspectra.evaluate import prediction_metrics, split_combinations


def _simulated(seed: int, quick: bool):
    kw = {"n_genes": 300, "n_single": 12, "n_double": 20} if quick else {}
    adata = ps.datasets.simulate_screen(rng=seed, **kw)
    stats = ps.stats.compute_group_stats(adata, perturbation_key="perturbation", progress=False)
    train, test = split_combinations(list(stats.obs_names), fraction=0.2, rng=seed)
    return stats[train].copy(), stats[test].to_df(), stats["ctrl"].to_df().iloc[0]


def _papalexi(seed: int):
    import anndata as ad
    import numpy as np

    data = shared_data_dir()
    if data is None:
        return None
    adata = ad.read_h5ad(data / "screens" / "papalexi2021_thp1_eccite_299genes.h5ad")
    gen = np.random.default_rng(seed)
    test = np.zeros(adata.n_obs, dtype=bool)
    for idx in adata.obs.groupby("target", observed=True).indices.values():
        test[gen.choice(idx, size=round(0.2 * len(idx)), replace=False)] = True
    kw = {"perturbation_key": "target", "normalize": "log1p", "progress": False}
    train = ps.stats.compute_group_stats(adata[~test], min_cells=30, **kw)
    held = ps.stats.compute_group_stats(adata[test], min_cells=1, **kw)
    labels = [lab for lab in held.obs_names if lab != "ctrl" and lab in train.obs_names]
    return train, held[labels].to_df(), held["ctrl"].to_df().iloc[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--factors", type=int, nargs="+", default=[200, 50])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    problems = {"simulated": _simulated(args.seed, args.quick)}
    if not args.quick:
        pap = _papalexi(args.seed)
        if pap is not None:
            problems["papalexi"] = pap
    rows = []
    for name, (train, observed, ctrl) in problems.items():
        for n_factors in args.factors if not args.quick else [20]:
            for stopping in ("relative", "paper"):
                t0 = time.perf_counter()
                model = ps.train.fit(
                    train, n_factors=n_factors, stopping=stopping, rng=args.seed, progress=False
                )
                met = prediction_metrics(model.predict(observed.index), observed, ctrl).mean()
                rows.append(
                    {
                        "problem": name,
                        "factors": n_factors,
                        "stopping": stopping,
                        "epochs": model.training["epochs"],
                        "seconds": round(time.perf_counter() - t0, 1),
                        "final_loss": round(model.training["final_loss"], 2),
                        "pearson_delta": round(met["pearson_delta"], 4),
                        "mse": round(met["mse"], 5),
                    }
                )
                print(
                    pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1),
                    flush=True,
                )
    table = pd.DataFrame(rows)
    print("\n" + table.to_string(index=False))


if __name__ == "__main__":
    main()
