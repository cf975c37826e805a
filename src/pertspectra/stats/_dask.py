"""Group sums of a Dask array: per-block partial sums, then a tree sum on the workers.

The cell matrix never travels to the client: each task reads one row block, validates it,
normalizes it (``normalize="log1p"``) and reduces it to ``labels x genes`` sums and sums of
squares (float64), exactly as the in-memory path does chunk by chunk; partial results are then
added in a tree (``split_every`` at a time) on the workers, and only the final two
``labels x genes`` tables come back. With a :class:`distributed.Client` active, ``compute`` runs
on its cluster; otherwise on Dask's default (threaded) scheduler.

Blocks may be dense (numpy) or scipy sparse (CSR/CSC, e.g. from
:func:`anndata.experimental.read_elem_lazy` on a sparse ``X``); any other array type is converted
with ``numpy.asarray``. Several column chunks are merged into one (normalization needs whole
rows), and row chunks smaller than ``chunk_size`` are merged (never split) so that each task
amortizes its ``labels x genes`` partial.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import scipy.sparse as sp

from ._chunks import accumulate, check_values, log1p_normalize, looks_like_counts

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

#: Partial results added per task in the tree sum.
SPLIT_EVERY = 8


class _StoreGroup(Protocol):
    """What :func:`read_dask` uses of a zarr group or an h5py file."""

    def __contains__(self, key: str, /) -> bool: ...

    def __getitem__(self, key: str, /) -> Any: ...


def _open_store(path: Path) -> tuple[_StoreGroup, Any]:
    """The root group of a zarr store (directory) or ``.h5ad`` file, and the h5py file to close.

    The second item is ``None`` for a zarr store (h5py ships no type information, hence ``Any``).
    """
    if path.is_dir():
        import zarr

        return zarr.open_group(str(path), mode="r"), None
    import h5py

    h5file = h5py.File(path, "r")
    return h5file, h5file


def as_chunk(block: Any) -> np.ndarray | sp.csr_matrix:
    """A block as a numpy array or a CSR matrix (scipy sparse, ``sparse.COO``, CuPy, ...)."""
    if sp.issparse(block):
        return sp.csr_matrix(block)
    if hasattr(block, "to_scipy_sparse"):  # pydata/sparse
        return sp.csr_matrix(block.to_scipy_sparse())
    if hasattr(block, "get") and type(block).__module__.startswith("cupy"):
        return np.asarray(block.get())
    return np.asarray(block)


def coarsen_row_chunks(chunks: tuple[int, ...], min_rows: int) -> tuple[int, ...]:
    """Merge consecutive row chunks until each holds at least ``min_rows`` rows (never split).

    A last group smaller than ``min_rows`` is merged into the one before it.
    """
    out: list[int] = []
    acc = 0
    for c in chunks:
        acc += int(c)
        if acc >= min_rows:
            out.append(acc)
            acc = 0
    if acc:
        if out:
            out[-1] += acc
        else:
            out.append(acc)
    return tuple(out)


def _block_partial(
    block: Any,
    codes: np.ndarray,
    n_groups: int,
    start: int,
    normalize: str | None,
    target_sum: float,
    what: str,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Validate, normalize and reduce one row block (runs on a worker)."""
    chunk = as_chunk(block)
    check_values(chunk, start=start, what=what)
    if not (codes >= 0).any():
        return None
    if normalize == "log1p":
        chunk = log1p_normalize(chunk, target_sum)
    n_genes = chunk.shape[1]
    sums = np.zeros((n_groups, n_genes))
    sq = np.zeros((n_groups, n_genes))
    accumulate(codes, chunk, n_groups, sums, sq)
    return sums, sq


