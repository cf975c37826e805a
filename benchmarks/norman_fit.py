"""A Norman-size fit end to end on the CPU, with the library's defaults.

1. Writes a synthetic Norman-size screen (``benchmarks/_common.py``: 80,000 cells x 5,000 genes,
   log-normalized-looking values, ~15% non-zero, 240 labels = 105 singles + 134 doubles + ctrl)
   as a CSR ``.h5ad``, chunk by chunk (never the whole matrix in memory), with a synthetic
   symmetric prior of 200,000 undirected edges (weights in [0.7, 1]) in
   ``varp["pertspectra_prior"]``.
2. In a fresh subprocess (so that its peak RSS is the pipeline's own): opens the file backed,
   ``compute_group_stats`` (one streaming pass), ``pertspectra.train.fit(stats)`` with defaults
   (effects with the on-target term, ``n_factors`` by the rule: 200 at 5,000 genes, the cosine
   schedule with check cycles, ``dtype="float32"``, the prior taken from ``varp``), and ``model.save`` to a model folder.

Prints the time of each stage, epochs, s/epoch, total wall, peak RSS (``VmHWM`` of the child),
``torch.get_num_threads()`` and the load average before and after. Target (issue): < 10 min on a
2-core CPU.

Usage::

    python benchmarks/norman_fit.py --quick            # 10k cells x 1k genes, < 1 min
    python benchmarks/norman_fit.py                    # Norman size
    python benchmarks/norman_fit.py --max-epochs 200 --threads 1 --dir /scratch --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SIZES, hwm_bytes, loadavg, make_screen, synthetic_prior

KEY = "perturbation"
MIB = 2**20
SHARED_STRING = "string_v12_human_physical_functional.tsv.gz"


def string_prior(path: Path, n_genes: int, min_score: float = 0.7):
    """A prior with real structure: STRING among its ``n_genes`` best-connected genes.

    Returns ``(gene names, symmetric CSR adjacency with STRING weights)``. The synthetic screen's
    genes are renamed to these names; the data and the prior are unrelated, as with the random
    prior, but the graph has STRING's modular shape (complexes, pathways) instead of none.
    """
    import pandas as pd

    from pertspectra.priors import prior_matrix, read_string

    edges = read_string(path, min_score=min_score)
    degree = pd.concat([edges["source"], edges["target"]]).value_counts(sort=True)
    if len(degree) < n_genes:
        sys.exit(f"{path}: only {len(degree)} genes have an edge >= {min_score}; need {n_genes}")
    genes = sorted(degree.index[:n_genes])
    return genes, prior_matrix(edges, genes)


def write_screen(
    path: Path, size: dict, seed: int = 0, prior: str = "random", string: Path | None = None
) -> dict:
    """Write the synthetic screen as a CSR ``.h5ad`` chunk by chunk; return a summary."""
    import anndata as ad
    import h5py
    import pandas as pd
    import scipy.sparse as sp
    from anndata.io import sparse_dataset, write_elem

    screen = make_screen(
        size["n_cells"], size["n_genes"], size["n_single"], size["n_double"], seed=seed
    )
    genes, labels = screen.genes, screen.labels
    if prior == "string":
        genes, A = string_prior(string, size["n_genes"])
        A = A.astype(np.float32)
        rename = dict(zip(screen.genes, genes, strict=True))
        labels = ["+".join(rename.get(t, t) for t in lab.split("+")) for lab in labels]
    else:
        A = synthetic_prior(size["n_genes"], size["n_edges"]).astype(np.float32)
    obs = pd.DataFrame(
        {KEY: pd.Categorical.from_codes(screen.codes, categories=labels)},
        index=pd.Index([f"cell{i}" for i in range(screen.n_cells)]),
    )
    var = pd.DataFrame(index=pd.Index(genes))
    ad.AnnData(obs=obs, var=var, varp={"pertspectra_prior": A}).write_h5ad(path)
    nnz = 0
    with h5py.File(path, "a") as f:
        ds = None
        for _c0, _codes, x in screen.chunks():
            c = sp.csr_matrix(x)
            nnz += c.nnz
            if ds is None:
                c.indptr = c.indptr.astype(np.int64)
                write_elem(f, "X", c)
                ds = sparse_dataset(f["X"])
            else:
                ds.append(c)
    return {
        "n_cells": screen.n_cells,
        "n_genes": screen.n_genes,
        "n_labels": len(screen.labels),
        "n_design": int(screen.design.shape[1]),
        "density": nnz / (screen.n_cells * screen.n_genes),
        "n_edges": int(sp.triu(A, k=1).nnz),
        "file_mb": path.stat().st_size / 1e6,
    }


def _child(cfg: dict) -> dict:
    import anndata as ad
    import torch

    import pertspectra
    from pertspectra.stats import compute_group_stats
    from pertspectra.train import fit

    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    t0 = time.perf_counter()
    adata = ad.read_h5ad(cfg["path"], backed="r")
    stats = compute_group_stats(adata, perturbation_key=KEY, progress=cfg["progress"])
    t1 = time.perf_counter()
    kw = {} if cfg["max_epochs"] is None else {"max_epochs": cfg["max_epochs"]}
    kw.update(
        {
            k: cfg[k]
            for k in (
                "stopping",
                "tol",
                "converged_tol",
                "patience",
                "matmul_precision",
                "w_rate_scale",
                "init",
                "cycle_epochs",
            )
            if cfg.get(k) is not None
        }
    )
    model = fit(stats, device="cpu", progress=cfg["progress"], **kw)
    t2 = time.perf_counter()
    model.save(cfg["out"], overwrite=True)
    t3 = time.perf_counter()
    tr = model.training
    return {
        "stats_s": t1 - t0,
        "fit_s": t2 - t1,
        "save_s": t3 - t2,
        "total_s": t3 - t0,
        "epochs": tr["epochs"],
        "train_s": tr["seconds"],
        "s_per_epoch": tr["seconds_per_epoch"],
        "stop_reason": tr["stop_reason"],
        "converged": tr.get("converged"),
        "stopping": cfg.get("stopping") or "default",
        "tol": cfg.get("tol"),
        "converged_tol": cfg.get("converged_tol"),
        "patience": cfg.get("patience"),
        "lr_steps": tr["lr_steps"],
        "final_loss": tr["final_loss"],
        "final_recon": tr["final_recon"],
        "final_graph": tr["final_graph"],
        "prior": tr["prior"],
        "n_labels": tr["n_labels"],
        "dtype": tr["dtype"],
        "matmul_precision": cfg.get("matmul_precision") or "default",
        "w_rate_scale": tr.get("w_rate_scale", 1.0),
        "init": tr.get("init"),
        "start": tr.get("start"),
        "init_final_losses": tr.get("init_final_losses"),
        "deviance_explained": tr.get("deviance_explained"),
        "n_factors": int(model.W.shape[0]),
        "peak_rss_mib": (hwm_bytes() or 0) / MIB,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pertspectra": pertspectra.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="10k cells x 1k genes (L stays 200, the default)"
    )
    ap.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="cap on epochs (default: fit's default, 10,000)",
    )
    ap.add_argument(
        "--stopping", choices=["relative", "paper"], default=None, help="default: fit's default"
    )
    ap.add_argument(
        "--prior",
        choices=["random", "string"],
        default="random",
        help="random: uniform random edges (no structure); string: STRING among its best-connected "
        "genes (real structure; the table from --string)",
    )
    ap.add_argument(
        "--string",
        type=Path,
        default=None,
        help="STRING table for --prior string (default: knowledge/" + SHARED_STRING + " in the "
        "shared data folder, found as by the demo: PERTSPECTRA_SHARED_DATA or ../shared/data)",
    )
    ap.add_argument("--tol", type=float, default=None, help="default: fit's default")
    ap.add_argument(
        "--converged-tol",
        type=float,
        default=None,
        help="the check cycle's tolerance (fit's converged_tol; default: fit's default)",
    )
    ap.add_argument(
        "--matmul-precision",
        choices=["highest", "high", "medium"],
        default=None,
        help="the fit's matmul_precision (default: torch's setting, exact float32)",
    )
    ap.add_argument("--patience", type=int, default=None, help="default: fit's default")
    ap.add_argument(
        "--w-rate-scale", type=float, default=None, help="the fit's w_rate_scale (default: fit's)"
    )
    ap.add_argument(
        "--cycle-epochs",
        type=int,
        default=None,
        help="the fit's cycle_epochs (default: fit's, 1,000; 5,000 with --max-epochs 50000 is "
        "the 5x run that defines converged)",
    )
    ap.add_argument(
        "--init",
        choices=["auto", "random", "communities"],
        default=None,
        help="the fit's init (default: fit's, 'auto': with a prior 'communities')",
    )
    ap.add_argument(
        "--threads", type=int, default=0, help="torch.set_num_threads in the child (0: default)"
    )
    ap.add_argument(
        "--dir", default=None, help="where to write the .h5ad and the model (default: a temp dir)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the files")
    ap.add_argument("--progress", action="store_true", help="show progress bars")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.prior == "string" and args.string is None:
        from pertspectra.testing import shared_data_dir

        shared = shared_data_dir()
        if shared is None:
            sys.exit("--prior string: no shared data folder found; pass --string FILE")
        args.string = shared / "knowledge" / SHARED_STRING
    if args._child:
        print(json.dumps(_child(json.loads(args._child))))
        return

    size = SIZES["small" if args.quick else "norman"]
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="norman_fit_"))
    base.mkdir(parents=True, exist_ok=True)
    path, out = base / "screen.h5ad", base / "model"
    try:
        load0 = loadavg()
        t = time.perf_counter()
        info = write_screen(path, size, prior=args.prior, string=args.string)
        write_s = time.perf_counter() - t
        print(
            f"# wrote {path}: {info['n_cells']:,} cells x {info['n_genes']:,} genes, density {info['density']:.3f}, "
            f"{info['n_labels']} labels ({info['n_design']} design columns), {info['n_edges']:,} prior edges, "
            f"{info['file_mb']:.0f} MB in {write_s:.1f} s",
            flush=True,
        )
        cfg = {
            "path": str(path),
            "out": str(out),
            "threads": args.threads,
            "max_epochs": args.max_epochs,
            "stopping": args.stopping,
            "tol": args.tol,
            "converged_tol": args.converged_tol,
            "matmul_precision": args.matmul_precision,
            "patience": args.patience,
            "w_rate_scale": args.w_rate_scale,
            "init": args.init,
            "cycle_epochs": args.cycle_epochs,
            "progress": args.progress,
        }
        load1 = loadavg()
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--_child", json.dumps(cfg)],
            stdout=subprocess.PIPE,
            stderr=None if args.progress else subprocess.PIPE,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            sys.exit(f"child failed ({proc.returncode}):\n{(proc.stderr or '')[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        load2 = loadavg()
        r.update(
            info,
            write_s=write_s,
            child_wall_s=wall,
            load_start=load0,
            load_before_fit=load1,
            load_end=load2,
        )
        print()
        print(
            "| cells x genes | labels | L | prior edges | threads | load before -> after | stats pass s | fit s | epochs | s/epoch | save s | total s (stats+fit+save) | peak RSS MiB |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        print(
            f"| {r['n_cells']:,} x {r['n_genes']:,} | {r['n_labels']} | {r['n_factors']} | {r['n_edges']:,} | "
            f"{r['threads']} | {load1} -> {load2} | {r['stats_s']:.1f} | {r['fit_s']:.1f} | {r['epochs']} | "
            f"{r['s_per_epoch']:.3f} | {r['save_s']:.2f} | {r['total_s']:.1f} | {r['peak_rss_mib']:.0f} |"
        )
        print()
        print(
            f"# stopping {r['stopping']} (tol {r['tol'] or 'default'}, patience {r['patience'] or 'default'}): "
            f"{r['stop_reason']}; lr steps at epochs {r['lr_steps']}"
        )
        print(
            f"# final loss {r['final_loss']:.8g} (recon {r['final_recon']:.8g}, graph {r['final_graph']:.8g}); dtype {r['dtype']}, "
            f"matmul_precision {r['matmul_precision']}, w_rate_scale {r['w_rate_scale']:g}; "
            f"deviance explained {r['deviance_explained']}"
        )
        print(f"# prior: {r['prior']}")
        print(f"# init {r['init']}: start {r['start']}; the starts ended {r['init_final_losses']}")
        print(
            f"# torch {r['torch']}, threads {r['threads']}, {os.cpu_count()} cores; file write {write_s:.1f} s (not in total)"
        )
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"# kept {base}")


if __name__ == "__main__":
    main()
