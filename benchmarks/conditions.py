"""Screens under several conditions, on the real ones: fit time, convergence, and biology.

Datlinger (stimulated / unstimulated Jurkat cells, TCR-pathway knockouts): a knockout of a
TCR-signalling gene (LCK, ZAP70, LAT) should undo part of the stimulation, so its change in
stimulated cells correlates with the reversal of stimulation, ``-(stimulated control -
unstimulated control)``; NFKB1, further down, much less. Printed for the observed changes
(training means) and the model's predicted changes, each condition fitted together with shared
programs. mcfaline23 (three glioma lines): fit time and convergence.

    .venv/bin/python benchmarks/conditions.py [--only datlinger|mcfaline23] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DATLINGER = DATA / "screens" / "datlinger2017_jurkat_cropseq_2000genes_scperturbR.h5ad"
PERTURBENCH = DATA / "combinatorial" / "perturbench_devel.h5ad"
TCR = ("LCK", "ZAP70", "LAT", "NFKB1")


def _reversal_table(observed, predicted) -> list[tuple[str, float, float]]:
    """Correlation of each knockout's change in stimulated cells with the observed reversal."""
    reversal = -(observed.loc[("stimulated", "ctrl")] - observed.loc[("unstimulated", "ctrl")])
    rows = []
    for what in (observed, predicted):
        stim = what.loc["stimulated"]
        rows.append(
            {g: float(np.corrcoef(stim.loc[g] - stim.loc["ctrl"], reversal)[0, 1]) for g in TCR}
        )
    return [(g, rows[0][g], rows[1][g]) for g in TCR]


def datlinger(seed: int) -> None:
    """Fit Datlinger with both conditions; print the reversal correlations."""
    import anndata as ad
    import pandas as pd

    import pertspectra as ps

    adata = ad.read_h5ad(DATLINGER)
    t0 = time.perf_counter()
    stats = ps.stats.compute_group_stats(
        adata, perturbation_key="perturbation", condition_key="condition", normalize="log1p",
        progress=False,
    )  # fmt: skip
    t1 = time.perf_counter()
    model = ps.train.fit_conditions(stats, seed=seed, progress=False)
    t2 = time.perf_counter()
    observed = pd.DataFrame(
        np.asarray(stats.X),
        index=pd.MultiIndex.from_arrays([stats.obs["condition"], stats.obs["label"]]),
        columns=stats.var_names,
    )
    predicted = model.predict(["ctrl", *TCR])
    t = model.training
    print(
        f"Datlinger: {adata.n_obs} cells x {adata.n_vars} genes, conditions {model.conditions}; "
        f"{model.W.shape[0]} shared + {model.condition_factors} own programs; statistics "
        f"{t1 - t0:.1f} s, fit {t2 - t1:.1f} s ({t['epochs']} epochs, converged {t['converged']})"
    )
    print("knockout  observed  predicted   (correlation with -(stimulated - unstimulated control))")
    for g, obs, pred in _reversal_table(observed, predicted):
        print(f"{g:8s}  {obs:8.3f}  {pred:9.3f}")


def mcfaline23(seed: int) -> None:
    """Fit mcfaline23 with three cell lines; print time and convergence."""
    import anndata as ad

    import pertspectra as ps

    adata = ad.read_h5ad(PERTURBENCH)
    adata = adata[adata.obs["dataset"] == "mcfaline23"].copy()
    t0 = time.perf_counter()
    model = ps.train.fit_conditions(
        adata, perturbation_key="condition", condition_key="cell_type", seed=seed, progress=False
    )
    t = model.training
    print(
        f"mcfaline23: {adata.n_obs} cells x {adata.n_vars} genes, conditions {model.conditions}; "
        f"{model.W.shape[0]} shared + {model.condition_factors} own programs; fit "
        f"{time.perf_counter() - t0:.1f} s ({t['epochs']} epochs, converged {t['converged']})"
    )
    for c in model.conditions:
        print(f"  {c}: {len(model.condition_labels[c])} labels")


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["datlinger", "mcfaline23"], default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.only in (None, "datlinger"):
        datlinger(args.seed)
    if args.only in (None, "mcfaline23"):
        mcfaline23(args.seed)


if __name__ == "__main__":
    main()
