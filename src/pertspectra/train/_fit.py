"""``fit``: the AnnData-facing entry point (AnnData -> group statistics -> tensors -> model)."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .._keys import LAYER_WEIGHTED_SUM, WEIGHT
from .._utils import default_rng, resolve_device, torch_threads
from ..design import build_design
from ..model._config import SIGNAL, ModelConfig, default_n_factors, signal_n_factors
from ..model._fitted import FittedModel, on_target_gene_index
from ._checks import check_dtype_range, check_finite_end, check_step_settings
from ._config import TrainConfig
from ._options import (
    prepare_stats,
    rate_scales,
    resolve_prior,
    route_options,
    training_record,
)
from ._store import store_results

if TYPE_CHECKING:
    from anndata import AnnData

    from .._types import DeviceLike, Encoding, SeedLike

logger = logging.getLogger(__name__)


def fit(
    adata: AnnData,
    *,
    perturbation_key: str | None = None,
    config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    encoding: Encoding = "gene",
    prior: Any = None,
    prior_key: str | None = None,
    seed: SeedLike = 0,
    device: DeviceLike = "auto",
    progress: bool = True,
    key_added: str = "pertspectra",
    store: bool = True,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    checkpoint_every: float = 60.0,
    **kwargs: Any,
) -> FittedModel:
    """Fit PertSpectra to a Perturb-seq screen.

    The cells are reduced to per-label statistics in one pass (exact for the paper's loss);
    the fit then never touches the cell matrix again.

    Parameters
    ----------
    adata
        Cells x genes (log-normalized, in memory or backed), or a perturbation-level AnnData
        from :func:`~pertspectra.stats.compute_group_stats` (then no statistics options apply).
    perturbation_key
        ``obs`` column of perturbation labels (required for a cell-level AnnData).
    config
        What is fitted (:class:`~pertspectra.model.ModelConfig`): factors, ``lam``, ``rho``,
        the graph term, the parametrization, weight decay.
    train_config
        How it is fitted (:class:`~pertspectra.train.TrainConfig`): epochs, schedule,
        stopping rule, restarts, dtype, threads.
    encoding
        ``"gene"`` (one design column per perturbed gene; predicts unseen combinations) or
        ``"label"`` (one column per label).
    prior
        Prior gene x gene graph (scipy sparse or dense array aligned to ``var_names``, entries in
        [0, 1]). Default: ``adata.varp[prior_key]`` when present, else no graph (all-zero
        adjacency, as the authors).
    prior_key
        ``varp`` key of the prior (default ``"pertspectra_prior"``; an explicit key must exist).
    seed
        Seed or generator; the same seed gives the same result on the CPU at the same thread
        count.
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
    progress
        Show progress.
    key_added
        Prefix of the slots written into ``adata`` (see Returns).
    store
        Write the results into ``adata`` (skipped for a backed AnnData).
    checkpoint
        Folder for checkpoints (safetensors + JSON, written atomically; see
        :mod:`pertspectra.train._checkpoint`), every ``checkpoint_every`` seconds and on Ctrl-C
        (the fit stops at the end of the epoch, writes it and raises ``KeyboardInterrupt``).
        Kept after the fit, holding its final state: delete it once the model is saved.
    resume
        Continue the fit in ``checkpoint`` (same data and settings, checked: a difference is an
        error naming it); on the CPU with the same seed, dtype and threads, bit-identical to an
        uninterrupted fit. Without ``resume`` a folder holding a checkpoint is an error.
    checkpoint_every
        Seconds between checkpoints (0: every epoch).
    **kwargs
        Shortcuts, each routed to the one object that owns it: any field of
        :class:`~pertspectra.model.ModelConfig` (``n_factors=50``, ``lam=...``) or
        :class:`~pertspectra.train.TrainConfig` (``max_epochs=...``, ``n_init=3``,
        ``threads=1``), overriding ``config`` / ``train_config``, and any option of
        :func:`~pertspectra.stats.compute_group_stats` (``normalize="log1p"``,
        ``exclude_labels=[...]``, ``min_cells``, ``target_sum``, ``controls``, ``layer``, ...)
        for a cell-level AnnData. ``rng`` is accepted as an old spelling of ``seed``.

    Returns
    -------
    The :class:`~pertspectra.model.FittedModel`. With ``store``, also writes (``key_added``
    ``= "pertspectra"`` shown): ``adata.varm["pertspectra_W"]`` (genes x factors),
    ``adata.var["pertspectra_gene_scale"]``, ``adata.uns["pertspectra"]`` (``params``,
    ``training`` summary, ``versions``, and ``P``: design columns x factors as a DataFrame) and,
    on a perturbation-level AnnData, ``adata.obsm["pertspectra_P"]`` (labels x factors: each
    label's loadings ``h_c P``).

    Raises
    ------
    TypeError
        On a keyword that no config or statistics option owns.
    ValueError
        On invalid settings or data (see :func:`~pertspectra.stats.compute_group_stats`), or
        a checkpoint made with other data or settings.
    FileExistsError, FileNotFoundError
        On a ``checkpoint`` folder that already holds one (without ``resume``), or none (with).

    Examples
    --------
    >>> import pertspectra as ps
    >>> adata = ps.datasets.toy(seed=0)
    >>> model = ps.train.fit(
    ...     adata, perturbation_key="perturbation", n_factors=4, max_epochs=50, progress=False
    ... )
    >>> adata.varm["pertspectra_W"].shape
    (60, 4)
    """
    import torch

    from ..model._graph import GraphPrior
    from ..model._loss import LossTerms, pertspectra_loss
    from ..model._module import PertSpectraModule
    from ._checkpoint import open_checkpoint, stats_checksum
    from ._init import communities_init, means_init, prior_communities, resolve_init
    from ._loop import run

    if "rng" in kwargs:
        seed = kwargs.pop("rng")
    config, tconfig, stats_kwargs = route_options(config, train_config, kwargs)
    tconfig = tconfig.resolved(config.parametrization)
    check_step_settings(config, tconfig)

    stats, info, parser = prepare_stats(adata, perturbation_key, stats_kwargs, progress=progress)
    if info.get("condition_key"):
        msg = (
            "the statistics are per (label, condition) (condition_key=): fit them with "
            "pertspectra.train.fit_conditions (CLI: pertspectra fit --condition-key)"
        )
        raise ValueError(msg)
    labels = [str(x) for x in stats.obs_names]
    design = build_design(labels, encoding=encoding, parser=parser)
    genes = [str(g) for g in stats.var_names]
    rule = default_n_factors(len(genes), n_perturbations=design.n_perturbations)
    if config.n_factors is None:
        config = replace(config, n_factors=rule)
        logger.info(
            "n_factors: %d (the default rule for %d genes, %d perturbations)",
            rule,
            len(genes),
            design.n_perturbations,
        )
    elif config.n_factors == SIGNAL:
        from ..stats._signal import signal_rank

        rank = signal_rank(stats)
        config = replace(config, n_factors=signal_n_factors(rank, len(genes)))
        logger.info("n_factors: %d (signal rank %d plus one)", config.n_factors, rank)
    n_factors = int(config.n_factors or 0)
    if n_factors >= len(genes):
        warnings.warn(
            f"{n_factors} factors for {len(genes)} genes: with at least as many factors "
            "as genes each program can be a single gene; choose fewer (n_factors=None picks "
            f"{rule})",
            UserWarning,
            stacklevel=2,
        )
    prior_matrix, prior_desc = resolve_prior(stats, prior, prior_key, len(genes))
    if prior_matrix is None and config.graph:
        logger.info(
            "no prior graph: the graph term acts with an all-zero adjacency (as the authors)"
        )

    measured = set(genes)
    on_target_genes = (
        {c: c for c in design.columns[:-2] if c in measured} if config.on_target else {}
    )
    on_target_gene = on_target_gene_index(design.columns, on_target_genes, genes).tolist()
    if config.on_target:
        logger.info(
            "on-target term for %d of %d perturbations (their target gene is measured)",
            len(on_target_genes),
            len(design.columns) - 2,
        )

    start = resolve_init(
        tconfig.init,
        parametrization=config.parametrization,
        has_prior=prior_matrix is not None and config.graph,
        n_factors=n_factors,
        n_labels=len(labels),
    )
    communities = None
    if start == "communities":
        communities = prior_communities(prior_matrix, n_factors)
        n_comm = int(communities.max(initial=-1)) + 1
        if n_comm == 0:  # too few edges to arrange: the random draw
            start = "random"
            if tconfig.init == "communities":
                warnings.warn(
                    "init='communities': the prior has fewer than four genes with an edge, so "
                    "it has no communities; the fit starts from the random draw",
                    UserWarning,
                    stacklevel=2,
                )
        logger.info(
            "start: %s (%d of %d genes in %d communities of the prior)",
            start, int((communities >= 0).sum()), len(genes), n_comm,
        )  # fmt: skip
    if start == "means":
        logger.info("starting at the labels' means (one factor per label; init=%r)", tconfig.init)
    dev = resolve_device(device)
    tdtype = torch.float64 if tconfig.dtype == "float64" else torch.float32
    seeds = [int(x) for x in default_rng(seed).integers(2**62, size=tconfig.n_init)]
    h = torch.as_tensor(design.matrix(labels), dtype=tdtype, device=dev)
    s = torch.as_tensor(np.asarray(stats.layers[LAYER_WEIGHTED_SUM]), dtype=tdtype, device=dev)
    check_dtype_range(s, tconfig.dtype)
    w = torch.as_tensor(stats.obs[WEIGHT].to_numpy(), dtype=tdtype, device=dev)
    gprior = (
        None
        if prior_matrix is None
        else GraphPrior.from_scipy(prior_matrix, dtype=tdtype, device=dev)
    )
    data_sha256 = stats_checksum(stats, design.matrix(labels), prior_matrix)
    fit_seed = int(seed) if isinstance(seed, int | np.integer) else None

    logger.info(
        "fitting %d labels x %d genes, %d design columns, %d factors on %s (%s)",
        len(labels),
        len(genes),
        len(design.columns),
        config.n_factors,
        dev,
        tconfig.dtype,
    )
    best = None
    init_losses: list[float] = []
    init_converged: list[bool] = []
    with torch_threads(tconfig.threads):
        n_threads = torch.get_num_threads()
        settings = {**config.to_dict(), **tconfig.to_dict(), "encoding": encoding}
        settings |= {"seed": seeds if fit_seed is None else fit_seed, "device": dev.type}
        ck = open_checkpoint(
            checkpoint, resume=resume, every=checkpoint_every, settings=settings,
            data=data_sha256, threads=n_threads,
        )  # fmt: skip
        for i_init, init_seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(init_seed)
            module = PertSpectraModule(
                len(design.columns),
                len(genes),
                config,
                generator=gen,
                dtype=tdtype,
                on_target_gene=on_target_gene,
            ).to(dev)
            if start == "means":
                means_init(module, h, weighted_sum=s, weight=w)
            elif communities is not None and start == "communities":
                communities_init(module, communities)

            def loss_fn(module: PertSpectraModule = module) -> LossTerms:
                return pertspectra_loss(module, h, weighted_sum=s, weight=w, prior=gprior)

            hist = run(
                list(module.parameters()),
                loss_fn,
                tconfig,
                weight_decay=float(config.weight_decay or 0.0),
                progress=progress,
                checkpoint=None if ck is None else ck.slot(i_init),
                rate_scales=rate_scales(module, tconfig),
            )
            with torch.no_grad():
                terms = pertspectra_loss(module, h, weighted_sum=s, weight=w, prior=gprior)
            check_finite_end(module, terms)
            init_losses.append(float(terms.total))
            init_converged.append(hist.converged)
            if best is None or float(terms.total) < float(best[2].total):
                best = (init_seed, module, terms, hist)
    assert best is not None  # n_init >= 1
    init_seed, module, terms, hist = best
    with torch.no_grad():
        values = {
            "P": module.P,
            "W": module.W,
            "B": module.B,
            "kappa": module.kappa.reshape(1),
            "gene_scale": module.gene_scale,
            "on_target": module.on_target,
        }
        arrays = {k: v.detach().cpu().double().numpy() for k, v in values.items()}
    training = training_record(
        tconfig, hist, terms, stats=stats, lam=config.lam, labels=labels, info=info,
        device=str(dev), threads=n_threads, seed=init_seed, fit_seed=fit_seed,
        data_sha256=data_sha256, init_final_losses=init_losses,
        init_converged=init_converged, prior=prior_desc, start=start,
    )  # fmt: skip
    model = FittedModel(
        P=arrays["P"],
        W=arrays["W"],
        B=arrays["B"],
        kappa=arrays["kappa"],
        gene_scale=arrays["gene_scale"],
        genes=genes,
        design=design,
        config=config,
        training=training,
        on_target=arrays["on_target"] if config.on_target else None,
        on_target_genes=on_target_genes,
    )
    if not hist.converged:
        warnings.warn(
            f"the fit did not converge: {hist.stop_reason}; raise max_epochs or cycle_epochs "
            "(training['convergence'] holds the evidence)",
            UserWarning,
            stacklevel=2,
        )
    if store and not adata.isbacked:
        store_results(adata, model, key_added=key_added)
    return model
