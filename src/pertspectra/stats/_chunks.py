"""Row-chunk access to a cell matrix: dense, scipy sparse, backed ``.h5ad`` or Dask."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
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
            present = list(f["layers"].keys()) if "layers" in f else []
            msg = (
                f"layer {layer!r} not found in {adata.filename}; available layers: {present} "
                "(name one with layer= / --layer, or leave it out to read X)"
            )
            raise KeyError(msg)
        elem = f["layers"][layer]
        return sparse_dataset(elem) if isinstance(elem, h5py.Group) else elem
    if layer not in adata.layers:
        msg = (
            f"layer {layer!r} not found; available layers: {list(adata.layers)} "
            "(name one with layer= / --layer, or leave it out to read X)"
        )
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


def check_values(
    chunk: np.ndarray | sp.spmatrix,
    *,
    start: int,
    what: str,
    cells: Sequence[object] | None = None,
    genes: Sequence[object] | None = None,
) -> None:
    """Raise on NaN, infinite or negative entries, naming how many and the first cell and gene.

    Parameters
    ----------
    chunk
        Rows ``start, start + 1, ...`` of the matrix.
    start
        Index of the chunk's first row.
    what
        Name of the matrix (``"X"``, ``"layer 'counts'"``).
    cells, genes
        All cell and gene names (``obs_names``, ``var_names``), to name the first bad entry;
        ``None``: it is named by position only.
    """
    vals = chunk_values(chunk)
    nonfinite = ~np.isfinite(vals)
    if not nonfinite.any() and not (vals < 0).any():
        return
    row, col = _first_bad(chunk, negative=not nonfinite.any())
    cell = f" {cells[start + row]!r}" if cells is not None else ""
    gene = f" {genes[col]!r}" if genes is not None else f" {col}"
    where = (
        f"in cells {start}-{start + chunk.shape[0] - 1} (first at cell {start + row}{cell}, "
        f"gene{gene})"
    )
    if nonfinite.any():
        n_nan = int(np.isnan(vals).sum())
        msg = (
            f"{what} contains NaN or infinite values: {n_nan} NaN and "
            f"{int(nonfinite.sum()) - n_nan} infinite {where}; expression must be finite: fix "
            "or drop those cells or genes, or read another layer (layer= / --layer)"
        )
    else:
        msg = (
            f"{what} contains negative values: {int((vals < 0).sum())} {where}; expression must "
            "be non-negative (scaled or centred data such as sc.pp.scale output cannot be fit): "
            "give log-normalized values, or raw counts with normalize='log1p' (--normalize "
            "log1p), e.g. from another layer (layer= / --layer)"
        )
    raise ValueError(msg)


def _first_bad(chunk: np.ndarray | sp.spmatrix, *, negative: bool) -> tuple[int, int]:
    """Row and column of the first (row-major) NaN/infinite entry, or negative one."""

    def bad(v: np.ndarray) -> np.ndarray:
        return v < 0 if negative else ~np.isfinite(v)

    if sp.issparse(chunk):
        c = sp.csr_matrix(chunk)
        rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
        i = int(np.flatnonzero(bad(c.data))[0])
        return int(rows[i]), int(c.indices[i])
    arr = np.asarray(chunk)
    r, c2 = np.argwhere(bad(arr))[0]
    return int(r), int(c2)


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
