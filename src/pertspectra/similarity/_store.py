"""Similarity results on an AnnData, read back by :mod:`pertspectra.get`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from ..enrich._interpret import h5ad_safe

if TYPE_CHECKING:
    from anndata import AnnData


def store_similarity(
    adata: AnnData,
    *,
    similarity: pd.DataFrame,
    clusters: pd.Series | pd.DataFrame | None = None,
    benchmark: pd.DataFrame | None = None,
    key_added: str = "pertspectra",
) -> None:
    """Store a similarity table, its clusters and pair scores in ``adata.uns``.

    Parameters
    ----------
    adata
        Any AnnData (usually the one the fit was stored on).
    similarity
        Square labels x labels table (:func:`similarity_matrix`).
    clusters
        Label -> cluster (:func:`cluster`), or a table with a ``cluster`` column.
    benchmark
        :func:`benchmark_pairs` output.
    key_added
        Prefix: the slot is ``uns[f"{key_added}_similarity"]``.

    Returns
    -------
    ``None``. The slot holds DataFrames ``similarity``, ``clusters`` (``label`` a column) and
    ``benchmark``.
    """
    if similarity.shape[0] != similarity.shape[1] or list(similarity.index) != list(
        similarity.columns
    ):
        msg = "similarity must be square with the same labels as index and columns"
        raise ValueError(msg)
    block: dict[str, Any] = {"similarity": similarity.copy()}
    if clusters is not None:
        table = clusters.to_frame("cluster") if isinstance(clusters, pd.Series) else clusters
        table = table.copy()
        table.index.name = "label"
        block["clusters"] = h5ad_safe(table.reset_index())
    if benchmark is not None:
        block["benchmark"] = h5ad_safe(benchmark.reset_index(drop=True))
    adata.uns[f"{key_added}_similarity"] = block
