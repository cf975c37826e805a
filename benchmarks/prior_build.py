"""Benchmark: building the STRING prior graph (time and peak memory).

Cases (each runs in a fresh subprocess; peak RSS is that process's ``ru_maxrss``):

- ``shared``: 5,000 real symbols from the shared STRING table -> ``add_prior`` (target < 5 s);
- ``synthetic``: a file in STRING's ``protein.links.detailed`` format with 13M lines
  (1M with ``--quick``) plus a ``protein.info`` file, 5,000 wanted genes, default threshold
  (target < 60 s and < 500 MB peak RSS);
- ``synthetic-channels``: the same file with ``channels="experiments,database"``.

Usage::

    python benchmarks/prior_build.py [--quick] [--lines N] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pertspectra.testing import shared_data_dir

SHARED = shared_data_dir() or Path("../shared/data")
STRING_TABLE = SHARED / "knowledge" / "string_v12_human_physical_functional.tsv.gz"
N_GENES = 5000
N_PROTEINS = 19_600
DETAILED = (
    "neighborhood",
    "fusion",
    "cooccurence",
    "coexpression",
    "experimental",
    "database",
    "textmining",
)


def write_synthetic(folder: Path, n_lines: int, *, seed: int = 0) -> tuple[Path, Path]:
    """Write ``9606.protein.links.detailed.v12.0.txt.gz`` and the matching info file."""
    import pandas as pd

    from pertspectra.priors import combined_score

    rng = np.random.default_rng(seed)
    ids = np.array([f"9606.ENSP{i:011d}" for i in range(N_PROTEINS)])
    info = folder / "9606.protein.info.v12.0.txt.gz"
    with gzip.open(info, "wt", compresslevel=1) as fh:
        fh.write("#string_protein_id\tpreferred_name\tprotein_size\tannotation\n")
        # 3% of genes have two proteins (as STRING's isoforms): several ids per symbol
        for i, pid in enumerate(ids):
            fh.write(
                f"{pid}\tGENE{i % (N_PROTEINS - 600):05d}\t{300 + i % 500}\tsynthetic protein {i}\n"
            )
    links = folder / "9606.protein.links.detailed.v12.0.txt.gz"
    chunk = 1_000_000
    with gzip.open(links, "wt", compresslevel=1) as fh:
        fh.write(" ".join(["protein1", "protein2", *DETAILED, "combined_score"]) + "\n")
        for start in range(0, n_lines, chunk):
            n = min(chunk, n_lines - start)
            a = rng.integers(0, N_PROTEINS, n)
            b = (a + rng.integers(1, N_PROTEINS, n)) % N_PROTEINS
            cols = {}
            for c, p in zip(DETAILED, (0.05, 0.01, 0.05, 0.6, 0.4, 0.05, 0.7), strict=True):
                cols[c] = np.where(rng.random(n) < p, rng.integers(42, 1000, n), 0)
            cols["combined_score"] = np.maximum(combined_score(cols), 150).astype(np.int64)
            df = pd.DataFrame({"protein1": ids[a], "protein2": ids[b], **cols})
            df.to_csv(fh, sep=" ", header=False, index=False)
    return links, info


def _rss_mb() -> float:
    """Peak RSS of this process in MB (VmHWM; ru_maxrss survives exec on Linux)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(case: str, path: str, genes_file: str, channels: str | None) -> None:
    """Run one case in this (fresh) process and print a JSON line."""
    import anndata as ad
    import scipy.sparse as sp

    import pertspectra.priors as pp

    genes = Path(genes_file).read_text().split()
    adata = ad.AnnData(X=sp.csr_matrix((1, len(genes)), dtype=np.float32))
    adata.var_names = genes
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    report = pp.add_prior(adata, path, channels=channels)
    sec = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "case": case,
                "seconds": sec,
                "peak_rss_mb": _rss_mb(),
                "rss_after_imports_mb": rss0,
                "edges": report.n_edges,
                "genes_with_edges": report.n_genes_with_edges,
            }
        )
    )


def _run(case: str, path: Path, genes_file: Path, channels: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", case, str(path), str(genes_file), channels or ""]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="1M synthetic lines instead of 13M")
    ap.add_argument("--lines", type=int, default=None, help="synthetic line count")
    ap.add_argument("--tmp", type=Path, default=None, help="folder for the synthetic files")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        case, path, genes_file, channels = args.worker
        worker(case, path, genes_file, channels or None)
        return

    n_lines = args.lines or (1_000_000 if args.quick else 13_000_000)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmpdir:
        tmp = Path(tmpdir)
        if STRING_TABLE.is_file():
            import pandas as pd

            table = pd.read_csv(STRING_TABLE, sep="\t", usecols=["symbol_a", "symbol_b"])
            symbols = np.unique(table.to_numpy().ravel().astype(str))
            genes = np.random.default_rng(0).choice(symbols, N_GENES, replace=False)
            (tmp / "shared_genes.txt").write_text("\n".join(genes))
            rows.append(_run("shared STRING table", STRING_TABLE, tmp / "shared_genes.txt"))
        else:
            print(f"shared data not found at {SHARED}: skipping the shared-table case")

        need = n_lines * 40 + 50_000_000  # ~25 bytes/line gzipped at level 1, with margin
        free = shutil.disk_usage(tmp).free
        if free < need:
            print(
                f"only {free / 1e9:.1f} GB free in {tmp}, need ~{need / 1e9:.1f} GB: skipping synthetic"
            )
        else:
            t0 = time.perf_counter()
            links, _ = write_synthetic(tmp, n_lines)
            gen = time.perf_counter() - t0
            print(
                f"generated {n_lines:,} lines ({links.stat().st_size / 1e6:.0f} MB gzipped) in {gen:.0f} s"
            )
            genes = [
                f"GENE{i:05d}"
                for i in np.random.default_rng(1).choice(N_PROTEINS - 600, N_GENES, replace=False)
            ]
            (tmp / "syn_genes.txt").write_text("\n".join(genes))
            label = f"synthetic detailed {n_lines / 1e6:g}M lines"
            rows.append(_run(label, links, tmp / "syn_genes.txt"))
            rows.append(
                _run(label + ", channels", links, tmp / "syn_genes.txt", "experiments,database")
            )

    head = f"{'case':<44} {'seconds':>8} {'peak RSS MB':>12} {'RSS imports':>12} {'edges':>9} {'genes':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['case']:<44} {r['seconds']:>8.2f} {r['peak_rss_mb']:>12.0f} "
            f"{r['rss_after_imports_mb']:>12.0f} {r['edges']:>9} {r['genes_with_edges']:>6}"
        )


if __name__ == "__main__":
    main()
