"""End-to-end demo: ``python -m pertspectra.demo --out demo_output`` (what ``make demo`` runs).

Runs the whole analysis (``pertspectra run``: prior, fit, evaluation against baselines,
programs, similarity, report) on

1. a simulated combinatorial screen with known programs (always; the true programs are the
   gene sets and perturbations sharing effects are the known pairs);
2. when the shared real data are present (``../shared/data`` or ``$PERTSPECTRA_SHARED_DATA``):
   the Papalexi et al. 2021 ECCITE-seq screen (cells; held-out cells per label) and the
   Wessels et al. 2023 CaRPool-seq double screen (pseudobulk means; held-out doubles, with
   the half-split ceiling), each with the STRING prior, GO biological-process gene sets and
   known gene-pair files.

Each screen gets a folder with its stage outputs and a self-contained ``report.html``; the
paths and the verdicts are printed. The factor counts and epoch caps below are chosen for the
demo's time budget (about 7 minutes on 2 CPU cores), not for the best fit: the reports say
when a fit stopped at its cap. Numbers are printed as they are, including where a baseline
wins.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import pertspectra as ps
from pertspectra.testing import shared_data_dir

PAPALEXI = "screens/papalexi2021_thp1_eccite_299genes.h5ad"
WESSELS = "combinatorial/wessels2023_carpool_substrate.h5ad"
STRING = "knowledge/string_v12_human_physical_functional.tsv.gz"
GO_BP = "knowledge/go_bp_human_2022-07.gmt.gz"


def simulated_inputs(
    folder: Path, *, seed: int, min_correlation: float = 0.5, **simulate: Any
) -> dict[str, Path]:
    """Write a simulated screen (raw counts), its true programs (GMT) and known pairs.

    Known pairs are the singles whose true program effects correlate above
    ``min_correlation``; ``simulate`` goes to :func:`pertspectra.datasets.simulate_screen`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    adata = ps.datasets.simulate_screen(seed=seed, **simulate)
    adata.X = adata.layers.pop("counts")
    data = folder / "simulated_screen.h5ad"
    ps.io.write_h5ad(adata, data, overwrite=True)
    programs = np.asarray(adata.uns["simulation"]["programs"])
    genes = np.asarray(adata.var_names)
    gmt = folder / "simulated_programs.gmt"
    gmt.write_text(
        "".join(
            f"PROGRAM_{k}\tsimulated program {k}\t" + "\t".join(genes[programs[k] > 0]) + "\n"
            for k in range(programs.shape[0])
        )
    )
    effects = adata.uns["simulation"]["effects"]
    singles = [s for s in effects.index if "+" not in str(s) and s != "ctrl"]
    rows = [
        (a, b)
        for i, a in enumerate(singles)
        for b in singles[i + 1 :]
        if np.corrcoef(effects.loc[a], effects.loc[b])[0, 1] > min_correlation
    ]
    pairs = folder / "simulated_pairs.csv"
    pd.DataFrame(rows, columns=["entity1", "entity2"]).to_csv(pairs, index=False)
    return {"data": data, "gmt": gmt, "pairs": pairs}


def run(args: list[str]) -> None:
    """``pertspectra run ARGS`` in this process (raises on failure)."""
    from pertspectra.cli import app

    app(["run", *args], standalone_mode=False)


def verdict(folder: Path) -> None:
    """Print a results folder's verdict and warnings (as the report opens)."""
    res = ps.report.collect(folder)
    lines = []
    if res.scorecard is not None:
        lines += ps.report.scorecard_verdict(res.scorecard)
    if res.similarity is not None:
        lines += ps.report.similarity_verdict(res.similarity)[:2]
    lines += [f"WARNING: {w}" for w in ps.report.warnings_of(res)]
    for line in lines:
        print(f"  - {line}")


def main(argv: list[str] | None = None) -> None:
    """Run the demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_output"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--skip-real", action="store_true", help="Only the simulated screen.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # noqa: TID251 - demo script configures logging
    args.out.mkdir(parents=True, exist_ok=True)
    common = ["--seed", str(args.seed)] + (["--no-progress"] if args.no_progress else [])
    t0 = time.perf_counter()
    done: list[tuple[str, Path, float]] = []

    sim = simulated_inputs(args.out / "inputs", seed=args.seed)
    folder = args.out / "simulated"
    t = time.perf_counter()
    print("== simulated screen (10 programs, 30 singles, 60 doubles)")
    run([
        str(sim["data"]), "--out", str(folder), "--perturbation-key", "perturbation",
        "--normalize", "log1p", "--gene-sets", str(sim["gmt"]), "--pairs", str(sim["pairs"]),
        "--n-factors", "20", "--folds", "2", "--permutations", "200",
        *common,
    ])  # fmt: skip
    done.append(("simulated", folder, time.perf_counter() - t))

    data = shared_data_dir(required=PAPALEXI)
    if args.skip_real or data is None:
        print("\n(shared real data not found or --skip-real: only the simulated screen)")
    else:
        pairs = [
            x
            for name in ("Reactome", "SIGNOR", "StringDB")
            for x in ("--pairs", str(data / "benchmark_pairs" / f"{name}.txt"))
        ]
        knowledge = ["--string", str(data / STRING), "--gene-sets", str(data / GO_BP)]
        folder = args.out / "papalexi"
        t = time.perf_counter()
        print("\n== Papalexi 2021 (real, THP-1 ECCITE-seq, 25 knockouts; held-out cells)")
        run([
            str(data / PAPALEXI), "--out", str(folder), "--perturbation-key", "target",
            "--normalize", "log1p", "--min-cells", "30", *knowledge, *pairs,
            "--folds", "2", *common,
        ])  # fmt: skip
        done.append(("papalexi", folder, time.perf_counter() - t))
        if (data / WESSELS).is_file():
            pairs = [
                x
                for name in ("CORUM", "HuMAP", "StringDB")
                for x in ("--pairs", str(data / "benchmark_pairs" / f"{name}.txt"))
            ]
            folder = args.out / "wessels"
            t = time.perf_counter()
            print(
                "\n== Wessels 2023 (real, CaRPool-seq double screen, pseudobulk; held-out doubles)"
            )
            run([
                str(data / WESSELS), "--out", str(folder), "--perturbation-key", "label",
                "--pseudobulk", "--control", "NT_NT", "--ceiling-layers",
                "half1_mean,half2_mean", *knowledge, *pairs, "--folds", "2", *common,
            ])  # fmt: skip
            done.append(("wessels", folder, time.perf_counter() - t))

    print("\n== reports")
    for name, folder, seconds in done:
        print(f"{name}: {folder / ps.report.REPORT} ({seconds:.0f} s)")
        verdict(folder)
    print(f"\noutputs in {args.out}/ ; total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
