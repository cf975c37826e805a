"""Options of ``fit``: keyword routing, the prior graph, and the training record."""

from __future__ import annotations

import inspect
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._keys import KEYS, LAYER_WEIGHTED_SUM, STATS_UNS, WEIGHT
from ..design import LabelParser
from ..model._config import ModelConfig
from ._config import TrainConfig

if TYPE_CHECKING:
    import torch
    from anndata import AnnData

    from ._history import History


def is_group_stats(adata: AnnData) -> bool:
    """Whether ``adata`` is a perturbation-level AnnData from :func:`~pertspectra.stats.compute_group_stats`."""
    return STATS_UNS in adata.uns and LAYER_WEIGHTED_SUM in adata.layers and WEIGHT in adata.obs


def prepare_stats(
    adata: AnnData, perturbation_key: str | None, stats_kwargs: dict[str, Any], *, progress: bool
) -> tuple[AnnData, dict[str, Any], LabelParser]:
    """The group statistics to fit (computed from cells, or ``adata`` itself), their record and parser."""
    from ..stats import compute_group_stats

    if is_group_stats(adata):
        if stats_kwargs:
            msg = f"{sorted(stats_kwargs)} apply to cell-level data; adata holds group statistics"
            raise TypeError(msg)
        info = dict(adata.uns[STATS_UNS])
        parser = LabelParser(
            separator=str(info.get("separator", "+")),
            controls=tuple(info.get("controls", ())),
        )
        return adata, info, parser
    if perturbation_key is None:
        msg = "perturbation_key is required: the obs column holding perturbation labels"
        raise ValueError(msg)
    stats = compute_group_stats(
        adata, perturbation_key=perturbation_key, progress=progress, **stats_kwargs
    )
    info = dict(stats.uns[STATS_UNS])
    parser = LabelParser(separator=str(info["separator"]), controls=tuple(info["controls"]))
    return stats, info, parser


def route_options(
    config: ModelConfig | None, train_config: TrainConfig | None, kwargs: dict[str, Any]
) -> tuple[ModelConfig, TrainConfig, dict[str, Any]]:
    """Send each keyword shortcut to the one object that owns it."""
    from ..stats import compute_group_stats

    model_names = {f.name for f in fields(ModelConfig)}
    train_names = {f.name for f in fields(TrainConfig)}
    stats_names = set(inspect.signature(compute_group_stats).parameters) - {
        "adata",
        "perturbation_key",
        "progress",
    }
    model_kw = {k: v for k, v in kwargs.items() if k in model_names}
    train_kw = {k: v for k, v in kwargs.items() if k in train_names}
    stats_kw = {k: v for k, v in kwargs.items() if k in stats_names}
    unknown = set(kwargs) - model_names - train_names - stats_names
    if unknown:
        msg = (
            f"fit() got unknown option(s) {sorted(unknown)}; options are the fields of "
            f"ModelConfig {sorted(model_names)}, of TrainConfig {sorted(train_names)} and the "
            f"parameters of compute_group_stats {sorted(stats_names)}"
        )
        raise TypeError(msg)
    config = ModelConfig() if config is None else config
    if model_kw:
        for derived in ("weight_decay", "on_target"):
            if "parametrization" in model_kw and derived not in model_kw:
                model_kw[derived] = None  # the new parametrization's default
        config = replace(config, **model_kw)
    train_config = TrainConfig() if train_config is None else train_config
    if train_kw:
        train_config = replace(train_config, **train_kw)
    return config, train_config, stats_kw


#: Parameters whose learning rate ``TrainConfig.w_rate_scale`` scales (the programs ``W``).
W_PARAMETERS = ("w_free", "w_own_free")


def rate_scales(module: torch.nn.Module, tconfig: TrainConfig) -> list[float]:
    """Each parameter's learning-rate multiple, in ``module.parameters()`` order."""
    scale = tconfig.w_rate_scale
    return [scale if name in W_PARAMETERS else 1.0 for name, _ in module.named_parameters()]


def plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def resolve_prior(
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
    from ..priors import check_prior_matrix

    mat = check_prior_matrix(mat, source=desc if prior is None else "the prior= matrix")
    n_edges = (sp.triu(mat, k=1) != 0).sum()
    return mat, f"{desc}; {int(n_edges)} undirected edges"


def training_record(
    tconfig: TrainConfig,
    hist: History,
    terms: Any,
    *,
    stats: AnnData,
    labels: list[str],
    info: dict[str, Any],
    lam: float,
    **extra: Any,
) -> dict[str, Any]:
    """The ``training`` record of a fitted model (settings, history, evidence, data)."""
    from ._deviance import deviance_record

    convergence = hist.convergence(tconfig.converged_tol)
    deviance = deviance_record(stats, float(terms.recon), lam=lam, checks=convergence["checks"])
    convergence["deviance"] = {k: v for k, v in deviance.items() if k != "deviance_explained"}
    return {
        **tconfig.to_dict(),
        "epochs": hist.epochs,
        "final_loss": float(terms.total),
        "final_recon": float(terms.recon),
        "final_graph": float(terms.graph),
        "loss_history": hist.loss,
        "recon_history": hist.recon,
        "graph_history": hist.graph,
        "lr_history": hist.lr,
        "lr_steps": hist.lr_steps,
        "stop_reason": hist.stop_reason,
        "converged": hist.converged,
        "convergence": convergence,
        "deviance_explained": deviance["deviance_explained"],
        "seconds": hist.seconds,
        "seconds_per_epoch": hist.seconds / max(hist.epochs, 1),
        **{k: v for k, v in extra.items() if k not in ("prior",)},
        "prior": extra.get("prior"),
        "n_labels": len(set(labels)),
        "n_cells": None if stats.obs["n_cells"].isna().any() else int(stats.obs["n_cells"].sum()),
        "cells_per_label": {
            str(lab): (None if pd.isna(n) else int(n))
            for lab, n in zip(labels, stats.obs["n_cells"], strict=True)
        },
        "statistics": {k: plain(v) for k, v in info.items()},
    }
