r"""Forecast the memory and time of a fit before running it (``pertspectra fit --dry-run``).

Once the cells are reduced to group statistics, the fit's cost depends only on the number of
labels :math:`n`, genes :math:`g`, design columns :math:`p`, factors :math:`L` and prior edges
:math:`E`, never on the number of cells.

Memory (device, in the fit's dtype): parameters :math:`pL + Lg + L^2 + g + 1`, as many
gradients, twice as many AdamW moments, the group statistics on the device (:math:`S`, :math:`w`
and the design rows), the reconstruction's autograd activations (about four :math:`n \times g`
and three :math:`L \times g` tensors), the blocked graph term's buffers (:math:`W^\top`,
:math:`-aBW` and the gradient accumulator :math:`V`, each :math:`g \times L` padded to a
multiple of 8, two tiles of ``block x min(g, col_block)`` or, for a small ``g``, of ``g x g``,
the stored gradients) and the edges (indices and weights, twice: the prior and its tile plan).
The host also keeps the float64 statistics table (``X`` and three layers).

Time per epoch is *measured*: a few real epochs (loss, backward, AdamW step) of
:func:`~pertspectra.model.pertspectra_loss` run on random data of the actual size on the
requested device. When that would take too long, the epoch is timed on a smaller gene count and
scaled by the multiply-add count, about :math:`1.5\,g^2 L` for the graph term (symmetric tiles,
value and gradients in one pass) plus :math:`3\,n g L` for the reconstruction.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from anndata import AnnData

    from .._types import DeviceLike, Encoding
    from ..model._config import ModelConfig
    from ._config import TrainConfig

logger = logging.getLogger(__name__)

__all__ = ["forecast", "forecast_fit"]


def _itemsize(dtype: str) -> int:
    if dtype not in ("float32", "float64"):
        msg = f"dtype must be 'float32' or 'float64', got {dtype!r}"
        raise ValueError(msg)
    return 4 if dtype == "float32" else 8


def _multiply_adds(
    n_labels: int, n_genes: int, n_design: int, n_factors: int, graph: bool
) -> float:
    """Multiply-adds of one epoch (forward + backward)."""
    recon = 3.0 * n_labels * n_genes * n_factors + 3.0 * n_labels * n_design * n_factors
    graph_term = 1.5 * float(n_genes) ** 2 * n_factors if graph else 0.0
    return recon + graph_term


def memory_breakdown(
    *,
    n_labels: int,
    n_genes: int,
    n_design: int,
    n_factors: int,
    n_edges: int = 0,
    device: str = "cpu",
    dtype: str = "float32",
    graph: bool = True,
) -> dict[str, int]:
    """Device bytes of a fit by part (see the module docstring); ``"total"`` sums them."""
    import torch

    from ..model._graph import _default_col_block, _round_up, default_block_size
    from ..model._graph_kernel import uses_square

    b = _itemsize(dtype)
    n, g, p, L, E = int(n_labels), int(n_genes), int(n_design), int(n_factors), int(n_edges)
    n_params = p * L + L * g + L * L + g + 1
    out = {
        "parameters": n_params * b,
        "gradients": n_params * b,
        "optimizer": 2 * n_params * b,
        "group_stats": (n * g + n + n * p) * b,
        "activations": (4 * n * g + 3 * L * g + 2 * n * L) * b,
        "graph_buffers": 0,
        "edges": 0,
    }
    if graph:
        dev = torch.device(device)
        block = default_block_size(g, L, dev)
        col_block = max(block, _default_col_block(block, dev))
        height, width = min(block, g), min(col_block, g)
        if uses_square(g, block, col_block):  # one g x g tile
            height = width = g
        K = _round_up(L, 8)
        out["graph_buffers"] = (3 * g * K + 2 * height * width + 3 * L * g + 3 * L * L) * b
        out["edges"] = E * (8 + 8 + b) + E * (8 + b)
    out["total"] = int(sum(out.values()))
    return out


def _random_problem(
    n_labels: int,
    n_genes: int,
    n_design: int,
    n_factors: int,
    n_edges: int,
    device: Any,
    tdtype: Any,
) -> tuple[Any, ...]:
    import torch

    from ..model._config import ModelConfig
    from ..model._graph import GraphPrior
    from ..model._module import PertSpectraModule

    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    module = PertSpectraModule(
        n_design, n_genes, ModelConfig(n_factors=n_factors), generator=gen, dtype=tdtype
    )
    module = module.to(device)
    design = np.zeros((n_labels, n_design))
    design[np.arange(n_labels), rng.integers(0, max(1, n_design - 1), n_labels)] = 1.0
    design[:, -1] = 1.0  # basal
    h = torch.as_tensor(design, dtype=tdtype, device=device)
    s = torch.as_tensor(rng.gamma(1.0, 0.5, (n_labels, n_genes)), dtype=tdtype, device=device)
    w = torch.ones(n_labels, dtype=tdtype, device=device)
    prior = None
    if n_edges > 0 and n_genes > 1:
        j = rng.integers(0, n_genes, 2 * n_edges)
        k = rng.integers(0, n_genes, 2 * n_edges)
        lo, hi = np.minimum(j, k), np.maximum(j, k)
        flat = np.unique((lo * n_genes + hi)[lo < hi])[:n_edges]
        rows, cols = flat // n_genes, flat % n_genes
        prior = GraphPrior(
            torch.as_tensor(rows),
            torch.as_tensor(cols),
            torch.as_tensor(rng.uniform(0.15, 1.0, rows.size)),
            n_genes,
        ).to(device=device, dtype=tdtype)
    return module, h, s, w, prior


def time_epochs(
    *,
    n_labels: int,
    n_genes: int,
    n_design: int,
    n_factors: int,
    n_edges: int = 0,
    device: str = "cpu",
    dtype: str = "float32",
    graph: bool = True,
    epochs: int = 3,
    matmul_precision: str | None = None,
) -> float:
    """Median seconds of ``epochs`` real epochs (after one warm-up) on random data of this size."""
    import torch

    from .._utils import resolve_device
    from ..model._graph import tile_precision
    from ..model._loss import pertspectra_loss
    from ._optim import adamw

    dev = resolve_device(device)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    module, h, s, w, prior = _random_problem(
        n_labels, n_genes, n_design, n_factors, n_edges, dev, tdtype
    )
    if not graph:
        from dataclasses import replace

        module.config = replace(module.config, graph=False)
    opt = adamw(module.parameters(), lr=0.1, weight_decay=0.001)
    times = []
    for i in range(epochs + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with tile_precision(matmul_precision):
            loss = pertspectra_loss(module, h, weighted_sum=s, weight=w, prior=prior).total
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i:  # the first epoch warms up allocators and kernels
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def forecast_fit(
    *,
    n_labels: int,
    n_genes: int,
    n_design: int,
    n_factors: int,
    n_edges: int = 0,
    device: str = "cpu",
    dtype: str = "float32",
    graph: bool = True,
    measure_budget_s: float = 10.0,
    epochs: int = 3,
    matmul_precision: str | None = None,
) -> dict[str, Any]:
    """Estimate the memory and the time per epoch of a fit from its sizes.

    Parameters
    ----------
    n_labels, n_genes, n_design, n_factors
        Groups (labels) after filtering, genes, design columns and factors ``L``.
    n_edges
        Undirected edges of the prior graph.
    device, dtype
        Where and in which precision the fit would run (``"auto"`` resolves like ``fit``).
    graph
        Whether the graph term is on (``fit(graph=...)``).
    measure_budget_s
        Time allowed for measuring at the full size; beyond it (judged from a small
        calibration run) the epoch is timed at a smaller gene count and scaled.
    epochs
        Timed epochs (after one warm-up).
    matmul_precision
        The fit's :attr:`~pertspectra.train.TrainConfig.matmul_precision` (timed with it).

    Returns
    -------
    dict
        ``memory_bytes`` (parts and ``"total"``, on the device), ``host_stats_bytes`` (the
        float64 statistics table), ``seconds_per_epoch``, ``timing`` (how it was obtained),
        ``multiply_adds_per_epoch``, ``block_size`` and the inputs.

    Raises
    ------
    ValueError
        On non-positive sizes, a negative ``n_edges``, an unknown dtype or an unavailable device.
    """
    import torch

    from .._utils import resolve_device
    from ..model._graph import default_block_size

    sizes = {"n_labels": n_labels, "n_genes": n_genes, "n_design": n_design, "n_factors": n_factors}
    for name, v in sizes.items():
        if int(v) < 1:
            msg = f"{name} must be >= 1, got {v}"
            raise ValueError(msg)
    if int(n_edges) < 0:
        msg = f"n_edges must be >= 0, got {n_edges}"
        raise ValueError(msg)
    _itemsize(dtype)
    dev = resolve_device(device)
    n, g, p, L, E = int(n_labels), int(n_genes), int(n_design), int(n_factors), int(n_edges)
    E = min(E, g * (g - 1) // 2)
    mem = memory_breakdown(
        n_labels=n,
        n_genes=g,
        n_design=p,
        n_factors=L,
        n_edges=E,
        device=str(dev),
        dtype=dtype,
        graph=graph,
    )
    flops = _multiply_adds(n, g, p, L, graph)

    g0 = min(g, 1024)
    e0 = int(E * (g0 / g) ** 2)
    t0 = time_epochs(
        n_labels=n,
        n_genes=g0,
        n_design=p,
        n_factors=L,
        n_edges=e0,
        device=str(dev),
        dtype=dtype,
        graph=graph,
        epochs=2,
        matmul_precision=matmul_precision,
    )
    flops0 = _multiply_adds(n, g0, p, L, graph)
    predicted = t0 * flops / flops0
    fits = _fits_in_memory(mem["total"], dev)
    if g0 == g:
        seconds, timing = t0, f"measured at full size ({2} epochs)"
    elif predicted * (epochs + 1) <= measure_budget_s and fits:
        seconds = time_epochs(
            n_labels=n,
            n_genes=g,
            n_design=p,
            n_factors=L,
            n_edges=E,
            device=str(dev),
            dtype=dtype,
            graph=graph,
            epochs=epochs,
            matmul_precision=matmul_precision,
        )
        timing = f"measured at full size ({epochs} epochs)"
    else:
        seconds = predicted
        timing = f"measured at {g0} genes, scaled by multiply-adds"
    load = _cpu_load()
    if dev.type == "cpu" and load is not None and load > (os.cpu_count() or 1):
        timing += (
            f"; CPU busy while timing (load {load:.1f} on {os.cpu_count()} cores): pessimistic"
        )
    logger.info("fit forecast: %.3g s/epoch (%s), %.3g MiB", seconds, timing, mem["total"] / 2**20)
    return {
        **sizes,
        "n_edges": E,
        "device": str(dev),
        "dtype": dtype,
        "matmul_precision": matmul_precision,
        "graph": graph,
        "block_size": default_block_size(g, L, dev) if graph else 0,
        "memory_bytes": mem,
        "host_stats_bytes": 4 * n * g * 8,
        "multiply_adds_per_epoch": flops,
        "seconds_per_epoch": float(seconds),
        "timing": timing,
        "torch_threads": torch.get_num_threads(),
        "cpu_load": load,
    }


def _cpu_load() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


def _fits_in_memory(total: int, dev: Any) -> bool:
    import torch

    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return total < 0.5 * free
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return True
    return total < 0.5 * avail


def forecast(
    adata: AnnData,
    *,
    config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    encoding: Encoding = "gene",
    prior: Any = None,
    prior_key: str | None = None,
    device: DeviceLike = "auto",
    **kwargs: Any,
) -> dict[str, Any]:
    """Forecast memory and time per epoch of ``fit`` on these group statistics.

    Takes the options of :func:`~pertspectra.train.fit` with the same names and meanings
    (``n_factors``, ``graph``, ``dtype``, ``threads``, ...); the design is built with the
    statistics' own label conventions (separator, controls), as ``fit`` would.

    Parameters
    ----------
    adata
        Perturbation-level AnnData from :func:`~pertspectra.stats.compute_group_stats`.
    config, train_config, encoding, prior, prior_key, device, **kwargs
        As for :func:`~pertspectra.train.fit`.

    Returns
    -------
    The dict of :func:`forecast_fit` (format it with :func:`format_forecast`).
    """
    from .._keys import STATS_UNS
    from .._utils import torch_threads
    from ..design import LabelParser, build_design
    from ..model._config import SIGNAL, default_n_factors, signal_n_factors
    from ..stats._signal import signal_rank
    from ._options import is_group_stats
    from ._options import resolve_prior as _resolve_prior
    from ._options import route_options as _route_options

    if not is_group_stats(adata):
        msg = "forecast needs group statistics: run pertspectra.stats.compute_group_stats first"
        raise ValueError(msg)
    config, tconfig, stats_kwargs = _route_options(config, train_config, kwargs)
    if stats_kwargs:
        msg = f"{sorted(stats_kwargs)} apply to cell-level data; adata holds group statistics"
        raise TypeError(msg)
    info = dict(adata.uns[STATS_UNS])
    parser = LabelParser(
        separator=str(info.get("separator", "+")), controls=tuple(info.get("controls", ()))
    )
    design = build_design([str(x) for x in adata.obs_names], encoding=encoding, parser=parser)
    matrix, _ = _resolve_prior(adata, prior, prior_key, adata.n_vars)
    n_edges = 0 if matrix is None else int((sp.triu(matrix, k=1) != 0).sum())
    if config.n_factors is None:
        n_factors = default_n_factors(adata.n_vars, n_perturbations=design.n_perturbations)
    elif config.n_factors == SIGNAL:
        n_factors = signal_n_factors(signal_rank(adata), adata.n_vars)
    else:
        n_factors = int(config.n_factors)
    with torch_threads(tconfig.threads):
        return forecast_fit(
            n_labels=adata.n_obs,
            n_genes=adata.n_vars,
            n_design=len(design.columns),
            n_factors=n_factors,
            n_edges=n_edges,
            device=str(device),
            dtype=tconfig.dtype,
            graph=config.graph,
            matmul_precision=tconfig.matmul_precision,
        )
