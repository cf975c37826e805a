"""Row-chunk access to a cell matrix: dense, scipy sparse, backed ``.h5ad`` or Dask."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


def is_sparse(x: object) -> TypeGuard[sp.spmatrix]:
    """``sp.issparse`` as a type guard, so a checker narrows ``x`` to the sparse branch."""
    return bool(sp.issparse(x))


def get_matrix(adata: AnnData, layer: str | None) -> Any:
    """The cell matrix to read: ``adata.X`` or a layer, without loading a backed file."""
    if layer is None:
        if adata.X is None:
            msg = "adata.X is empty; pass layer= to name the layer holding expression values"
            raise ValueError(msg)
        return adata.X
    if adata.isbacked:
        import h5py
        from anndata.io import sparse_dataset

        f = adata.file._file if adata.file.is_open else h5py.File(adata.filename, "r")
        if "layers" not in f or layer not in f["layers"]:
            msg = f"layer {layer!r} not found in {adata.filename}"
            raise KeyError(msg)
        elem = f["layers"][layer]
        return sparse_dataset(elem) if isinstance(elem, h5py.Group) else elem
    if layer not in adata.layers:
        msg = f"layer {layer!r} not found; available layers: {list(adata.layers)}"
        raise KeyError(msg)
    return adata.layers[layer]


def is_dask(x: Any) -> bool:
    """Whether ``x`` is a Dask array (checked without importing Dask)."""
    return type(x).__module__.startswith("dask.")


def iter_row_chunks(
    x: Any, chunk_size: int
) -> Iterator[tuple[int, int, np.ndarray | sp.csr_matrix]]:
    """Yield ``(start, stop, chunk)`` with ``chunk`` a dense array or CSR matrix."""
    n = x.shape[0]
    csc = sp.issparse(x) and x.format == "csc"
    if csc:
        logger.warning("X is CSC; row chunks of a CSC matrix are slow, convert to CSR for speed")
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        chunk = x[start:stop]
        if sp.issparse(chunk):
            chunk = sp.csr_matrix(chunk)
        elif hasattr(chunk, "to_memory"):  # anndata backed sparse views
            chunk = sp.csr_matrix(chunk.to_memory())
        else:
            chunk = np.asarray(chunk)
        yield start, stop, chunk


def chunk_values(chunk: np.ndarray | sp.spmatrix) -> np.ndarray:
    """The stored values of a chunk (non-zeros for sparse)."""
    return chunk.data if is_sparse(chunk) else np.asarray(chunk).ravel()


def check_values(chunk: np.ndarray | sp.spmatrix, *, start: int, what: str) -> None:
    """Raise on NaN, infinite or negative entries, naming the first offending cell."""
    vals = chunk_values(chunk)
    bad = ~np.isfinite(vals)
    if bad.any() or (vals < 0).any():
        dense_bad = _bad_rows(chunk)
        kind = "NaN or infinite" if bad.any() else "negative"
        msg = (
            f"{what} contains {kind} values (first at cell {start + int(dense_bad[0])}); "
            "expression must be finite and non-negative"
        )
        raise ValueError(msg)


def _bad_rows(chunk: np.ndarray | sp.spmatrix) -> np.ndarray:
    if sp.issparse(chunk):
        c = sp.csr_matrix(chunk)
        bad = ~np.isfinite(c.data) | (c.data < 0)
        rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
        return rows[bad]
    arr = np.asarray(chunk)
    return np.where((~np.isfinite(arr) | (arr < 0)).any(axis=1))[0]


def looks_like_counts(chunk: np.ndarray | sp.spmatrix) -> tuple[bool, float]:
    """Heuristic: all-integer values with a maximum above 30 are raw counts.

    Log-normalized values (``log1p`` of normalized counts) are non-integer and rarely exceed 12.
    Returns the verdict and the maximum value seen.
    """
    vals = chunk_values(chunk)
    if vals.size == 0:
        return False, 0.0
    vmax = float(vals.max())
    integral = bool(np.all(np.mod(vals, 1) == 0))
    return integral and vmax > 30, vmax


def log1p_normalize(
    chunk: np.ndarray | sp.spmatrix, target_sum: float
) -> np.ndarray | sp.csr_matrix:
    """``log1p(target_sum * x / rowsum(x))`` of one chunk (scanpy's normalize_total + log1p)."""
    if sp.issparse(chunk):
        c = sp.csr_matrix(chunk, dtype=np.float64, copy=True)
        totals = np.asarray(c.sum(axis=1)).ravel()
        scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
        c.data *= np.repeat(scale, np.diff(c.indptr))
        np.log1p(c.data, out=c.data)
        return c
    arr = np.asarray(chunk, dtype=np.float64)
    totals = arr.sum(axis=1)
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    return np.log1p(arr * scale[:, None])


def accumulate(
    codes: np.ndarray,
    chunk: np.ndarray | sp.csr_matrix,
    n_groups: int,
    sums: np.ndarray,
    sq: np.ndarray,
) -> None:
    """Add one chunk's per-group sums and sums of squares into ``sums`` and ``sq`` (in place).

    ``codes`` gives each row's group (-1: skipped).
    """
    keep = codes >= 0
    if not keep.any():
        return
    rows = np.flatnonzero(keep)
    ind = sp.csr_matrix((np.ones(rows.size), (codes[rows], rows)), shape=(n_groups, chunk.shape[0]))
    if is_sparse(chunk):
        c = chunk.astype(np.float64)
        sums += (ind @ c).toarray()
        c.data **= 2
        sq += (ind @ c).toarray()
    else:
        c = np.asarray(chunk, dtype=np.float64)
        sums += ind @ c
        sq += ind @ (c * c)
