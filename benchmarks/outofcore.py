"""Out-of-core group statistics: a backed sparse ``.h5ad`` streamed chunk by chunk.

Writes a synthetic CSR ``.h5ad`` (N cells x 5,000 genes, 5% non-zero integer counts, 2,000
labels) chunk by chunk, so that writing never holds the matrix in memory, then runs
``compute_group_stats(read_h5ad(path, backed="r"), normalize="log1p")`` in a fresh subprocess and
reports its wall time and peak resident memory (the child's own ``ru_maxrss``, one child per size),
next to the time to read the file's raw bytes. The file is evicted from the page cache
(``posix_fadvise(DONTNEED)``) before each timed read, so both numbers are cold reads where the
kernel honours the hint.

Usage::

    python benchmarks/outofcore.py --quick      # 20k and 50k cells, < 1 min on 2 cores
    python benchmarks/outofcore.py              # 100k, 250k, 1M cells (~2 GB file at 1M)
    python benchmarks/outofcore.py --cells 1000000 --dir /scratch
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

KEY = "perturbation"


def expected_bytes(n_cells: int, n_genes: int, density: float) -> int:
    """Approximate file size: float32 data + int32 indices per non-zero, plus int64 indptr."""
    return int(n_cells * n_genes * density * 8 + n_cells * 8 + 1e6)


def write_synthetic_h5ad(
    path: str | Path,
    n_cells: int,
    *,
    n_genes: int = 5000,
    density: float = 0.05,
    n_labels: int = 2000,
    chunk: int = 20_000,
    seed: int = 0,
) -> Path:
    """Write a random CSR screen to ``path`` chunk by chunk (memory O(chunk x genes x density)).

    Labels are ``"ctrl"`` and ``"G1"`` ... ``"G{n_labels - 1}"``, drawn uniformly per cell;
    values are integer counts (float32) >= 1 at the non-zero positions.
    """
    import anndata as ad
    import h5py
    import pandas as pd
    import scipy.sparse as sp
    from anndata.io import sparse_dataset, write_elem

    path = Path(path)
    rng = np.random.default_rng(seed)
    names = np.array(["ctrl", *(f"G{i}" for i in range(1, n_labels))], dtype=object)
    codes = rng.integers(0, n_labels, n_cells)
    obs = pd.DataFrame(
        {KEY: pd.Categorical.from_codes(codes, categories=names)},
        index=pd.RangeIndex(n_cells).astype(str),
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)])
    ad.AnnData(obs=obs, var=var).write_h5ad(path)
    del obs, codes
    with h5py.File(path, "a") as f:
        ds = None
        for start in range(0, n_cells, chunk):
            rows = min(chunk, n_cells - start)
            c = _random_csr(rng, rows, n_genes, density)
            if ds is None:
                c.indptr = c.indptr.astype(np.int64)
                write_elem(f, "X", c)
                ds = sparse_dataset(f["X"])
            else:
                ds.append(sp.csr_matrix(c))
        f.flush()
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
    return path


def _random_csr(rng: np.random.Generator, rows: int, genes: int, density: float):
    """CSR with each entry non-zero with probability ``density`` (geometric gaps, sorted)."""
    import scipy.sparse as sp

    total = rows * genes
    n_draw = int(total * density * 1.1 + 100)
    pos = np.cumsum(rng.geometric(density, n_draw)) - 1
    while pos[-1] < total:  # rare: draw more gaps
        more = np.cumsum(rng.geometric(density, n_draw)) + pos[-1]
        pos = np.concatenate([pos, more])
    pos = pos[pos < total]
    r = pos // genes
    indices = (pos - r * genes).astype(np.int32)
    indptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=rows), out=indptr[1:])
    data = rng.geometric(0.2, pos.size).astype(np.float32)  # max > 30: looks like counts
    return sp.csr_matrix((data, indices, indptr), shape=(rows, genes))


def evict(path: str | Path) -> None:
    """Ask the kernel to drop the file from the page cache (best effort)."""
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def raw_read_seconds(path: str | Path, block: int = 16 << 20) -> float:
    """Seconds to read the file's bytes once (after eviction from the page cache)."""
    evict(path)
    buf = bytearray(block)
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        while fh.readinto(buf):
            pass
    return time.perf_counter() - t0


