"""Writing a fitted model's results into an AnnData (``fit(..., store=True)``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from anndata import AnnData

    from ..model._fitted import FittedModel

#: ``training`` entries too long for ``adata.uns`` (per-epoch or per-label), or keyed by file
#: path (``inputs``: the CLI's input files and their SHA-256); kept in the model.
HISTORY_KEYS = (
    "inputs",
    "loss_history",
    "recon_history",
    "graph_history",
    "lr_history",
    "convergence",
    "statistics",
    "cells_per_label",
)


def store_results(adata: AnnData, model: FittedModel, *, key_added: str = "pertspectra") -> None:
    """Write a model's results into ``adata`` (aligned by gene name and label).

    Parameters
    ----------
    adata
        Cell-level or perturbation-level AnnData with the model's genes (others get NaN).
    model
        A fitted model.
    key_added
        Prefix of the slots (:class:`~pertspectra._keys.Keys`).

    Returns
    -------
    ``None``. Writes ``varm[f"{key_added}_W"]`` (genes x factors),
    ``var[f"{key_added}_gene_scale"]``, ``uns[key_added]`` (``params``, ``training`` summary
    without the loss history, ``versions``, ``P`` as a design columns x factors DataFrame) and,
    when ``adata``'s ``obs_names`` are the model's labels (a perturbation-level AnnData),
    ``obsm[f"{key_added}_P"]``: each label's loadings ``h_c P`` (labels x factors).
    """
    import pandas as pd

    from .._keys import Keys

    keys = Keys(key_added)
    idx = {g: i for i, g in enumerate(model.genes)}
    pos = np.array([idx.get(str(g), -1) for g in adata.var_names])
    W = np.full((adata.n_vars, model.W.shape[0]), np.nan)
    W[pos >= 0] = model.W.T[pos[pos >= 0]]
    scale = np.full(adata.n_vars, np.nan)
    scale[pos >= 0] = model.gene_scale[pos[pos >= 0]]
    adata.varm[keys.loadings] = W
    adata.var[keys.gene_scale] = scale
    factors = model.factor_names
    known = set(model.design.labels)
    labels = [str(x) for x in adata.obs_names]
    if labels and all(lab in known for lab in labels):
        adata.obsm[keys.perturbation_loadings] = model.design.matrix(labels) @ model.P
    summary = {k: v for k, v in model.training.items() if k not in HISTORY_KEYS}
    adata.uns[keys.uns] = {
        "params": {k: ("learned" if v is None else v) for k, v in model.config.to_dict().items()}
        | {"encoding": model.design.encoding},
        "training": {k: ("" if v is None else v) for k, v in summary.items()},
        "versions": {k: str(v) for k, v in model.versions.items()},
        "P": pd.DataFrame(
            model.P,
            index=pd.Index(model.design.columns, name="design_column"),
            columns=pd.Index(factors, name="factor"),
        ),
    }
