"""The prior adjacency of the graph term and its tiling plan.

:class:`GraphPrior` stores the upper-triangle edges of the prior gene-gene adjacency and caches,
per tiling, device and dtype, the edges sorted by tile (:class:`_EdgePlan`). The tile-size helpers
used by the blocked kernel (:mod:`._graph_kernel`) live here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["GraphPrior", "default_block_size"]


@dataclass(frozen=True)
class _EdgePlan:
    """Edges sorted by tile, with flat offsets into each tile buffer."""

    flat: torch.Tensor  # (E,) int64: local row * tile width + local col
    weight: torch.Tensor  # (E,) the edge weights A_jk, in the working dtype
    bounds: dict[tuple[int, int], tuple[int, int]]  # (row start, col start) -> slice of edges


class GraphPrior:
    """A prior gene-gene adjacency, stored as its upper-triangle edges.

    Parameters
    ----------
    rows, cols
        Integer tensors of the edges ``j < k`` (each unordered pair once).
    values
        Edge weights in ``(0, 1]`` (zeros are allowed and contribute nothing).
    n_genes
        Number of genes ``g``.

    Notes
    -----
    Build it with :meth:`from_scipy`, which validates the matrix (it does not symmetrise it: an
    asymmetric matrix is an error). The constructor only checks shapes and index ranges.
    :func:`graph_nll` caches a tiling plan of the edges on this object, per block size, device
    and dtype, so reuse one prior across epochs.
    """

    def __init__(
        self, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n_genes: int
    ) -> None:
        rows = torch.as_tensor(rows)
        cols = torch.as_tensor(cols)
        values = torch.as_tensor(values)
        if not (rows.ndim == cols.ndim == values.ndim == 1):
            msg = "rows, cols and values must be 1-d tensors"
            raise ValueError(msg)
        if not (rows.shape == cols.shape == values.shape):
            msg = f"rows, cols and values differ in length: {rows.shape[0]}, {cols.shape[0]}, {values.shape[0]}"
            raise ValueError(msg)
        if not values.is_floating_point():
            msg = f"values must be floating point, got {values.dtype}"
            raise ValueError(msg)
        n_genes = int(n_genes)
        if n_genes < 1:
            msg = f"n_genes must be positive, got {n_genes}"
            raise ValueError(msg)
        rows = rows.to(torch.int64)
        cols = cols.to(torch.int64)
        if rows.numel() and bool(((rows < 0) | (rows >= cols) | (cols >= n_genes)).any()):
            msg = "edges must satisfy 0 <= row < col < n_genes (upper triangle, no diagonal)"
            raise ValueError(msg)
        self.rows = rows
        self.cols = cols
        self.values = values
        self._n_genes = n_genes
        self._plans: dict[tuple[Any, ...], _EdgePlan] = {}

    @classmethod
    def from_scipy(
        cls,
        A: Any,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> GraphPrior:
        """Build from a (sparse or dense) symmetric adjacency matrix.

        Parameters
        ----------
        A
            A ``g x g`` scipy sparse matrix/array (or anything :func:`scipy.sparse.csr_array`
            accepts), symmetric, with weights in ``[0, 1]``. The diagonal is dropped, as the
            authors do.
        dtype, device
            Where the edge weights live.

        Raises
        ------
        ValueError
            If ``A`` is not square or not 2-d, contains NaN/inf, has weights outside
            ``[0, 1]``, or is not symmetric.
        """
        import scipy.sparse as sp

        try:
            mat = sp.csr_array(A)
        except Exception as err:
            msg = f"cannot read the prior adjacency as a sparse matrix: {err}"
            raise ValueError(msg) from err
        if mat.ndim != 2 or mat.shape[0] != mat.shape[1]:
            msg = f"the prior adjacency must be a square matrix, got shape {mat.shape}"
            raise ValueError(msg)
        if not np.issubdtype(mat.dtype, np.number) or np.issubdtype(mat.dtype, np.complexfloating):
            msg = f"the prior adjacency must be real-valued, got dtype {mat.dtype}"
            raise ValueError(msg)
        mat = mat.astype(np.float64)
        mat.sum_duplicates()
        data = mat.data
        if not np.all(np.isfinite(data)):
            msg = "the prior adjacency contains NaN or infinite values"
            raise ValueError(msg)
        if data.size and (data.min() < 0 or data.max() > 1):
            msg = (
                "prior adjacency weights must lie in [0, 1] (e.g. STRING scores / 1000); "
                f"got range [{data.min():g}, {data.max():g}]"
            )
            raise ValueError(msg)
        mat.setdiag(0)
        mat.eliminate_zeros()
        asym = abs(mat - mat.T)
        if asym.nnz and asym.max() > 1e-6:
            msg = (
                "the prior adjacency must be symmetric; largest |A - A.T| is "
                f"{asym.max():g} (symmetrise it, e.g. with A.maximum(A.T))"
            )
            raise ValueError(msg)
        upper = sp.triu(mat, k=1).tocoo()
        order = np.lexsort((upper.col, upper.row))
        rows = torch.from_numpy(np.asarray(upper.row[order], dtype=np.int64))
        cols = torch.from_numpy(np.asarray(upper.col[order], dtype=np.int64))
        values = torch.from_numpy(np.asarray(upper.data[order], dtype=np.float64))
        return cls(rows, cols, values.to(dtype), int(mat.shape[0])).to(device=device)

    @property
    def n_genes(self) -> int:
        """Number of genes ``g``."""
        return self._n_genes

    @property
    def n_edges(self) -> int:
        """Number of undirected edges (upper-triangle entries)."""
        return int(self.rows.numel())

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the edge weights."""
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        """Device of the edge tensors."""
        return self.values.device

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> GraphPrior:
        """Return a copy on ``device`` with weights in ``dtype`` (self if nothing changes)."""
        device = self.device if device is None else torch.device(device)
        dtype = self.dtype if dtype is None else dtype
        if device == self.device and dtype == self.dtype:
            return self
        return GraphPrior(
            self.rows.to(device), self.cols.to(device), self.values.to(device, dtype), self._n_genes
        )

    def to_dense(self) -> torch.Tensor:
        """The full symmetric ``g x g`` adjacency (for tests and small problems only)."""
        g = self._n_genes
        out = torch.zeros((g, g), dtype=self.dtype, device=self.device)
        out[self.rows, self.cols] = self.values
        out[self.cols, self.rows] = self.values
        return out

    def __repr__(self) -> str:
        return f"GraphPrior(n_genes={self.n_genes}, n_edges={self.n_edges}, dtype={self.dtype}, device={self.device})"

    def _plan(
        self, block: int, col_block: int, device: torch.device, dtype: torch.dtype
    ) -> _EdgePlan:
        """Sort the edges by tile (cached per tiling, device and dtype)."""
        key = (block, col_block, str(device), dtype)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        rows = self.rows.cpu()
        cols = self.cols.cpu()
        r0 = torch.div(rows, block, rounding_mode="floor") * block  # row-block start
        c_idx = torch.div(cols - r0, col_block, rounding_mode="floor")
        c0 = r0 + c_idx * col_block  # tile column start
        g = self._n_genes
        width = torch.clamp(g - c0, max=col_block)
        flat = (rows - r0) * width + (cols - c0)
        # sort by (row block, column chunk); stable so the order inside a tile is kept
        tile_key = (r0 // block) * (g // col_block + 2) + c_idx
        order = torch.argsort(tile_key, stable=True)
        flat, tile_key, r0s, c0s = flat[order], tile_key[order], r0[order], c0[order]
        bounds: dict[tuple[int, int], tuple[int, int]] = {}
        if tile_key.numel():
            _, counts = torch.unique_consecutive(tile_key, return_counts=True)
            starts = torch.cumsum(counts, 0) - counts
            for s, n in zip(starts.tolist(), counts.tolist(), strict=True):
                bounds[(int(r0s[s]), int(c0s[s]))] = (s, s + n)
        plan = _EdgePlan(
            flat=flat.to(device),
            weight=self.values.cpu()[order].to(device=device, dtype=dtype),
            bounds=bounds,
        )
        self._plans[key] = plan
        return plan


# --------------------------------------------------------------------------------------------
# tile sizes
# --------------------------------------------------------------------------------------------


def default_block_size(n_genes: int, n_factors: int, device: torch.device | str) -> int:
    """Rows per tile: ``min(g, 256)`` on CPU, ``min(g, 4096)`` on CUDA.

    With the columns per tile of :func:`_default_col_block` a CPU tile is at most
    ``256 x 4096`` (4 MiB in float32) and a CUDA tile at most ``4096 x 4096`` (64 MiB in
    float32); the pass holds two tiles when gradients are needed.

    Parameters
    ----------
    n_genes, n_factors
        ``g`` and ``L``.
    device
        Where the computation runs.
    """
    del n_factors  # the tile size does not depend on L; L only changes GEMM efficiency a little
    if torch.device(device).type == "cuda":
        return max(1, min(n_genes, 4096))
    return max(1, min(n_genes, 256))


def _default_col_block(block: int, device: torch.device) -> int:
    """Columns per tile: ``block`` on CUDA (square tiles), ``16 * block`` on CPU (fewer ops).

    The kernel clips the width to the genes left in the row (``min(col_block, g - c0)``).
    """
    if device.type == "cuda":
        return block
    return 16 * block


def _round_up(n: int, m: int) -> int:
    """``n`` rounded up to a multiple of ``m``."""
    return -(-n // m) * m
