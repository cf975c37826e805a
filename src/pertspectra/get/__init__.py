"""Stored results as tidy DataFrames (as ``scanpy.get``): what the report and users read.

Results live on the AnnData the fit was stored on: the fit's slots (``varm``, ``var``,
``uns[key]``, see :class:`pertspectra._keys.Keys`), the programs of
:func:`pertspectra.enrich.store_programs` (``uns[f"{key}_programs"]``) and the similarity of
:func:`pertspectra.similarity.store_similarity` (``uns[f"{key}_similarity"]``). Each function
returns a fresh DataFrame (never a view of ``adata``) and raises a one-line ``KeyError``
naming the function that stores what is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import Keys

__all__ = [
    "clusters",
    "loadings",
    "perturbation_loadings",
    "perturbation_programs",
    "program_diagnostics",
    "program_genes",
    "program_terms",
    "recovery",
    "similarity",
    "similarity_benchmark",
]


def _stored(adata: AnnData, slot: str, part: str, writer: str) -> pd.DataFrame:
    block = adata.uns.get(slot)
    if not isinstance(block, dict) or part not in block:
        msg = f"no {part!r} in adata.uns[{slot!r}]: run {writer} first"
        raise KeyError(msg)
    value = block[part]
    return value.copy() if isinstance(value, pd.DataFrame) else pd.DataFrame(value)


def loadings(adata: AnnData, *, key: str = "pertspectra") -> pd.DataFrame:
    """The programs' gene loadings as the authors report them: tidy ``program``, ``gene``, ``weight``.

    ``W`` (``varm[f"{key}_W"]``) scaled by the gene scaling (``var[f"{key}_gene_scale"]``
    plus ``delta``) and renormalized over genes, so each program's weights sum to 1 (genes
    the model did not fit are dropped).
    """
    keys = Keys(key)
    if keys.loadings not in adata.varm or keys.gene_scale not in adata.var:
        msg = f"no fit stored under {key!r}: run pertspectra.fit(adata, ..., store=True) first"
        raise KeyError(msg)
    W = np.asarray(adata.varm[keys.loadings], dtype=np.float64)
    scale = adata.var[keys.gene_scale].to_numpy(dtype=np.float64)
    delta = float(adata.uns.get(keys.uns, {}).get("params", {}).get("delta", 0.001))
    fitted = np.isfinite(scale)
    scaled = W[fitted] * (scale[fitted] + delta)[:, None]
    total = scaled.sum(axis=0, keepdims=True)
    share = np.divide(scaled, total, out=np.zeros_like(scaled), where=total > 0)
    genes = adata.var_names[fitted].to_numpy()
    n_genes, n_programs = share.shape
    return pd.DataFrame(
        {
            "program": np.repeat([f"factor_{k}" for k in range(n_programs)], n_genes),
            "gene": np.tile(genes, n_programs),
            "weight": share.T.ravel(),
        }
    )


def perturbation_loadings(adata: AnnData, *, key: str = "pertspectra") -> pd.DataFrame:
    """The fitted ``P``: tidy ``design_column``, ``program``, ``value``."""
    P = _stored(adata, key, "P", "pertspectra.fit(adata, ..., store=True)")
    tidy = P.stack().rename("value").reset_index()
    tidy.columns = ["design_column", "program", "value"]
    return tidy


def _programs(adata: AnnData, part: str, key: str) -> pd.DataFrame:
    return _stored(adata, f"{key}_programs", part, "pertspectra.enrich.store_programs")


def program_genes(adata: AnnData, *, key: str = "pertspectra") -> pd.DataFrame:
    """Each program's top genes: ``program``, ``rank``, ``gene``, ``weight``, ``name``."""
    return _programs(adata, "genes", key)


def program_terms(adata: AnnData, *, key: str = "pertspectra") -> pd.DataFrame:
    """Programs against gene sets: ``program``, ``gene_set``, ``method``, ``score``, ``p``, ``fdr``, ..."""
    return _programs(adata, "terms", key)


def perturbation_programs(adata: AnnData, *, key: str = "pertspectra") -> pd.DataFrame:
    """Each perturbation's effect on each program: ``label``, ``program``, ``effect``, ``rank``, ..."""
    return _programs(adata, "perturbations", key)


def program_diagnostics(adata: AnnData, *, key: str = "pertspectra") -> pd.DataFrame:
    """One row per program (``program`` a column): size, effective genes, prior agreement, ..."""
    return _programs(adata, "diagnostics", key)


def recovery(adata: AnnData, *, key: str = "pertspectra") -> pd.DataFrame:
    """The recovery test's rows (model and shuffles): ``label``, ``n_known``, ..., ``p_adj``."""
    return _programs(adata, "recovery", key)


def _similarity(adata: AnnData, part: str, key: str) -> pd.DataFrame:
    return _stored(adata, f"{key}_similarity", part, "pertspectra.similarity.store_similarity")


def similarity(adata: AnnData, *, key: str = "pertspectra") -> pd.DataFrame:
    """Tidy similarity of every unordered pair of perturbations: ``label1``, ``label2``, ``similarity``."""
    square = _similarity(adata, "similarity", key)
    a, b = np.triu_indices(len(square), k=1)
    labels = square.index.to_numpy()
    return pd.DataFrame(
        {"label1": labels[a], "label2": labels[b], "similarity": square.to_numpy()[a, b]}
    )


def clusters(adata: AnnData, *, key: str = "pertspectra") -> pd.DataFrame:
    """Each perturbation's cluster: ``label``, ``cluster`` (and ``top_terms`` when named)."""
    return _similarity(adata, "clusters", key)


def similarity_benchmark(adata: AnnData, *, key: str = "pertspectra") -> pd.DataFrame:
    """Scores against known pairs: ``pairs_file``, ``embedding``, ``metric``, ``score``, ..."""
    return _similarity(adata, "benchmark", key)
