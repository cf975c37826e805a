"""``fit``: the AnnData-facing entry point (AnnData -> group statistics -> tensors -> model)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from .._keys import KEYS, LAYER_WEIGHTED_SUM, STATS_UNS, WEIGHT
from .._utils import default_rng, resolve_device, torch_threads
from ..design import DEFAULT_CONTROLS, LabelParser, build_design
from ..model._config import ModelConfig
from ..model._fitted import FittedModel
from ._loop import EFFECTS_LEARNING_RATES, PAPER_LEARNING_RATES, TrainConfig

if TYPE_CHECKING:
    from anndata import AnnData

    from .._types import DeviceLike, Dtype, Encoding, SeedLike, Stopping, Weighting

logger = logging.getLogger(__name__)


def is_group_stats(adata: AnnData) -> bool:
    """Whether ``adata`` is a perturbation-level AnnData from :func:`~pertspectra.stats.compute_group_stats`."""
    return STATS_UNS in adata.uns and LAYER_WEIGHTED_SUM in adata.layers and WEIGHT in adata.obs


def fit(
    adata: AnnData,
    *,
    perturbation_key: str | None = None,
    layer: str | None = None,
    controls: Iterable[str] = DEFAULT_CONTROLS,
    separator: str = "+",
    exclude_labels: Iterable[str] = (),
    min_cells: int = 50,
    weighting: Weighting = "label",
    normalize: str | None = None,
    allow_counts: bool = False,
    encoding: Encoding = "gene",
    prior: Any = None,
    prior_key: str | None = None,
    n_factors: int = 200,
    lam: float = 1.0,
    rho: float = 0.05,
    delta: float = 0.001,
    kappa: float | None = None,
    graph: bool = True,
    parametrization: Literal["paper", "effects"] = "paper",
    weight_decay: float | None = None,
    max_epochs: int = 10_000,
    learning_rates: Iterable[float] | None = None,
    stopping: Stopping = "relative",
    tol: float = 1e-5,
    patience: int = 50,
    device: DeviceLike = "auto",
    dtype: Dtype = "float32",
    rng: SeedLike = 0,
    n_init: int = 1,
    threads: int | None = None,
    progress: bool = True,
    chunk_size: int = 10_000,
    store: bool = True,
) -> FittedModel:
    """Fit PertSpectra to a Perturb-seq screen.

    The cells are reduced to per-label statistics in one pass (exact for the paper's loss);
    the fit then never touches the cell matrix again.

    Parameters
    ----------
    adata
        Cells x genes (log-normalized, in memory or backed), or a perturbation-level AnnData
        from :func:`~pertspectra.stats.compute_group_stats` (then the statistics options below
        are ignored).
    perturbation_key
        ``obs`` column of perturbation labels (required for a cell-level AnnData).
    layer, controls, separator, exclude_labels, min_cells, weighting, normalize, allow_counts, chunk_size
        Passed to :func:`~pertspectra.stats.compute_group_stats`.
    encoding
        ``"gene"`` (one design column per perturbed gene; predicts unseen combinations) or
        ``"label"`` (one column per label).
    prior
        Prior gene x gene graph (scipy sparse or dense array aligned to ``var_names``, entries in
        [0, 1]). Default: ``adata.varp[prior_key]`` when present, else no graph (all-zero
        adjacency, as the authors).
    prior_key
        ``varp`` key of the prior (default ``"pertspectra_prior"``; an explicit key must exist).
    n_factors, lam, rho, delta, kappa, graph, parametrization
        Model hyperparameters (:class:`~pertspectra.model.ModelConfig`). ``parametrization=
        "effects"`` makes each perturbation a signed deviation from control, so combinations
        are additive in effects (not in the paper; see the config's documentation).
    weight_decay
        AdamW weight decay; default 0.001 (the authors') for ``"paper"``, 0 for ``"effects"``.
    learning_rates
        The stepped schedule; default the authors' ``(1, 0.5, 0.1, 0.01, 0.001, 0.0001)`` for
        ``"paper"``, ``(0.05, 0.01, 0.001)`` for ``"effects"``.
    max_epochs, stopping, tol, patience
        Optimisation (:class:`~pertspectra.train.TrainConfig`).
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
    dtype
        ``"float32"`` or ``"float64"``.
    rng
        Seed or generator; the same seed gives the same result on the CPU.
    n_init
        Independent initialisations; the fit with the lowest final objective is kept (the
        objective is non-convex, so restarts guard against poor local optima).
    threads
        CPU threads for torch during the fit (``torch.set_num_threads``, restored afterwards);
        default: torch's setting. On a machine whose cores are busy with other work, 1 thread
        can be several times faster than the default (idle OpenMP threads spin).
    progress
        Show progress bars.
    store
        Write the results into ``adata`` (skipped for a backed AnnData).

    Returns
    -------
    The :class:`~pertspectra.model.FittedModel`. With ``store``, also writes
    ``adata.varm["pertspectra_W"]`` (genes x factors), ``adata.var["pertspectra_gene_scale"]`` and
    ``adata.uns["pertspectra"]`` (config, training summary, versions).
    """
    import torch

    from ..model._graph import GraphPrior
    from ..model._loss import pertspectra_loss
    from ..model._module import PertSpectraModule
    from ..stats import compute_group_stats
    from ._loop import run

    effects = parametrization == "effects"
    if weight_decay is None:
        weight_decay = 0.0 if effects else 0.001
    if learning_rates is None:
        learning_rates = EFFECTS_LEARNING_RATES if effects else PAPER_LEARNING_RATES
    config = ModelConfig(
        n_factors=n_factors,
        lam=lam,
        rho=rho,
        delta=delta,
        kappa=kappa,
        graph=graph,
        weight_decay=weight_decay,
        parametrization=parametrization,
    )
    tconfig = TrainConfig(
        max_epochs=max_epochs,
        learning_rates=tuple(float(x) for x in learning_rates),
        stopping=stopping,
        tol=tol,
        patience=patience,
        weight_decay=weight_decay,
    )
    if dtype not in ("float32", "float64"):
        msg = f"dtype must be 'float32' or 'float64', got {dtype!r}"
        raise ValueError(msg)

    if is_group_stats(adata):
        stats = adata
        info = dict(adata.uns[STATS_UNS])
        parser = LabelParser(
            separator=str(info.get("separator", "+")),
            controls=tuple(info.get("controls", controls)),
        )
    else:
        if perturbation_key is None:
            msg = "perturbation_key is required: the obs column holding perturbation labels"
            raise ValueError(msg)
        stats = compute_group_stats(
            adata,
            perturbation_key=perturbation_key,
            layer=layer,
            controls=controls,
            separator=separator,
            exclude_labels=exclude_labels,
            min_cells=min_cells,
            weighting=weighting,
            normalize=normalize,
            allow_counts=allow_counts,
            chunk_size=chunk_size,
            progress=progress,
        )
        parser = LabelParser(separator=separator, controls=tuple(controls))

    labels = [str(x) for x in stats.obs_names]
    design = build_design(labels, encoding=encoding, parser=parser)
    genes = [str(g) for g in stats.var_names]
    prior_matrix, prior_desc = _resolve_prior(stats, prior, prior_key, len(genes))
    if prior_matrix is None and graph:
        logger.info(
            "no prior graph: the graph term acts with an all-zero adjacency (as the authors)"
        )

    dev = resolve_device(device)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    if n_init < 1:
        msg = f"n_init must be >= 1, got {n_init}"
        raise ValueError(msg)
    seeds = [int(x) for x in default_rng(rng).integers(2**62, size=n_init)]
    h = torch.as_tensor(design.matrix(labels), dtype=tdtype, device=dev)
    s = torch.as_tensor(np.asarray(stats.layers[LAYER_WEIGHTED_SUM]), dtype=tdtype, device=dev)
    w = torch.as_tensor(stats.obs[WEIGHT].to_numpy(), dtype=tdtype, device=dev)
    gprior = (
        None
        if prior_matrix is None
        else GraphPrior.from_scipy(prior_matrix, dtype=tdtype, device=dev)
    )

    logger.info(
        "fitting %d labels x %d genes, %d design columns, %d factors on %s (%s)",
        len(labels),
        len(genes),
        len(design.columns),
        n_factors,
        dev,
        dtype,
    )
    best = None
    init_losses = []
    with torch_threads(threads):
        n_threads = torch.get_num_threads()
        for seed in seeds:
            gen = torch.Generator().manual_seed(seed)
            module = PertSpectraModule(
                len(design.columns), len(genes), config, generator=gen, dtype=tdtype
            ).to(dev)
            hist = run(
                list(module.parameters()),
                lambda module=module: pertspectra_loss(module, h, s, w, gprior).total,
                tconfig,
                progress=progress,
            )
            with torch.no_grad():
                terms = pertspectra_loss(module, h, s, w, gprior)
            init_losses.append(float(terms.total))
            if best is None or float(terms.total) < float(best[2].total):
                best = (seed, module, terms, hist)
    seed, module, terms, hist = best
    with torch.no_grad():
        values = {
            "P": module.P,
            "W": module.W,
            "B": module.B,
            "kappa": module.kappa.reshape(1),
            "gene_scale": module.gene_scale,
        }
        arrays = {k: v.detach().cpu().double().numpy() for k, v in values.items()}
    training = {
        "epochs": hist.epochs,
        "final_loss": float(terms.total),
        "final_recon": float(terms.recon),
        "final_graph": float(terms.graph),
        "loss_history": hist.loss,
        "lr_steps": hist.lr_steps,
        "stop_reason": hist.stop_reason,
        "seconds": hist.seconds,
        "seconds_per_epoch": hist.seconds / max(hist.epochs, 1),
        "device": str(dev),
        "threads": n_threads,
        "dtype": dtype,
        "seed": seed,
        "n_init": n_init,
        "init_final_losses": init_losses,
        "stopping": stopping,
        "tol": tol,
        "patience": patience,
        "max_epochs": max_epochs,
        "learning_rates": list(tconfig.learning_rates),
        "prior": prior_desc,
        "n_labels": len(labels),
        "n_cells": int(stats.obs["n_cells"].sum()),
        "statistics": {k: _plain(v) for k, v in dict(stats.uns.get(STATS_UNS, {})).items()},
    }
    model = FittedModel(**arrays, genes=genes, design=design, config=config, training=training)
    if store and not adata.isbacked:
        store_results(adata, model)
    return model


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _resolve_prior(
    stats: AnnData, prior: Any, prior_key: str | None, n_genes: int
) -> tuple[Any, str]:
    if prior is not None:
        mat = prior if sp.issparse(prior) else sp.csr_matrix(np.asarray(prior))
        desc = "given as argument"
    else:
        key = prior_key or KEYS.prior
        if key not in stats.varp:
            if prior_key is not None:
                msg = f"varp[{prior_key!r}] not found; build one with `pertspectra prior` or pass prior="
                raise KeyError(msg)
            return None, "none (all-zero adjacency)"
        mat = sp.csr_matrix(stats.varp[key])
        info = stats.uns.get(KEYS.prior_info, {})
        desc = f"varp[{key!r}]" + (
            f" from {info.get('file', info.get('source', ''))}" if info else ""
        )
    if mat.shape != (n_genes, n_genes):
        msg = f"prior graph has shape {mat.shape}, expected ({n_genes}, {n_genes}) aligned to var_names"
        raise ValueError(msg)
    n_edges = (sp.triu(mat, k=1) != 0).sum()
    return mat, f"{desc}; {int(n_edges)} undirected edges"


def store_results(adata: AnnData, model: FittedModel, *, key: str = "pertspectra") -> None:
    """Write a model's gene-level results into ``adata`` (aligned by gene name).

    Writes ``varm[f"{key}_W"]`` (genes x factors), ``var[f"{key}_gene_scale"]`` and
    ``uns[key]`` (config, training summary without the loss history, versions).
    """
    from .._keys import Keys

    keys = Keys(key)
    idx = {g: i for i, g in enumerate(model.genes)}
    pos = np.array([idx.get(str(g), -1) for g in adata.var_names])
    W = np.full((adata.n_vars, model.W.shape[0]), np.nan)
    W[pos >= 0] = model.W.T[pos[pos >= 0]]
    scale = np.full(adata.n_vars, np.nan)
    scale[pos >= 0] = model.gene_scale[pos[pos >= 0]]
    adata.varm[keys.loadings] = W
    adata.var[keys.gene_scale] = scale
    summary = {k: v for k, v in model.training.items() if k not in ("loss_history", "statistics")}
    adata.uns[keys.uns] = {
        "params": {k: ("learned" if v is None else v) for k, v in model.config.to_dict().items()}
        | {"encoding": model.design.encoding},
        "training": {k: ("" if v is None else v) for k, v in summary.items()},
        "versions": dict(model.versions),
    }