def run_child(args: list[str]) -> tuple[dict, int]:
    """Run this script as a child; return its JSON result and its peak RSS in bytes."""
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{err[-3000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    return res, int(res["maxrss_bytes"])


def _child_stats(path: str, chunk_size: int) -> None:
    import resource
    import warnings

    warnings.simplefilter("ignore")
    import anndata as ad

    from pertspectra.stats import compute_group_stats

    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    adata = ad.read_h5ad(path, backed="r")
    stats = compute_group_stats(
        adata,
        perturbation_key=KEY,
        normalize="log1p",
        min_cells=1,
        chunk_size=chunk_size,
        progress=False,
    )
    sec = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": sec,
                "n_groups": int(stats.n_obs),
                "n_cells": int(stats.obs["n_cells"].sum()),
                "rss_after_import_bytes": rss_import,
                "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            }
        )
    )


def main() -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="20k and 50k cells (< 1 min)")
    ap.add_argument("--cells", type=str, default=None, help="comma-separated cell counts")
    ap.add_argument("--genes", type=int, default=5000)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--labels", type=int, default=2000)
    ap.add_argument("--chunk-size", type=int, default=10_000, help="cells per chunk of the pass")
    ap.add_argument(
        "--dir", type=str, default=None, help="where to write the files (default: a temp dir)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the written files")
    ap.add_argument("--_child", type=str, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        _child_stats(args._child, args.chunk_size)
        return

    if args.cells:
        cells = [int(c) for c in args.cells.split(",")]
    else:
        cells = [20_000, 50_000] if args.quick else [100_000, 250_000, 1_000_000]
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="pertspectra_outofcore_"))
    workdir.mkdir(parents=True, exist_ok=True)
    need = expected_bytes(max(cells), args.genes, args.density)
    free = shutil.disk_usage(workdir).free
    if free < 1.5 * need + (1 << 30):
        print(
            f"Not enough free disk space in {workdir}: the largest file needs about "
            f"{need / 1e9:.1f} GB and {free / 1e9:.1f} GB are free (want 1.5x + 1 GB). "
            "Pass --dir elsewhere or fewer --cells."
        )
        return

    print(
        f"synthetic CSR .h5ad: {args.genes} genes, {args.density:.0%} non-zero, {args.labels} labels; "
        f"normalize='log1p', chunk_size={args.chunk_size}; {os.cpu_count()} CPUs; dir {workdir}"
    )
    header = (
        f"{'cells':>9} {'file GB':>8} {'write s':>8} {'raw read s':>10} {'read MB/s':>9} "
        f"{'stats s':>8} {'s/M cells':>9} {'raw s/M':>8} {'peak RSS MB':>11} {'RSS import MB':>13}"
    )
    print(header)
    rows = []
    try:
        for n in cells:
            path = workdir / f"synthetic_{n}.h5ad"
            t0 = time.perf_counter()
            write_synthetic_h5ad(
                path, n, n_genes=args.genes, density=args.density, n_labels=args.labels
            )
            t_write = time.perf_counter() - t0
            size = path.stat().st_size
            t_raw = raw_read_seconds(path)
            evict(path)
            res, rss = run_child(["--_child", str(path), "--chunk-size", str(args.chunk_size)])
            row = {
                "cells": n,
                "file_gb": size / 1e9,
                "write_s": t_write,
                "raw_read_s": t_raw,
                "stats_s": res["seconds"],
                "peak_rss_mb": rss / 2**20,
                "rss_import_mb": res["rss_after_import_bytes"] / 2**20,
            }
            rows.append(row)
            print(
                f"{n:>9,} {size / 1e9:>8.2f} {t_write:>8.1f} {t_raw:>10.2f} {size / 1e6 / t_raw:>9.0f} "
                f"{res['seconds']:>8.1f} {res['seconds'] / n * 1e6:>9.1f} {t_raw / n * 1e6:>8.2f} "
                f"{row['peak_rss_mb']:>11.0f} {row['rss_import_mb']:>13.0f}",
                flush=True,
            )
            if not args.keep:
                path.unlink()
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        ratio = (b["stats_s"] / b["cells"]) / (a["stats_s"] / a["cells"])
        print(f"time per cell, largest vs smallest: x{ratio:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
