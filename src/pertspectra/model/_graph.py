r"""Spectra's graph likelihood, computed exactly in blocks of the gene-gene matrix.

The math
--------
For gene loadings :math:`W` (:math:`L \times g`, each column on the simplex), a symmetric factor
affinity :math:`B` (:math:`L \times L`, entries in :math:`(0, 1)`), a background rate
:math:`\kappa \in (0, 1)` and a fixed non-edge rate :math:`\rho \in (0, 1)`, let

.. math::

    M = W^\top B W \quad (g \times g), \qquad a = (1-\kappa)(1-\rho),

    p_{jk} = a M_{jk} + (1-\rho)\kappa \;=\; \Pr[A_{jk} = 1], \qquad
    q_{jk} = a (1 - M_{jk}) + \rho \;=\; 1 - p_{jk}.

For a prior adjacency :math:`A` (symmetric, zero diagonal, weights in :math:`[0, 1]`) the loss is
the Bernoulli negative log-likelihood summed over *ordered* pairs, as the authors compute it:

.. math::

    f = -\sum_{j \ne k} \Big[ A_{jk}^2 \log p_{jk} + (1 - A_{jk}) \log q_{jk} \Big]
      = \underbrace{-\sum_{j \ne k} \log q_{jk}}_{\text{dense, } O(g^2 L)}
        \;+\; \underbrace{\sum_{j<k,\ A_{jk} > 0} 2\big[-A_{jk}^2 \log p_{jk}
              + A_{jk} \log q_{jk}\big]}_{\text{edges, } O(E)}.

``A = None`` is the all-zero adjacency (every pair a non-edge).

Gradients. Write :math:`G_{jk} = \partial f / \partial M_{jk}` (symmetric): on a non-edge
:math:`a / q_{jk}`, on an edge :math:`a(1-A_{jk})/q_{jk} - a A_{jk}^2 / p_{jk}`.
With :math:`B` and :math:`G` symmetric and :math:`V = G W^\top` (:math:`g \times L`),

.. math::

    \frac{\partial f}{\partial W} = 2 B V^\top, \qquad
    \frac{\partial f}{\partial B} = W G W^\top = W V, \qquad
    \frac{\partial f}{\partial \kappa} = \frac{1-\rho}{a} \sum_{j\ne k} G_{jk}(1 - M_{jk})
      = \frac{1-\rho}{a}\Big(\mathbf 1^\top G \mathbf 1 - \langle B, W V\rangle\Big),

the last because :math:`p` depends on :math:`(M, \kappa)` only through
:math:`p = (1-\rho)[(1-\kappa) M + \kappa]`, so :math:`\partial_\kappa = \partial_M \cdot
(1-\rho)(1-M)/a` term by term, and :math:`\sum G \odot M = \operatorname{tr}(B W G W^\top)`.

The algorithm
-------------
The :math:`g \times g` matrices are never formed. Genes are cut into row blocks :math:`I` of
``block_size`` rows; for the row block starting at gene :math:`r_0` only the columns
:math:`k \ge r_0` (the upper triangle) are computed, cut into column chunks :math:`J` of
``col_block`` columns starting at :math:`r_0` (``col_block = block_size`` on CUDA, so the tiles
are square and aligned with the row blocks; ``16 * block_size`` on CPU, for fewer, larger
operations; the last chunk is narrower). Tiles are computed one at a time. The first tile of each
row block holds the diagonal square; there the lower triangle and the diagonal are zeroed in
:math:`\log q` and :math:`R` (``triu_``, as if :math:`q` were 1 there), so every counted entry
is one unordered pair :math:`j < k`, counted twice in the value and in both
:math:`V_I \mathrel{+}= R\, W_J^\top` and :math:`V_J \mathrel{+}= R^\top W_I^\top`. Per tile:

1. one GEMM writes :math:`q = (a + \rho) - W_I^\top (a B W)_J` into a tile buffer pre-filled
   with the constant (``addmm_``); when :math:`\rho` is within 1024 machine epsilons of 0,
   :math:`q` is clamped at its exact lower bound :math:`\rho`, which rounding could cross;
2. the edges of the tile are gathered from :math:`q` (:math:`p = 1 - q`); where that
   :math:`p` is below :math:`2^{13}` machine epsilons (float32: 1e-3; :math:`\rho` near 1,
   :math:`\kappa` near 0), where :math:`1 - q` has lost its precision, it is recomputed as
   :math:`(1-\rho)\kappa + W_j^\top (a B W)_k`, a sum of non-negative terms;
3. :math:`R = 1/q` into a second buffer, then ``log_`` in place and a sum (accumulated in
   float64 across tiles);
4. the edge corrections :math:`-(A^2/p + A/q)` are added to :math:`R` at the edges, and
   :math:`\sum R` is taken (for :math:`\mathbf 1^\top G \mathbf 1 = a \sum R`);
5. two GEMMs accumulate :math:`V / a`.

Value and gradients come out of the same pass when a gradient is needed (training always needs
it); the backward only scales the stored gradients. Without gradients only steps 1-3 (without
:math:`R`) run. Cost: about :math:`1.5\, g^2 L` multiply-adds with gradients (half of
:math:`M` plus two half-products for :math:`V`), :math:`0.5\, g^2 L` without, plus three
elementwise passes over :math:`g^2/2` entries; memory: two tiles, :math:`W^\top`, :math:`-aBW`
and :math:`V` (each :math:`g \times L`, zero-padded), and the edges (plus, only where an edge's
:math:`p` is recomputed, :math:`(aBW)^\top` and a gather of at most 16,384 edges x :math:`L`).

Small ``g`` (at most ``SQUARE_MAX_GENES`` = 400 genes, and :math:`g^2` within one tile's
``block_size x col_block``; Perturb-seq panels): the whole matrix is one square tile with both
triangles and a zero diagonal, the edge corrections applied at :math:`(j, k)` and
:math:`(k, j)`, and :math:`V / a = R\, W^\top` one GEMM. That computes each pair twice, but
as two :math:`g \times g` products instead of three over the tiles' area (a third fewer
multiply-adds where ``g`` fits one row block, a quarter at g = 299 with 256-row tiles) and
without per-tile operations, which is what a small pass costs: 0.73 vs 0.87 ms for a forward
and backward at g = 299, L = 29, and 2.9 vs 1.8 ms at g = 500, L = 50 (1 thread, AMD EPYC),
hence the limit.

Precision: tile sums are accumulated in float64 across tiles; in float32 the value and gradients
agree with a float64 evaluation as well as the naive float32 autograd version does (measured at
g = 5000, L = 200, 200k edges: relative error of the value 1.6e-8 vs 1.2e-7 naive; of
the W, B, kappa gradients 1.7e-5, 1.0e-7, 7.8e-8, the same as naive).
"""

