"""Benchmark the graph likelihood: naive dense autograd vs the blocked exact implementation.

Times one forward + backward (through softmax/sigmoid parametrizations, as in training) of
``graph_nll_dense`` and ``graph_nll`` in float32 and float64, and the peak memory of each:
the peak resident-set growth on CPU (each configuration runs in a fresh subprocess; the kernel's
high-water mark is reset through ``/proc/self/clear_refs`` where allowed, else it is sampled) and
``torch.cuda.max_memory_allocated`` on CUDA.

Usage::

    python benchmarks/graph_term.py            # g=5000, L=200, ~200k edges
    python benchmarks/graph_term.py --quick    # < 1 min on 2 cores
    python benchmarks/graph_term.py --device cuda --block-sizes 2048,4096,8192
    python benchmarks/graph_term.py --dtypes float32 --no-dense --precisions highest,medium
    python benchmarks/graph_term.py --g 299 --L 29 --edges 40 --threads 1 --square-vs-tiles

``--square-vs-tiles`` adds, for a small ``g``, a row computed in upper-triangle tiles only,
against the default one square tile (``SQUARE_MAX_GENES`` in ``pertspectra.model._graph_kernel``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, synthetic_prior


def _worker(cfg: dict) -> dict:
    import torch

    from pertspectra.model import _graph_kernel
    from pertspectra.model._graph import GraphPrior, graph_nll, graph_nll_dense, tile_precision

    if cfg.get("tiles_only"):  # the baseline of the square tile: upper-triangle tiles only
        _graph_kernel.SQUARE_MAX_GENES = 0
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    dev = torch.device(cfg["device"])
    dtype = getattr(torch, cfg["dtype"])
    g, L = cfg["g"], cfg["L"]
    A = synthetic_prior(g, cfg["edges"], seed=0)
    prior = GraphPrior.from_scipy(A, dtype=dtype, device=dev)
    gen = torch.Generator().manual_seed(0)
    w_free = (torch.randn((L, g), generator=gen, dtype=torch.float64) * 0.5).to(dev, dtype)
    b_free = torch.randn((L, L), generator=gen, dtype=torch.float64).to(dev, dtype)
    k_free = torch.tensor(-2.0, dtype=dtype, device=dev)
    for t in (w_free, b_free, k_free):
        t.requires_grad_()
    a_dense = prior.to_dense() if cfg["impl"] == "dense" else None

    def step() -> float:
        W = torch.softmax(w_free, 0)
        b = torch.sigmoid(b_free)
        B = 0.5 * (b + b.T)
        kappa = torch.sigmoid(k_free)
        if cfg["impl"] == "dense":
            loss = graph_nll_dense(W, B, kappa, rho=cfg["rho"], prior=a_dense)
        else:
            with tile_precision(cfg.get("precision")):  # the training steps' matmul_precision
                loss = graph_nll(W, B, kappa, rho=cfg["rho"], prior=prior, block_size=cfg["block"])
        loss.backward()
        for t in (w_free, b_free, k_free):
            t.grad = None
        return float(loss.detach())

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        value = step()
        sync()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        with PeakRSS() as mon:
            value = step()
        peak = mon.peak - mon.start
    times, cpu = [], []
    for _ in range(cfg["repeats"]):
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "ms_min": 1e3 * min(times),
        "ms_median": 1e3 * float(np.median(times)),
        "cpu_ms": 1e3 * min(cpu),
        "peak_mib": peak / 2**20,
        "value": value,
        "threads": torch.get_num_threads(),
    }


def _run(cfg: dict) -> dict:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, __file__, "--_worker", json.dumps(cfg)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small problem, < 1 min")
    ap.add_argument("--g", type=int, default=None, help="genes (default 5000; quick 2000)")
    ap.add_argument("--L", type=int, default=None, help="factors (default 200; quick 100)")
    ap.add_argument("--edges", type=int, default=None, help="undirected prior edges")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--block-sizes", default="", help="comma list; default: automatic")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--no-dense", action="store_true", help="skip the naive baseline")
    ap.add_argument(
        "--precisions",
        default="",
        help="comma list of matmul_precision values for the blocked rows (float32; the first "
        "is the baseline of the 'vs first' ratio); default: torch's setting",
    )
    ap.add_argument(
        "--square-vs-tiles",
        action="store_true",
        help="also time each blocked row in upper-triangle tiles only (the square tile's baseline)",
    )
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker is not None:
        print(json.dumps(_worker(json.loads(args._worker))))
        return

    g = args.g or (2000 if args.quick else 5000)
    L = args.L or (100 if args.quick else 200)
    edges = args.edges if args.edges is not None else (30_000 if args.quick else 200_000)
    repeats = args.repeats or (3 if args.quick else 5)
    blocks = [int(b) for b in args.block_sizes.split(",") if b] or [None]
    base = {"g": g, "L": L, "edges": edges, "device": args.device, "rho": 0.05}
    base |= {"threads": args.threads}
    print(f"graph term, g={g}, L={L}, {edges} undirected edges, device={args.device}, ")
    print(f"forward+backward through softmax/sigmoid; min (median) of {repeats} after a warm-up")
    print("ms: wall clock; cpu ms: process CPU time summed over threads (robust to other load)")
    header = (
        f"{'dtype':8} {'impl':22} {'ms':>9} {'(median)':>10} {'cpu ms':>9} {'speedup':>8} "
        f"{'peak MiB':>9} {'rel. value diff':>16}"
    )
    print(header)
    print("-" * len(header))
    for dtype in args.dtypes.split(","):
        ref = None
        if not args.no_dense:
            ref = _run(
                base
                | {"impl": "dense", "dtype": dtype, "block": None, "repeats": max(2, repeats // 2)}
            )
            if "error" in ref:
                print(f"{dtype:8} {'dense autograd':22} failed: {ref['error']}")
                ref = None
            else:
                print(
                    f"{dtype:8} {'dense autograd':22} {ref['ms_min']:9.2f} {ref['ms_median']:10.2f} "
                    f"{ref['cpu_ms']:9.1f} {1.0:8.2f} {ref['peak_mib']:9.1f} {'':>16}"
                )
        precisions = [p for p in args.precisions.split(",") if p] or [None]
        first = None
        variants = [False, True] if args.square_vs_tiles else [False]
        for block, precision, tiles in itertools.product(blocks, precisions, variants):
            res = _run(
                base
                | {"impl": "blocked", "dtype": dtype, "block": block, "repeats": repeats}
                | {"precision": precision, "tiles_only": tiles}
            )
            name = f"blocked b={block or 'auto'}" + (f" {precision}" if precision else "")
            name += " tiles" if tiles else ""
            if "error" in res:
                print(f"{dtype:8} {name:22} failed: {res['error']}")
                continue
            speed = f"{ref['ms_min'] / res['ms_min']:8.2f}" if ref else f"{'':>8}"
            diff = f"{abs(res['value'] - ref['value']) / abs(ref['value']):16.2e}" if ref else ""
            first = first or res
            ratio = (
                f"  vs first {first['ms_min'] / res['ms_min']:.2f}x" if precision or tiles else ""
            )
            if (precision or tiles) and not ref:
                gap = abs(res["value"] - first["value"]) / abs(first["value"])
                ratio += f", value vs first {gap:.1e}"
            print(
                f"{dtype:8} {name:22} {res['ms_min']:9.2f} {res['ms_median']:10.2f} "
                f"{res['cpu_ms']:9.1f} {speed} "
                f"{res['peak_mib']:9.1f} {diff}{ratio}"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
