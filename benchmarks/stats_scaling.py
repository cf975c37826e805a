"""Scaling of the statistics pass (linear in cells) and of the fit (flat in cells, ~g^2 in genes).

For each size a synthetic CSR ``.h5ad`` (integer counts, 5% non-zero, 200 labels) is written
chunk by chunk, ``compute_group_stats(read_h5ad(path, backed="r"), normalize="log1p")`` is
timed, and ``fit`` runs a few epochs on the resulting group statistics: its time per epoch must
not depend on the number of cells.

Usage::

    python benchmarks/stats_scaling.py --quick   # < 1 min on 2 cores
    python benchmarks/stats_scaling.py           # cells 10k -> 2M at 2,000 genes; genes 1k -> 10k
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from outofcore import KEY, evict, expected_bytes, write_synthetic_h5ad


def _stats_and_fit(path: Path, n_factors: int, epochs: int) -> tuple[float, float, int]:
    import anndata as ad

    from pertspectra.stats import compute_group_stats
    from pertspectra.train import fit

    evict(path)
    adata = ad.read_h5ad(path, backed="r")
    t0 = time.perf_counter()
    stats = compute_group_stats(
        adata, perturbation_key=KEY, normalize="log1p", min_cells=1, progress=False
    )
    t_stats = time.perf_counter() - t0
    adata.file.close()
    model = fit(stats, n_factors=n_factors, max_epochs=epochs, progress=False, device="cpu")
    return t_stats, float(model.training["seconds_per_epoch"]), int(stats.n_obs)


def main() -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes (< 1 min)")
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--factors", type=int, default=None, help="L (default 20 quick, 200 full)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--dir", type=str, default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        cells, genes_cells, genes, cells_genes, L = (
            [10_000, 50_000, 200_000],
            1000,
            [1000, 2000, 4000],
            20_000,
            20,
        )
    else:
        cells, genes_cells = [10_000, 100_000, 500_000, 2_000_000], 2000
        genes, cells_genes, L = [1000, 2000, 5000, 10_000], 100_000, 200
    L = args.factors or L
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="pertspectra_scaling_"))
    workdir.mkdir(parents=True, exist_ok=True)
    need = max(
        expected_bytes(max(cells), genes_cells, 0.05), expected_bytes(cells_genes, max(genes), 0.05)
    )
    if shutil.disk_usage(workdir).free < 1.5 * need + (1 << 30):
        print(
            f"Not enough free disk space in {workdir} (need about {need / 1e9:.1f} GB); use --dir."
        )
        return
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{os.cpu_count()} CPUs (load {load:.1f}), torch threads {torch.get_num_threads()}; "
        f"{args.labels} labels, 5% non-zero counts, normalize='log1p', L={L}, {args.epochs} epochs"
    )
    try:
        print(f"\nstatistics pass vs cells ({genes_cells} genes, backed .h5ad)")
        print(f"{'cells':>10} {'stats s':>8} {'s/M cells':>9} {'labels':>6} {'fit s/epoch':>11}")
        for n in cells:
            path = workdir / f"cells_{n}.h5ad"
            write_synthetic_h5ad(path, n, n_genes=genes_cells, n_labels=args.labels)
            t_stats, t_epoch, n_groups = _stats_and_fit(path, L, args.epochs)
            print(
                f"{n:>10,} {t_stats:>8.2f} {t_stats / n * 1e6:>9.1f} {n_groups:>6} {t_epoch:>11.3f}",
                flush=True,
            )
            path.unlink()
        print(f"\nvs genes ({cells_genes:,} cells)")
        print(f"{'genes':>10} {'stats s':>8} {'s/M cells':>9} {'labels':>6} {'fit s/epoch':>11}")
        for g in genes:
            path = workdir / f"genes_{g}.h5ad"
            write_synthetic_h5ad(path, cells_genes, n_genes=g, n_labels=args.labels)
            t_stats, t_epoch, n_groups = _stats_and_fit(path, L, args.epochs)
            print(
                f"{g:>10,} {t_stats:>8.2f} {t_stats / cells_genes * 1e6:>9.1f} {n_groups:>6} {t_epoch:>11.3f}",
                flush=True,
            )
            path.unlink()
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
