"""``fit`` under several conditions: (label, condition) statistics -> :class:`~pertspectra.model.ConditionModel`.

Called by :func:`pertspectra.train.fit` when the statistics were computed with
``condition_key``; the optimizer, schedule, convergence check, restarts and checkpoints are the
one-condition fit's (:func:`pertspectra.train._loop.run`), the loss the one loss function.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .._keys import LAYER_WEIGHTED_SUM, N_CELLS, STATS_UNS, WEIGHT
from .._utils import default_rng, resolve_device, torch_threads
from ..design import LabelParser, build_design
from ..model._condition_model import SHARED, ConditionModel
from ..model._config import SIGNAL, ModelConfig, default_n_factors
from ..model._fitted import on_target_gene_index
from ._checks import check_dtype_range, check_finite_end
from ._config import TrainConfig
from ._options import rate_scales, resolve_prior, training_record

if TYPE_CHECKING:
    from anndata import AnnData

    from .._types import DeviceLike, Encoding, SeedLike

logger = logging.getLogger(__name__)


def default_condition_factors(n_factors: int) -> int:
    """Each condition's own programs by default: a quarter of the shared ones (at least 1).

    The authors' in-house screen used 20 shared + 5 per condition.
    """
    return max(1, int(n_factors) // 4)


def fit_conditions(
    adata: AnnData,
    *,
    perturbation_key: str | None = None,
    condition_key: str | None = None,
    condition_factors: int | None = None,
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
) -> ConditionModel:
    """Fit PertSpectra to a screen run under several conditions (the authors' cell-type model).

    Programs shared by every condition plus ``condition_factors`` programs of each condition's
    own, and loadings ``P`` per condition (:mod:`pertspectra.model._condition_module`); each
    cell weighs ``1/|cells with its label and condition|``. The cells are reduced to
    per-(label, condition) statistics in one pass, which is exact as for :func:`fit`.

    Parameters
    ----------
    adata
        Cells x genes, or per-(label, condition) statistics from
        :func:`~pertspectra.stats.compute_group_stats` with ``condition_key``.
    perturbation_key
        ``obs`` column of perturbation labels (cell-level data).
    condition_key
        ``obs`` column of conditions (cell line, treatment, stimulation; cell-level data).
    condition_factors
        Programs of each condition's own (``None``: :func:`default_condition_factors` of
        ``n_factors``, a quarter; 0: every program shared).
    config, train_config, encoding, prior, prior_key, seed, device, progress, checkpoint, resume, checkpoint_every, **kwargs
        As :func:`fit`; ``config.n_factors`` is the number of shared programs.
    key_added
        With ``store``, each condition's one-condition view
        (:meth:`~pertspectra.model.ConditionModel.condition`) is written as :func:`fit` writes a
        model, under ``f"{key_added}_{condition}"`` (``varm["pertspectra_<condition>_W"]``, ...).
    store
        Write the results into ``adata`` (skipped for a backed AnnData).

    Returns
    -------
    The :class:`~pertspectra.model.ConditionModel`.

    Raises
    ------
    ValueError
        On data without conditions, the same column as labels and conditions, a condition
        without control cells, or the errors of :func:`fit`.
    """
    from ._checks import check_step_settings
    from ._options import is_group_stats, prepare_stats, route_options

    given = dict(adata.uns[STATS_UNS]).get("condition_key") if is_group_stats(adata) else None
    if condition_key is not None and given is not None and condition_key != given:
        msg = f"condition_key={condition_key!r}, but the statistics were computed per {given!r}"
        raise ValueError(msg)
    if condition_key is not None and given is None:
        kwargs["condition_key"] = condition_key
    config, tconfig, stats_kwargs = route_options(config, train_config, kwargs)
    tconfig = tconfig.resolved(config.parametrization)
    check_step_settings(config, tconfig)
    if tconfig.init in ("means", "communities"):
        msg = (
            f"init={tconfig.init!r} is for fit; a condition fit starts at random "
            "(init='auto' or 'random')"
        )
        raise ValueError(msg)
    stats, info, parser = prepare_stats(adata, perturbation_key, stats_kwargs, progress=progress)
    if not info.get("condition_key"):
        msg = "fit_conditions needs condition_key= (the obs column of conditions); without conditions use fit()"
        raise ValueError(msg)
    model = _fit(
        stats, info=info, parser=parser, config=config, tconfig=tconfig, encoding=encoding,
        prior=prior, prior_key=prior_key, condition_factors=condition_factors, seed=seed,
        device=device, progress=progress, checkpoint=checkpoint, resume=resume,
        checkpoint_every=checkpoint_every,
    )  # fmt: skip
    if store and not adata.isbacked:
        from ._store import store_results

        for c in model.conditions:
            store_results(adata, model.condition(c), key_added=f"{key_added}_{c}")
    return model


def _fit(
    stats: AnnData,
    *,
    info: dict[str, Any],
    parser: LabelParser,
    config: ModelConfig,
    tconfig: TrainConfig,
    encoding: Encoding,
    prior: Any,
    prior_key: str | None,
    condition_factors: int | None,
    seed: SeedLike,
    device: DeviceLike,
    progress: bool,
    checkpoint: str | os.PathLike | None,
    resume: bool,
    checkpoint_every: float,
) -> ConditionModel:
    import torch

    from ..model._condition_module import ConditionModule
    from ..model._graph import GraphPrior
    from ..model._loss import LossTerms, pertspectra_loss
    from ._checkpoint import open_checkpoint, stats_checksum
    from ._loop import run

    conditions = [str(c) for c in info["conditions"]]
    if SHARED in conditions:
        msg = (
            f"a condition is named {SHARED!r}, the name of the shared programs "
            f"({SHARED}_0, ...); rename it in obs[{info['condition_key']!r}]"
        )
        raise ValueError(msg)
    group_labels = [str(x) for x in stats.obs["label"]]
    group_cond = [str(x) for x in stats.obs["condition"]]
    design = build_design(dict.fromkeys(group_labels), encoding=encoding, parser=parser)
    genes = [str(g) for g in stats.var_names]
    if config.n_factors is None:
        rule = default_n_factors(len(genes), n_perturbations=design.n_perturbations)
        config = replace(config, n_factors=rule)
    elif config.n_factors == SIGNAL:
        msg = (
            "n_factors='signal' is not available under several conditions (the signal rank is "
            "of one screen's changes); pass a number of shared programs"
        )
        raise ValueError(msg)
    L0 = int(config.n_factors or 0)
    Lc = default_condition_factors(L0) if condition_factors is None else int(condition_factors)
    if Lc < 0:
        msg = f"condition_factors must be >= 0, got {condition_factors}"
        raise ValueError(msg)
    if L0 + Lc >= len(genes):
        warnings.warn(
            f"{L0} shared + {Lc} own factors for {len(genes)} genes: with at least as many "
            "factors as genes each program can be a single gene; choose fewer",
            UserWarning,
            stacklevel=4,
        )
    prior_matrix, prior_desc = resolve_prior(stats, prior, prior_key, len(genes))
    measured = set(genes)
    on_target_genes = (
        {c: c for c in design.columns[:-2] if c in measured} if config.on_target else {}
    )
    on_target_gene = on_target_gene_index(design.columns, on_target_genes, genes).tolist()
    # n_c: the cells of condition c that are fitted (those of its kept (label, condition) groups)
    n_cells = stats.obs[N_CELLS].to_numpy(dtype=float)
    cells = {c: float(n_cells[[k == c for k in group_cond]].sum()) for c in conditions}
    share = [cells[c] / sum(cells.values()) for c in conditions]

    dev = resolve_device(device)
    tdtype = torch.float64 if tconfig.dtype == "float64" else torch.float32
    seeds = [int(x) for x in default_rng(seed).integers(2**62, size=tconfig.n_init)]
    onehot = np.zeros((len(group_cond), len(conditions)))
    onehot[np.arange(len(group_cond)), [conditions.index(c) for c in group_cond]] = 1.0
    design_rows = np.hstack([design.matrix(group_labels), onehot])
    h = torch.as_tensor(design_rows, dtype=tdtype, device=dev)
    s = torch.as_tensor(np.asarray(stats.layers[LAYER_WEIGHTED_SUM]), dtype=tdtype, device=dev)
    check_dtype_range(s, tconfig.dtype)
    w = torch.as_tensor(stats.obs[WEIGHT].to_numpy(), dtype=tdtype, device=dev)
    gprior = (
        None
        if prior_matrix is None
        else GraphPrior.from_scipy(prior_matrix, dtype=tdtype, device=dev)
    )
    data_sha256 = stats_checksum(stats, design_rows, prior_matrix)
    fit_seed = int(seed) if isinstance(seed, int | np.integer) else None
    logger.info(
        "fitting %d (label, condition) groups in %d conditions x %d genes: %d shared + %d own "
        "factors per condition on %s (%s)",
        len(group_labels), len(conditions), len(genes), L0, Lc, dev, tconfig.dtype,
    )  # fmt: skip
    best = None
    init_losses: list[float] = []
    init_converged: list[bool] = []
    with torch_threads(tconfig.threads):
        n_threads = torch.get_num_threads()
        settings = {**config.to_dict(), **tconfig.to_dict(), "encoding": encoding}
        settings |= {"seed": seeds if fit_seed is None else fit_seed, "device": dev.type}
        settings |= {"conditions": conditions, "condition_factors": Lc}
        ck = open_checkpoint(
            checkpoint, resume=resume, every=checkpoint_every, settings=settings,
            data=data_sha256, threads=n_threads,
        )  # fmt: skip
        for i_init, init_seed in enumerate(seeds):
            module = ConditionModule(
                len(design.columns), len(genes), config, condition_share=share,
                condition_factors=Lc, generator=torch.Generator().manual_seed(init_seed),
                dtype=tdtype, on_target_gene=on_target_gene,
            ).to(dev)  # fmt: skip

            def loss_fn(module: ConditionModule = module) -> LossTerms:
                return pertspectra_loss(module, h, weighted_sum=s, weight=w, prior=gprior)

            hist = run(
                list(module.parameters()), loss_fn, tconfig,
                weight_decay=float(config.weight_decay or 0.0), progress=progress,
                checkpoint=None if ck is None else ck.slot(i_init),
                rate_scales=rate_scales(module, tconfig),
            )  # fmt: skip
            with torch.no_grad():
                terms = loss_fn()
            check_finite_end(module, terms)
            init_losses.append(float(terms.total))
            init_converged.append(hist.converged)
            if best is None or float(terms.total) < float(best[2].total):
                best = (init_seed, module, terms, hist)
    assert best is not None
    init_seed, module, terms, hist = best
    with torch.no_grad():
        values = {
            "P": module.P, "W": module.W, "B": module.B, "kappa": module.kappa[:1],
            "gene_scale": module.gene_scale, "W_own": module.W_own, "B_own": module.B_own,
            "kappa_own": module.kappa[1:], "gene_scale_own": module.gene_scale_own,
            "on_target": module.on_target,
        }  # fmt: skip
        arrays = {k: v.detach().cpu().double().numpy() for k, v in values.items()}
    training = training_record(
        tconfig, hist, terms, stats=stats, lam=config.lam, labels=list(stats.obs_names), info=info,
        device=str(dev), threads=n_threads, seed=init_seed, fit_seed=fit_seed,
        data_sha256=data_sha256, init_final_losses=init_losses,
        init_converged=init_converged, prior=prior_desc, start="random",
        cells_per_condition={c: int(v) for c, v in cells.items()},
        condition_share=dict(zip(conditions, share, strict=True)),
    )  # fmt: skip
    training["n_labels"] = len(design.labels)
    model = ConditionModel(
        conditions=conditions,
        P=arrays["P"],
        W=arrays["W"],
        B=arrays["B"],
        kappa=arrays["kappa"],
        gene_scale=arrays["gene_scale"],
        W_own=arrays["W_own"],
        B_own=arrays["B_own"],
        kappa_own=arrays["kappa_own"],
        gene_scale_own=arrays["gene_scale_own"],
        genes=genes,
        design=design,
        config=config,
        condition_labels={
            c: [lab for lab, k in zip(group_labels, group_cond, strict=True) if k == c]
            for c in conditions
        },
        condition_key=str(info["condition_key"]),
        training=training,
        on_target=arrays["on_target"] if config.on_target else None,
        on_target_genes=on_target_genes,
    )
    if not hist.converged:
        warnings.warn(
            f"the fit did not converge: {hist.stop_reason}; raise max_epochs or cycle_epochs "
            "(training['convergence'] holds the evidence)",
            UserWarning,
            stacklevel=4,
        )
    return model
