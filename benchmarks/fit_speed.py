"""Time per training epoch: group statistics + blocked graph term vs a per-cell implementation.

Three ways of computing the same PertSpectra objective and taking one AdamW step (forward +
backward + step) on a synthetic screen (``benchmarks/_common.py``):

``ours``
    ``pertspectra.model.pertspectra_loss`` over per-label group statistics ``S`` (labels x genes)
    and ``w``, with the blocked graph term and the prior as a ``GraphPrior``.
``percell-authors``
    The per-cell formula written here as the authors' code computes it: the dense cell matrix
    ``X`` (cells x genes) and the per-cell design ``H`` live on the host and are copied to the
    device every epoch (their ``X.to(device)``); every cell is reconstructed,
    ``mu = (nu + delta) * (H_cells @ P) @ W``, the loss is
    ``sum_i eta_i sum_j (mu_ij - X_ij log mu_ij)`` with ``eta_i = 1/|C_i|`` plus the naive dense
    graph term ``graph_nll_dense`` with the dense adjacency. On the CPU the "copy" is a
    ``clone()`` of ``X`` and ``H`` each epoch (``.to("cpu")`` would be a no-op), so that the
    memory traffic of the copy is still paid.
``percell-resident``
    The same, with ``X`` and ``H`` copied to the device once.

Each case runs in a fresh subprocess. Reported: median wall ms/epoch over the timed epochs after
warm-up (CUDA synchronized), median process CPU ms/epoch (all threads; robust to other load on
the machine), and peak memory: on CPU the resident high-water mark (``VmHWM``) during the timed
loop (reset through ``/proc/self/clear_refs``, else sampled) and of the whole child process; on
CUDA ``torch.cuda.max_memory_allocated`` during the loop. The loss at the initial parameters
(same seed, same parameters in every case) is compared between ``ours`` and the per-cell cases:
that is what makes the comparison fair.

This path imports only numpy, scipy, torch and ``pertspectra.model`` (no anndata).

Usage::

    python benchmarks/fit_speed.py --quick                 # small size only, < 1 min on 2 cores
    python benchmarks/fit_speed.py                         # small + Norman size on CPU
    python benchmarks/fit_speed.py --device cuda           # both sizes on a GPU
    python benchmarks/fit_speed.py --device cuda --matmul-precision high --cases ours   # TF32
    python benchmarks/fit_speed.py --sizes norman --threads 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SIZES, PeakRSS, hwm_bytes, loadavg, make_screen, synthetic_prior

CASES = ("ours", "percell-authors", "percell-resident")
MIB = 2**20


def _epochs(size: str, case: str, device: str) -> tuple[int, int]:
    """(warm-up, timed) epochs per case: few for the per-cell case at Norman size on the CPU."""
    if device == "cuda":
        return (3, 20)
    if size == "norman":
        return (1, 3) if case != "ours" else (2, 10)
    return (2, 10) if case != "ours" else (3, 20)


def _worker(cfg: dict) -> dict:
    import torch

    from pertspectra.model import ModelConfig, PertSpectraModule, pertspectra_loss
    from pertspectra.model._graph import GraphPrior, graph_nll_dense, tile_precision

    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    dev = torch.device(cfg["device"])
    dt = torch.float64 if cfg["dtype"] == "float64" else torch.float32
    size = SIZES[cfg["size"]]
    case = cfg["case"]
    t_setup = time.perf_counter()
    screen = make_screen(size["n_cells"], size["n_genes"], size["n_single"], size["n_double"])
    A = synthetic_prior(size["n_genes"], size["n_edges"])
    config = ModelConfig(n_factors=size["n_factors"])
    module = PertSpectraModule(
        screen.design.shape[1],
        screen.n_genes,
        config,
        generator=torch.Generator().manual_seed(0),
        dtype=dt,
    ).to(dev)
    prior = GraphPrior.from_scipy(A, dtype=dt, device=dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    if case == "ours":
        S, w = screen.group_stats()
        h = torch.as_tensor(screen.design, dtype=dt, device=dev)
        s_t = torch.as_tensor(S, dtype=dt, device=dev)
        w_t = torch.as_tensor(w, dtype=dt, device=dev)

        def loss_fn() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            with tile_precision(cfg.get("matmul_precision")):  # fit's matmul_precision
                t = pertspectra_loss(module, h, weighted_sum=s_t, weight=w_t, prior=prior)
            return t.total, t.recon, t.graph

    else:
        n, g = screen.n_cells, screen.n_genes
        X_host = torch.empty((n, g), dtype=dt)
        for c0, codes, x in screen.chunks():
            X_host[c0 : c0 + codes.size] = torch.from_numpy(x)
        H_host = torch.as_tensor(screen.design[screen.codes], dtype=dt)
        eta = torch.as_tensor(1.0 / screen.counts[screen.codes], dtype=dt, device=dev)
        A_dense = prior.to_dense()  # the authors keep the dense adjacency on the device
        resident = case == "percell-resident"
        if resident:
            X_res, H_res = X_host.to(dev), H_host.to(dev)

        def loss_fn() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            if resident:
                X, H = X_res, H_res
            elif dev.type == "cpu":
                X, H = X_host.clone(), H_host.clone()  # stands in for the host->device copy
            else:
                X, H = X_host.to(dev), H_host.to(dev)
            mu = (module.gene_scale + config.delta) * ((H @ module.P) @ module.W)
            recon = (eta[:, None] * (mu - X * torch.log(mu))).sum()
            graph = graph_nll_dense(module.W, module.B, module.kappa, rho=config.rho, prior=A_dense)
            return config.lam * recon + graph, recon, graph

    setup_s = time.perf_counter() - t_setup
    opt = torch.optim.AdamW(module.parameters(), lr=0.01, weight_decay=config.weight_decay)
    first: list[float] = []

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        total, recon, graph = loss_fn()
        total.backward()
        opt.step()
        value = float(total.detach())
        if not first:
            first.extend([value, float(recon.detach()), float(graph.detach())])
        return value

    warm, timed = cfg["warmup"], cfg["epochs"]
    for _ in range(warm):
        step()
    sync()
    wall, cpu = [], []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with PeakRSS() as rss:
        for _ in range(timed):
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            sync()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    out = {
        **cfg,
        "ms": 1e3 * float(np.median(wall)),
        "ms_min": 1e3 * float(np.min(wall)),
        "cpu_ms": 1e3 * float(np.median(cpu)),
        "loss0": first,
        "setup_s": setup_s,
        "threads_used": torch.get_num_threads(),
        "rss_loop_peak_mib": rss.peak / MIB,
        "rss_loop_start_mib": rss.start / MIB,
        "rss_hwm_mib": (hwm_bytes() or 0) / MIB,
        "rss_reset": rss.kernel,
        "n_labels": len(screen.labels),
        "n_design": int(screen.design.shape[1]),
        "n_edges": int(prior.n_edges),
        "torch": torch.__version__,
    }
    if dev.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(dev) / MIB
        out["gpu"] = torch.cuda.get_device_name(dev)
    return out


def _run(cfg: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--_worker", json.dumps(cfg)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {**cfg, "error": (proc.stderr or proc.stdout)[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt_mem(r: dict) -> str:
    if "cuda_peak_mib" in r:
        return f"{r['cuda_peak_mib']:9.0f} (GPU)"
    return f"{r['rss_loop_peak_mib']:7.0f} / {r['rss_hwm_mib']:7.0f}"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small size only (< 1 min on 2 cores)")
    ap.add_argument("--sizes", default=None, help="comma list of: " + ", ".join(SIZES))
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument(
        "--threads", type=int, default=0, help="torch.set_num_threads (0: torch default)"
    )
    ap.add_argument(
        "--matmul-precision",
        default=None,
        choices=("highest", "high", "medium"),
        help="the fit's matmul_precision for `ours` (GPU: 'high' allows TF32; CPU with AMX: "
        "'medium', bfloat16); default: torch's setting",
    )
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--epochs", type=int, default=0, help="timed epochs (0: per-case default)")
    ap.add_argument("--json", default=None, help="also write the raw results here")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker:
        print(json.dumps(_worker(json.loads(args._worker))))
        return

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            ap.error("--device cuda: no CUDA device visible to torch")
    sizes = (
        ["small"] if args.quick else (args.sizes.split(",") if args.sizes else ["small", "norman"])
    )
    cases = args.cases.split(",")
    import torch

    threads = args.threads or torch.get_num_threads()
    print(
        f"# fit_speed: device={args.device} dtype={args.dtype} matmul_precision={args.matmul_precision} torch={torch.__version__} "
        f"threads={threads} cores={os.cpu_count()} load(1/5/15 min) at start={loadavg()}"
    )
    results = []
    t_all = time.perf_counter()
    for size in sizes:
        for case in cases:
            warm, timed = _epochs(size, case, args.device)
            cfg = {
                "size": size,
                "case": case,
                "device": args.device,
                "dtype": args.dtype,
                "threads": args.threads,
                "matmul_precision": args.matmul_precision,
                "warmup": warm,
                "epochs": args.epochs or timed,
            }
            load0 = loadavg()
            r = _run(cfg)
            r["load_before"], r["load_after"] = load0, loadavg()
            results.append(r)
            if "error" in r:
                print(f"  {size:6s} {case:17s} FAILED:\n{r['error']}", flush=True)
            else:
                print(
                    f"  {size:6s} {case:17s} {r['ms']:10.1f} ms/epoch (cpu {r['cpu_ms']:.0f} ms, "
                    f"{r['warmup']}+{r['epochs']} epochs, load {r['load_before']} -> {r['load_after']})",
                    flush=True,
                )

    mem_head = "peak GPU MiB" if args.device == "cuda" else "peak RSS MiB loop/process"
    print()
    print(
        f"| size | cells x genes | labels | L | edges | case | ms/epoch | cpu ms/epoch | epochs (warm+timed) | {mem_head} |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            continue
        s = SIZES[r["size"]]
        print(
            f"| {r['size']} | {s['n_cells']:,} x {s['n_genes']:,} | {r['n_labels']} | {s['n_factors']} | "
            f"{r['n_edges']:,} | {r['case']} | {r['ms']:.1f} | {r['cpu_ms']:.1f} | "
            f"{r['warmup']}+{r['epochs']} | {_fmt_mem(r)} |"
        )
    print()
    print(
        "| size | per-cell way | ms/epoch ratio (per-cell / ours) | cpu-time ratio | memory ratio | rel. diff of initial loss (total / recon / graph) |"
    )
    print("|---|---|---|---|---|---|")
    for size in sizes:
        by = {r["case"]: r for r in results if r["size"] == size and "error" not in r}
        ours = by.get("ours")
        if ours is None:
            continue
        for case in ("percell-authors", "percell-resident"):
            r = by.get(case)
            if r is None:
                continue
            key = "cuda_peak_mib" if "cuda_peak_mib" in r else "rss_loop_peak_mib"
            rel = [
                abs(a - b) / max(abs(b), 1e-300)
                for a, b in zip(ours["loss0"], r["loss0"], strict=True)
            ]
            print(
                f"| {size} | {case} | {r['ms'] / ours['ms']:.1f}x | {r['cpu_ms'] / ours['cpu_ms']:.1f}x | "
                f"{r[key] / ours[key]:.1f}x | {rel[0]:.1e} / {rel[1]:.1e} / {rel[2]:.1e} |"
            )
    print()
    print(
        f"# threads={threads}; load at end={loadavg()}; total {time.perf_counter() - t_all:.0f} s. "
        "ms: wall clock median; cpu ms: process CPU time (all threads) median; "
        "peak RSS 'loop' = high-water mark during the timed epochs (includes the data held), "
        "'process' = whole child incl. setup. On CPU the authors' per-epoch X.to(device) copy is "
        "mimicked by X.clone()."
    )
    for r in results:
        if "loss0" in r:
            print(
                f"# initial loss {r['size']}/{r['case']}: total {r['loss0'][0]:.10g} recon {r['loss0'][1]:.10g} graph {r['loss0'][2]:.10g}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
