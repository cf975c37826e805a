"""What a perfect prediction would score against the half-split ceiling (correlation metrics).

The scorecard's ``ceiling`` correlates the changes of two random halves of a held-out label's
cells. A prediction carries no sampling noise and is scored against the mean of *all* held-out
cells, so for a half-split correlation ``r`` a perfect prediction scores about
``sqrt(2r / (1 + r))`` (Spearman-Brown to the full mean, then one noisy side). This prints, for
each double of the Norman cells in ``perturbench_devel.h5ad`` whose singles were measured (the
doubles the combination protocol holds out), ``r`` and that bound, as ``pearson_delta`` measures
them (changes against the control mean).

Usage: ``python benchmarks/ceiling.py [--seed 1]``.
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    import anndata as ad
    import scipy.sparse as sp

    from pertspectra.testing import shared_data_dir

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    shared = shared_data_dir(required="combinatorial/perturbench_devel.h5ad")
    if shared is None:
        raise SystemExit(
            "the shared data folder with combinatorial/perturbench_devel.h5ad is needed"
        )
    a = ad.read_h5ad(shared / "combinatorial" / "perturbench_devel.h5ad")
    a = a[a.obs["dataset"] == "norman19"]
    x = a.X.toarray() if sp.issparse(a.X) else np.asarray(a.X)
    labels = a.obs["condition"].astype(str).to_numpy()
    ctrl = x[labels == "control"].mean(0)
    rng = np.random.default_rng(args.seed)
    singles = {lab for lab in labels if "+" not in lab}
    print("| double | cells | half-split r | perfect prediction sqrt(2r/(1+r)) |")
    print("|---|---|---|---|")
    bounds = []
    for double in sorted({lab for lab in labels if "+" in lab}):
        if not set(double.split("+")) <= singles:
            continue
        idx = rng.permutation(np.flatnonzero(labels == double))
        half1, half2 = idx[: len(idx) // 2], idx[len(idx) // 2 :]
        r = float(np.corrcoef(x[half1].mean(0) - ctrl, x[half2].mean(0) - ctrl)[0, 1])
        bound = float(np.sqrt(2 * r / (1 + r))) if r > 0 else float("nan")
        bounds.append((r, bound))
        print(f"| {double} | {len(idx)} | {r:.3f} | {bound:.3f} |")
    r_mean, b_mean = np.nanmean(np.array(bounds), axis=0)
    print(f"| mean | | {r_mean:.3f} | {b_mean:.3f} |")


if __name__ == "__main__":
    main()
