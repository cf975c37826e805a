"""Does "converged" mean converged, and do seeds agree? The default fit on the real screens.

For each screen (group statistics of all cells, the default fit: effects with the on-target
term, factors by the rule, cosine schedule with check cycles), fits ``--seeds`` seeds and one
run five times longer (``cycle_epochs`` x 5, same seed 0), and prints per screen:

- epochs, seconds and whether each seed's fit says it converged;
- the spread of the seeds' final objective, relative to the lowest (target: <= 0.5%);
- the gap between seed 0's objective and the 5x longer run's (target: <= 0.1% when converged);
- the same two in units of the reconstruction's deviance range (``lam`` times the null minus the
  saturated reconstruction; ``training["convergence"]["deviance"]``), which, unlike the
  objective, has no arbitrary offset, and the range of the seeds' deviance explained;
- how far the seeds' fits agree (``ps.evaluate.seed_agreement``): the lowest Pearson
  correlation of two seeds' predicted changes, the median matched correlation of their
  programs, and how many programs of the best fit come back (median matched r >= 0.9);
- for CRISPRi screens, every measured promoter target's own change against control,
  predicted vs observed (training means): how many have the observed sign and lie within
  0.05 log units, over all seeds.

Optionally ``--schedule stepped`` measures the earlier default the same way; ``--prior`` attaches
the shared STRING graph (``ps.priors.add_prior``, the paper's setting) and adds the range of the
objective and of its graph part and the spread of the reconstruction; ``--n-init`` keeps the best
of that many starts per seed; ``--init random`` measures the authors' random start where the
default starts at the labels' means.

Usage: ``python benchmarks/convergence.py [--seeds 5] [--only Gasperini ...] [--threads 2]
[--prior] [--n-init 5] [--init random]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import pertspectra as ps
from pertspectra.testing import shared_data_dir

SCREENS = {
    "Gasperini": (
        "screens/gasperini2019_k562_highmoi_crispri_366genes_sceptre.h5ad",
        {"perturbation_key": "perturbation", "normalize": "log1p",
         "exclude_labels": ["none_detected"]},
        True,
    ),
    "Schraivogel": (
        "screens/schraivogel2020_k562_tapseq_crispri_74genes.h5ad",
        {"perturbation_key": "perturbation", "normalize": "log1p",
         "exclude_labels": ["none_detected"]},
        True,
    ),
    "Papalexi": (
        "screens/papalexi2021_thp1_eccite_299genes.h5ad",
        {"perturbation_key": "perturbation", "normalize": "log1p"},
        False,
    ),
    "Wessels": (
        "combinatorial/wessels2023_carpool_substrate.h5ad",
        {"perturbation_key": "label", "controls": ["NT_NT"]},
        False,
    ),
}  # fmt: skip


#: The shared STRING table ``--prior`` attaches (relative to ``../shared/data``).
STRING_TABLE = "knowledge/string_v12_human_physical_functional.tsv.gz"


def _stats(path, kw: dict):
    import anndata as ad

    adata = ps.io.read_screen(path) if "screens/" in str(path) else ad.read_h5ad(path)
    if "wessels" in str(path):
        return ps.stats.from_pseudobulk(adata, **kw)
    return ps.stats.compute_group_stats(adata, progress=False, **kw)


def _targets(model, stats) -> tuple[int, int]:
    """(targets with the observed sign within 0.05, targets) for measured promoter targets."""
    genes = {g: i for i, g in enumerate(stats.var_names)}
    ctrl_obs = stats["ctrl"].X[0]
    pred = model.predict(["ctrl", *[lab for lab in stats.obs_names if lab in genes]])
    ok = n = 0
    for lab in pred.index[1:]:
        i = genes[lab]
        obs = float(stats[lab].X[0, i] - ctrl_obs[i])
        got = float(pred.loc[lab].iloc[i] - pred.loc["ctrl"].iloc[i])
        n += 1
        ok += int(np.sign(obs) == np.sign(got) and abs(obs - got) <= 0.05)
    return ok, n


def main() -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "stepped"])
    ap.add_argument("--no-long", action="store_true", help="skip the 5x longer run")
    ap.add_argument("--prior", action="store_true", help="attach the shared STRING prior")
    ap.add_argument("--n-init", type=int, default=1, help="starts per seed (the best is kept)")
    ap.add_argument(
        "--learning-rates",
        type=float,
        nargs=2,
        default=None,
        metavar=("FIRST", "LAST"),
        help="the cosine's first and last rate (default: fit's, 0.1 and 1e-4 for effects)",
    )
    ap.add_argument(
        "--w-rate-scale", type=float, default=1.0, help="W's learning rate as a multiple (fit's)"
    )
    ap.add_argument(
        "--init",
        default="auto",
        choices=["auto", "random", "means", "communities"],
        help="the start (fit's)",
    )
    ap.add_argument(
        "--delta", type=float, default=None, help="the gene scaling's floor (fit's default)"
    )
    args = ap.parse_args()
    data = shared_data_dir(required="screens")
    if data is None:
        raise SystemExit("needs ../shared/data")
    rows = []
    for name, (rel, kw, crispri) in SCREENS.items():
        if args.only and name not in args.only:
            continue
        stats = _stats(data / rel, kw)
        if args.prior:
            ps.priors.add_prior(stats, data / STRING_TABLE)
        opts = {"threads": args.threads, "progress": False, "schedule": args.schedule}
        opts |= {"n_init": args.n_init, "w_rate_scale": args.w_rate_scale, "init": args.init}
        if args.delta is not None:
            opts["delta"] = args.delta
        if args.learning_rates:
            opts["learning_rates"] = tuple(args.learning_rates)
        losses, conv, epochs, secs, ok, n = [], [], [], [], 0, 0
        recon, graph, explained, models = [], [], [], []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model = ps.train.fit(stats, seed=seed, **opts)
            secs.append(time.perf_counter() - t0)
            models.append(model)
            t = model.training
            losses.append(t["final_loss"])
            recon.append(t["final_recon"])
            graph.append(t["final_graph"])
            conv.append(bool(t["converged"]))
            explained.append(100 * t["deviance_explained"])
            epochs.append(t["epochs"])
            if crispri:
                a, b = _targets(model, stats)
                ok, n = ok + a, n + b
        dev = models[0].training["convergence"]["deviance"]  # the same statistics for all seeds
        span = models[0].config.lam * (dev["null_recon"] - dev["saturated_recon"])
        gap = gap_dev = np.nan
        if not args.no_long:
            cycle = 5 * ps.train.TrainConfig().cycle_epochs
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                long = ps.train.fit(
                    stats, seed=0, cycle_epochs=cycle, max_epochs=10 * cycle, **opts
                )
            gap = (losses[0] - long.training["final_loss"]) / abs(long.training["final_loss"])
            gap_dev = (losses[0] - long.training["final_loss"]) / span
        lo = min(losses, key=abs)
        agree = ps.evaluate.seed_agreement(models).summary if len(models) > 1 else {}
        row = {
            "screen": name,
            "labels x genes": f"{stats.n_obs} x {stats.n_vars}",
            "factors": model.config.n_factors,
            "epochs": f"{min(epochs)}-{max(epochs)}",
            "s/fit": round(float(np.median(secs)), 1),
            "converged": f"{sum(conv)}/{len(conv)}",
            "seed spread": f"{(max(losses) - min(losses)) / abs(lo):.2e}",
            "gap to 5x run": f"{gap:.2e}",
            "spread / deviance": f"{agree.get('objective_spread_deviance', np.nan):.2e}",
            "gap / deviance": f"{gap_dev:.2e}",
            "deviance explained %": f"{min(explained):.2f}-{max(explained):.2f}",
            "changes r (min)": f"{agree.get('change_pearson_min', np.nan):.3f}",
            "program r (median)": f"{agree.get('factor_r_median', np.nan):.2f}",
            "programs reproduced": f"{agree.get('reproduced_factors', '')}/{model.config.n_factors}",
            "targets ok": f"{ok}/{n}" if crispri else "",
        }
        if args.prior:
            row["objective"] = f"{min(losses):.2f} to {max(losses):.2f}"
            row["recon spread"] = f"{(max(recon) - min(recon)) / abs(min(recon, key=abs)):.2e}"
            row["graph"] = f"{min(graph):.1f} to {max(graph):.1f}"
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1), flush=True)
    print("\n" + pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