def _sum_partials(
    *parts: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Add partial results (runs on a worker); ``None`` stands for an empty block."""
    kept = [p for p in parts if p is not None]
    if len(kept) <= 1:
        return kept[0] if kept else None
    sums = kept[0][0] + kept[1][0]  # new arrays: inputs are never modified
    sq = kept[0][1] + kept[1][1]
    for p in kept[2:]:
        sums += p[0]
        sq += p[1]
    return sums, sq


def _first_block_check(block: Any, what: str) -> tuple[bool, float]:
    """Value check and counts heuristic of the first block (runs on a worker)."""
    chunk = as_chunk(block)
    check_values(chunk, start=0, what=what)
    return looks_like_counts(chunk)


def dask_group_sums(
    x: Any,
    codes: np.ndarray,
    n_groups: int,
    *,
    normalize: str | None,
    target_sum: float,
    what: str = "X",
    chunk_size: int = 10_000,
    split_every: int = SPLIT_EVERY,
    check_first: Callable[[bool, float], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Per-group sums and sums of squares of a Dask array, reduced on the workers.

    Parameters
    ----------
    x
        Cells x genes Dask array (numpy or scipy sparse blocks).
    codes
        Group index of each cell (``-1``: the cell is dropped), length ``x.shape[0]``.
    n_groups
        Number of groups.
    normalize
        ``None`` or ``"log1p"`` (per cell: scale to ``target_sum`` total counts, then ``log1p``).
    target_sum
        Total counts per cell for ``normalize="log1p"``.
    what
        Name of the matrix in error messages (``"X"``, ``"layer 'counts'"``).
    chunk_size
        Minimum rows per task: smaller row chunks are merged (never split).
    split_every
        Partial results added per task of the tree sum.
    check_first
        Called with the counts verdict of the first block *before* the full pass is launched, so
        that a wrong-input error (e.g. raw counts without ``normalize``) comes at once.

    Returns
    -------
    sums, sq
        ``n_groups x genes`` float64 sums and sums of squares (after normalization).
    vmax
        Largest value of the first block (before normalization).
    counts_like
        Whether the first block looks like raw counts (:func:`looks_like_counts`).

    Raises
    ------
    ValueError
        If ``codes`` does not match the rows, or on NaN, infinite or negative values (naming the
        first offending cell of the block where it was found).
    """
    import dask

    if x.ndim != 2:
        msg = f"expected a 2-d cells x genes Dask array, got {x.ndim} dimensions"
        raise ValueError(msg)
    codes = np.asarray(codes)
    n_obs, n_genes = (int(s) for s in x.shape)
    if codes.shape != (n_obs,):
        msg = f"codes has shape {codes.shape}, expected ({n_obs},) (one group index per cell)"
        raise ValueError(msg)
    if split_every < 2:
        msg = f"split_every must be >= 2, got {split_every}"
        raise ValueError(msg)
    if n_obs == 0:
        return np.zeros((n_groups, n_genes)), np.zeros((n_groups, n_genes)), 0.0, False

    if len(x.chunks[1]) > 1:
        logger.info(
            "merging %d column chunks into one (rows are normalized whole)", len(x.chunks[1])
        )
    rows = coarsen_row_chunks(x.chunks[0], max(1, int(chunk_size)))
    if rows != x.chunks[0] or len(x.chunks[1]) > 1:
        x = x.rechunk((rows, (n_genes,)))
    logger.info("Dask pass: %d row blocks of ~%d cells", len(rows), rows[0])

    blocks = x.to_delayed().ravel()
    counts_like, vmax = dask.compute(dask.delayed(_first_block_check)(blocks[0], what))[0]
    if check_first is not None:
        check_first(counts_like, vmax)

    bounds = np.concatenate([[0], np.cumsum(rows)])
    fn = dask.delayed(_block_partial, pure=True)
    parts = [
        fn(
            blk,
            codes[bounds[i] : bounds[i + 1]],
            n_groups,
            int(bounds[i]),
            normalize,
            target_sum,
            what,
        )
        for i, blk in enumerate(blocks)
    ]
    add = dask.delayed(_sum_partials, pure=True)
    while len(parts) > 1:
        parts = [add(*parts[i : i + split_every]) for i in range(0, len(parts), split_every)]
    total = dask.compute(parts[0])[0]
    if total is None:  # no kept cell at all
        return np.zeros((n_groups, n_genes)), np.zeros((n_groups, n_genes)), vmax, counts_like
    return total[0], total[1], vmax, counts_like


def read_dask(
    path: str | Path,
    *,
    layers: bool | list[str] = True,
    chunk_size: int = 10_000,
) -> AnnData:
    """Open a ``.zarr`` store or ``.h5ad`` file with ``X`` (and layers) as Dask arrays.

    ``obs``, ``var``, ``uns`` and ``varp`` are read into memory (they are small); the cell
    matrices stay on disk as Dask arrays of ``chunk_size`` rows and all columns (scipy CSR
    blocks for a sparse matrix, numpy blocks for a dense one), built with
    :func:`anndata.experimental.read_elem_lazy`. This is how a zarr store is read out of core:
    anndata 0.12 has no backed mode for zarr, and :func:`anndata.experimental.read_lazy` also
    needs ``xarray`` (and returns a lazy ``obs``).

    Parameters
    ----------
    path
        A zarr store (directory) or an ``.h5ad`` file.
    layers
        ``True``: every layer; ``False``: none; or a list of layer names.
    chunk_size
        Rows per Dask chunk.

    Returns
    -------
    An AnnData whose ``X``/layers are Dask arrays; pass it to
    :func:`~pertspectra.stats.compute_group_stats`, which then reduces on the active Dask
    scheduler (a :class:`distributed.Client` if one is open).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    KeyError
        If a requested layer is missing.
    """
    import anndata as ad
    from anndata.experimental import read_elem_lazy
    from anndata.io import read_elem

    path = Path(path)
    if not path.exists():
        msg = f"{path} not found"
        raise FileNotFoundError(msg)
    root, h5file = _open_store(path)
    chunks = (max(1, int(chunk_size)), -1)

    def lazy(elem: Any) -> Any:
        return read_elem_lazy(elem, chunks=chunks)

    def small(key: str) -> Any:
        return read_elem(root[key]) if key in root else None

    present = list(root["layers"].keys()) if "layers" in root else []
    if layers is True:
        names = present
    elif layers is False:
        names = []
    else:
        names = list(layers)
        missing = [n for n in names if n not in present]
        if missing:
            msg = f"layers {missing} not found in {path}; available: {present}"
            raise KeyError(msg)
    try:
        return ad.AnnData(
            X=lazy(root["X"]) if "X" in root else None,
            obs=small("obs"),
            var=small("var"),
            uns=small("uns") or {},
            varp=small("varp") or {},
            layers={n: lazy(root["layers"][n]) for n in names},
        )
    finally:
        if h5file is not None:
            h5file.close()  # the lazy h5 arrays reopen the file by name in each task