from __future__ import annotations

import torch

from ._graph_dense import graph_nll_dense
from ._graph_kernel import _blocked, _GraphNLL, tile_precision
from ._graph_prior import GraphPrior, _default_col_block, default_block_size
from ._graph_prior import _round_up as _round_up  # re-exported for existing imports

__all__ = [
    "GraphPrior",
    "default_block_size",
    "graph_nll",
    "graph_nll_dense",
    "tile_precision",
]


def graph_nll(
    W: torch.Tensor,
    B: torch.Tensor,
    kappa: torch.Tensor | float,
    *,
    rho: float,
    prior: GraphPrior | None,
    block_size: int | None = None,
) -> torch.Tensor:
    r"""Spectra's graph negative log-likelihood, exact, without forming ``g x g`` matrices.

    Parameters
    ----------
    W
        Gene loadings, ``L x g``, each column on the simplex (gradients flow).
    B
        Factor affinities, ``L x L``, symmetric, entries in ``(0, 1)`` (gradients flow).
    kappa
        Background edge rate in ``(0, 1)``: a 0-dim tensor (may require grad) or a float.
    rho
        Fixed non-edge rate in ``(0, 1)``.
    prior
        The prior adjacency, or ``None`` for an all-zero adjacency (every pair a non-edge).
    block_size
        Rows per tile; default :func:`default_block_size` (``min(g, 256)`` on CPU,
        ``min(g, 4096)`` on CUDA). A tile is ``min(block_size, g)`` rows by ``min(col_block, g)``
        columns, with ``col_block = 16 * block_size`` on CPU and ``block_size`` on CUDA (square
        tiles). Peak extra memory is two such tiles (one without gradients), plus ``g * K``
        elements each for the zero-padded :math:`W^\top`, :math:`-aBW` and, with gradients, the
        accumulator :math:`V` (``K`` is ``L`` rounded up to a multiple of 8), plus the stored
        gradients.

    Returns
    -------
    torch.Tensor
        0-dim loss :math:`-\sum_{j\ne k}[A_{jk}^2 \log p_{jk} + (1-A_{jk})\log q_{jk}]` in the
        dtype of ``W``. It is differentiable (once) wrt ``W``, ``B`` and ``kappa``; when a
        gradient is needed, value and gradients are computed in the same pass.

    Notes
    -----
    No global torch state is changed (TF32, thread counts, ...): on CUDA in float32 the tile
    products follow the caller's ``torch.backends.cuda.matmul.allow_tf32`` /
    :func:`torch.set_float32_matmul_precision` setting (exact float32 by default). Inside
    :func:`tile_precision` (the training steps of a fit with ``matmul_precision`` set) a pass
    with gradients runs at that precision instead, and the caller's setting is restored.

    Raises
    ------
    ValueError
        On inconsistent shapes, dtypes, devices, ``rho`` outside ``(0, 1)``, a non-symmetric
        ``B`` or a prior for a different number of genes.
    """
    if W.ndim != 2:
        msg = f"W must be L x g, got shape {tuple(W.shape)}"
        raise ValueError(msg)
    L, g = W.shape
    if not W.is_floating_point() or W.dtype not in (torch.float32, torch.float64):
        msg = f"W must be float32 or float64, got {W.dtype}"
        raise ValueError(msg)
    if B.shape != (L, L):
        msg = f"B must be {L} x {L} to match W ({L} x {g}), got shape {tuple(B.shape)}"
        raise ValueError(msg)
    if B.dtype != W.dtype or B.device != W.device:
        msg = f"W and B must share dtype and device, got {W.dtype}/{W.device} and {B.dtype}/{B.device}"
        raise ValueError(msg)
    if not 0.0 < float(rho) < 1.0:
        msg = f"rho must lie in (0, 1), got {rho}"
        raise ValueError(msg)
    rho = float(rho)
    if isinstance(kappa, torch.Tensor):
        if kappa.numel() != 1:
            msg = f"kappa must be a scalar, got shape {tuple(kappa.shape)}"
            raise ValueError(msg)
        if kappa.dtype != W.dtype or kappa.device != W.device:
            msg = f"kappa must share W's dtype and device, got {kappa.dtype}/{kappa.device}"
            raise ValueError(msg)
        kappa = kappa.reshape(())
    else:
        kappa = torch.tensor(float(kappa), dtype=W.dtype, device=W.device)
    # no conversion of ``prior``: its tiling plan is cached on it per device and dtype
    if prior is not None and prior.n_genes != g:
        msg = f"the prior has {prior.n_genes} genes but W has {g}"
        raise ValueError(msg)
    with torch.no_grad():
        # exact equality first: a model's B = (b + b^T) / 2 is exactly symmetric, and the
        # tolerant comparison costs as much as a small graph term's tile
        if not torch.equal(B, B.T) and not torch.allclose(B, B.T, rtol=1e-5, atol=1e-7):
            msg = "B must be symmetric (e.g. 0.5 * (b + b.T))"
            raise ValueError(msg)
    block = int(block_size) if block_size is not None else default_block_size(g, L, W.device)
    if block < 1:
        msg = f"block_size must be positive, got {block_size}"
        raise ValueError(msg)
    col_block = max(block, _default_col_block(block, W.device))
    need_grad = torch.is_grad_enabled() and (
        W.requires_grad or B.requires_grad or kappa.requires_grad
    )
    if need_grad:
        return _GraphNLL.apply(W, B, kappa, rho, prior, block, col_block)
    with torch.no_grad():
        return _blocked(W, B, kappa, rho, prior, block, col_block, False)[0]
