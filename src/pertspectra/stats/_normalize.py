"""The authors' preprocessing: ``normalize_total`` to a target sum, then ``log1p``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ._chunks import check_values, get_matrix, log1p_normalize

if TYPE_CHECKING:
    from anndata import AnnData


def normalize_log1p(
    adata: AnnData,
    *,
    target_sum: float = 1e4,
    layer: str | None = None,
    chunk_size: int = 10_000,
    copy: bool = False,
) -> AnnData | None:
    """Scale each cell to ``target_sum`` total counts and apply ``log1p``, chunk by chunk.

    Equivalent to ``sc.pp.normalize_total(adata, target_sum=target_sum); sc.pp.log1p(adata)``
    but streamed over row chunks (sparse stays sparse). For a backed file, use
    ``compute_group_stats(..., normalize="log1p")`` instead, which normalizes while streaming and
    never writes to the file.

    Parameters
    ----------
    adata
        In-memory AnnData holding raw counts.
    target_sum
        Total counts per cell after scaling.
    layer
        Normalize this layer instead of ``X``.
    chunk_size
        Cells per chunk.
    copy
        Return a normalized copy instead of modifying ``adata``.

    Returns
    -------
    ``None``, or the normalized copy if ``copy``. Writes ``X`` (or the layer) and
    ``uns["log1p"] = {"base": None}`` as scanpy does.
    """
    if adata.isbacked:
        msg = (
            "normalize_log1p needs an in-memory AnnData; use compute_group_stats(normalize='log1p')"
        )
        raise ValueError(msg)
    if copy:
        adata = adata.copy()
    x = get_matrix(adata, layer)
    parts = []
    for start in range(0, adata.n_obs, chunk_size):
        chunk = x[start : start + chunk_size]
        check_values(
            chunk,
            start=start,
            what=f"layer {layer!r}" if layer else "X",
            cells=adata.obs_names,
            genes=adata.var_names,
        )
        parts.append(log1p_normalize(chunk, target_sum).astype(np.float32))
    out = sp.vstack(parts, format="csr") if sp.issparse(x) else np.vstack(parts)
    if layer is None:
        adata.X = out
    else:
        adata.layers[layer] = out
    adata.uns["log1p"] = {"base": None}
    return adata if copy else None
