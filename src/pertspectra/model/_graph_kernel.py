"""The blocked kernel of the graph likelihood and its autograd Function.

:func:`_blocked` computes the value (and the gradients wrt ``W``, ``B`` and ``kappa``) in one
pass over the upper-triangle tiles of the ``g x g`` matrix; :class:`_GraphNLL` wraps it so the
backward only scales the stored gradients. The maths and the algorithm are described in
:mod:`pertspectra.model._graph`. :func:`tile_precision` lets the training steps run the tile
products at a lower float32 matmul precision (bfloat16 on CPUs with AMX, TF32 on CUDA).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, get_args

import torch
from torch.autograd.function import once_differentiable

from .._types import MatmulPrecision
from ._graph_prior import GraphPrior, _round_up

#: ``q`` is clamped at ``rho`` only when ``rho`` is below this many machine epsilons.
_Q_CLAMP_EPS = 1024
#: ``p`` of an edge is recomputed by :func:`_edge_p` where ``1 - q`` is below this many machine
#: epsilons (float32: about 1e-3; there ``1 - q`` has a relative error of about 1e-4 or more).
_P_REFINE_EPS = 1 << 13
#: Edges per gather in :func:`_edge_p` (bounds its temporary to this many x ``K`` elements).
_EDGE_CHUNK = 1 << 14
#: The float32 matmul precision of the tile products inside :func:`tile_precision`; ``None``:
#: the caller's (torch's global setting).
_TILE_PRECISION: ContextVar[str | None] = ContextVar("tile_precision", default=None)
#: Up to this many genes, and where ``g * g`` fits in one tile's budget (``block * col_block``),
#: the whole matrix is computed as one tile by :func:`_square`: with gradients it was faster
#: than the tiles up to g = 450 and slower from g = 500 (1 thread, L = g / 10, AMD EPYC).
SQUARE_MAX_GENES = 400
#: The accepted values (:data:`pertspectra._types.MatmulPrecision`).
MATMUL_PRECISIONS: tuple[str, ...] = get_args(MatmulPrecision)


@contextmanager
def tile_precision(precision: str | None) -> Iterator[None]:
    """Run the graph term's products at ``precision`` in training steps inside this block.

    ``precision`` is a value of :func:`torch.set_float32_matmul_precision`: ``"highest"``
    (exact float32), ``"high"`` (TF32 on CUDA; float32 on CPUs) or ``"medium"`` (bfloat16
    products with float32 accumulation where the hardware has them: CPUs with AMX or AVX-512
    BF16, CUDA). ``None`` leaves the caller's setting. Only the blocked pass *with gradients*
    changes (torch's global setting is set around it and restored): the reconstruction term,
    evaluations without gradients and anything outside the block keep the caller's precision.
    The training loop enters it for its steps only, so the values that decide convergence, the
    best state and the final objective are computed exactly.
    """
    if precision is not None and precision not in MATMUL_PRECISIONS:
        msg = f"matmul_precision must be one of {MATMUL_PRECISIONS}, got {precision!r}"
        raise ValueError(msg)
    token = _TILE_PRECISION.set(precision)
    try:
        yield
    finally:
        _TILE_PRECISION.reset(token)


@contextmanager
def _tile_matmuls() -> Iterator[None]:
    """Apply :func:`tile_precision`'s setting (if any) to torch around the blocked pass."""
    precision = _TILE_PRECISION.get()
    old = torch.get_float32_matmul_precision()
    if precision is None or precision == old:
        yield
        return
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def _edge_p(
    Wt_i: torch.Tensor, CnT_j: torch.Tensor, idx: torch.Tensor, width: int, p_floor: torch.Tensor
) -> torch.Tensor:
    """``p = (1-rho) kappa + a M`` on a tile's edges, as a sum of non-negative terms.

    ``1 - q`` would cancel catastrophically where ``p`` is small (``rho`` near 1, ``kappa``
    near 0): in float32 it is off by about 6e-8, so ``p`` of 1e-8 becomes 0 and ``log p``
    infinite. ``a M_jk = W_j^T (a B W)_k`` has only non-negative terms, so ``p`` keeps its
    relative precision.
    """
    out = torch.empty(idx.numel(), dtype=Wt_i.dtype, device=Wt_i.device)
    for e0 in range(0, idx.numel(), _EDGE_CHUNK):
        sub = idx[e0 : e0 + _EDGE_CHUNK]
        rows = torch.div(sub, width, rounding_mode="floor")
        am = (Wt_i.index_select(0, rows) * CnT_j.index_select(0, sub - rows * width)).sum(1)
        torch.sub(p_floor, am, out=out[e0 : e0 + _EDGE_CHUNK])
    return out


def _operands(
    W: torch.Tensor, B: torch.Tensor, a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``W^T`` (``g x K``) and ``-a B W`` (``K x g``), with ``L`` zero-padded to ``K``.

    GEMM width: ``L`` padded with zero rows to a multiple of 8 keeps MKL on its fast kernels
    (measured: K = 201 is 15-40% slower per GEMM than K = 200 or 208).
    """
    L, g = W.shape
    K = _round_up(L, 8)
    Wt = torch.zeros((g, K), dtype=W.dtype, device=W.device)
    Wt[:, :L] = W.T
    Cn = torch.zeros((K, g), dtype=W.dtype, device=W.device)
    torch.mm(B, W, out=Cn[:L])
    Cn[:L].mul_(-a)
    return Wt, Cn


def uses_square(g: int, block: int, col_block: int) -> bool:
    """Whether the pass over ``g`` genes with these tiles is one square tile (:func:`_square`)."""
    return g <= SQUARE_MAX_GENES and g * g <= block * col_block


def _blocked(
    W: torch.Tensor,
    B: torch.Tensor,
    kappa: torch.Tensor,
    rho: float,
    prior: GraphPrior | None,
    block: int,
    col_block: int,
    with_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Value (and gradients wrt W, B, kappa) in one pass over the upper-triangle tiles."""
    L, g = W.shape
    if uses_square(g, block, col_block):
        return _square(W, B, kappa, rho, prior, with_grad)
    dev, dt = W.device, W.dtype
    one_m_rho = 1.0 - rho
    a = (1 - kappa) * one_m_rho  # 0-dim tensor
    Wt, Cn = _operands(W, B, a)
    K = Wt.shape[1]
    CnT: torch.Tensor | None = None
    const = a + rho
    p_floor = one_m_rho * kappa  # p = (1-rho) kappa + a M: its exact lower bound (M >= 0)
    # q > rho exactly (M < 1); clamp only where rounding (about eps * (a + rho)) can cross it
    q_floor = rho if rho < _Q_CLAMP_EPS * torch.finfo(dt).eps else None
    p_refine = _P_REFINE_EPS * torch.finfo(dt).eps
    # every edge's p is >= p_floor: with room to spare (rounding of 1 - q is ~eps) no edge can
    # need the refinement, so the tile loop skips its test (one host sync here, none per tile)
    refine = float(p_floor) < 2 * p_refine

    height = min(block, g)
    width = min(col_block, g)
    qbuf = torch.empty(height * width, dtype=dt, device=dev)
    rbuf = torch.empty(height * width, dtype=dt, device=dev) if with_grad else None
    V = torch.zeros((g, K), dtype=dt, device=dev) if with_grad else None

    plan = prior._plan(block, col_block, dev, dt) if prior is not None and prior.n_edges else None
    acc = torch.zeros((), dtype=torch.float64, device=dev)  # sum over j < k of -log q
    edge_acc = torch.zeros((), dtype=torch.float64, device=dev)
    sum_r = torch.zeros((), dtype=torch.float64, device=dev)  # sum over j < k of G / a

    for r0 in range(0, g, block):
        h = min(block, g - r0)
        Wt_i = Wt[r0 : r0 + h]
        for c0 in range(r0, g, col_block):
            w = min(col_block, g - c0)
            q = qbuf[: h * w].view(h, w)
            q.fill_(const).addmm_(Wt_i, Cn[:, c0 : c0 + w])  # q = a + rho - a M
            if q_floor is not None:
                q.clamp_min_(q_floor)
            # the diagonal square's j >= k entries are valid q values (q is symmetric), read by
            # no edge; they are zeroed after the log and the reciprocal (as if q were 1 there)
            diag = c0 == r0
            d = min(h, w)
            sl = plan.bounds.get((r0, c0)) if plan is not None else None
            if sl is not None:
                assert plan is not None  # sl was looked up in plan.bounds
                idx = plan.flat[sl[0] : sl[1]]
                wgt = plan.weight[sl[0] : sl[1]]
                qe = q.view(-1).index_select(0, idx)
                pe = 1.0 - qe
                # where p is small, 1 - q has lost its precision: recompute those edges
                small = torch.nonzero(pe < p_refine).squeeze(1) if refine else None
                if small is not None and small.numel():
                    if CnT is None:  # -a B W transposed (g x K, contiguous), for the gathers
                        CnT = Cn.T.contiguous()
                    sub = idx.index_select(0, small)
                    pe[small] = _edge_p(Wt_i, CnT[c0 : c0 + w], sub, w, p_floor)
                edge_acc += (wgt * torch.log(qe) - wgt * wgt * torch.log(pe)).sum(
                    dtype=torch.float64
                )
            if rbuf is not None:  # with_grad
                r = rbuf[: h * w].view(h, w)
                torch.reciprocal(q, out=r)
                if diag:
                    r[:, :d].triu_(1)
                if sl is not None:
                    # unique indices; index_put_ (not index_add_) stays deterministic on CUDA
                    r.view(-1).index_put_((idx,), -(wgt * wgt / pe + wgt / qe), accumulate=True)
                sum_r += r.sum().to(torch.float64)
            torch.log_(q)
            if diag:
                q[:, :d].triu_(1)
            acc -= q.sum().to(torch.float64)
            if V is not None:  # with_grad
                V[r0 : r0 + h].addmm_(r, Wt[c0 : c0 + w])
                V[c0 : c0 + w].addmm_(r.T, Wt_i)

    value = 2.0 * (acc + edge_acc)
    if V is None:  # not with_grad
        return value.to(dt), None, None, None
    # V holds (G / a) W^T (zero-padded) summed over ordered pairs
    return (value.to(dt), *_grads(W, B, V[:, :L], a, 2.0 * sum_r, one_m_rho))


def _grads(
    W: torch.Tensor,
    B: torch.Tensor,
    Vw: torch.Tensor,
    a: torch.Tensor,
    sum_r: torch.Tensor,
    one_m_rho: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients wrt W, B and kappa from ``Vw = (G / a) W^T`` and ``sum_r = sum G / a``.

    Both sums run over ordered pairs.
    """
    dB_r = W @ Vw  # W (G / a) W^T
    dB_r = 0.5 * (dB_r + dB_r.T)
    dW = (2.0 * a) * (B @ Vw.T)
    dB = a * dB_r
    # df/dkappa = (1-rho)/a * sum G (1 - M) = (1-rho) * (sum G/a - <B, W (G/a) W^T>)
    sum_rm = (B.to(torch.float64) * dB_r.to(torch.float64)).sum()
    dkappa = (one_m_rho * (sum_r - sum_rm)).to(W.dtype)
    return dW, dB, dkappa


def _square(
    W: torch.Tensor,
    B: torch.Tensor,
    kappa: torch.Tensor,
    rho: float,
    prior: GraphPrior | None,
    with_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """:func:`_blocked` for a small ``g``: the whole ``g x g`` matrix as one tile.

    Both triangles are computed (``q`` is symmetric up to rounding), so there is no mask and
    ``(G / a) W^T`` over ordered pairs is one product instead of two per tile: fewer and
    cheaper operations where the per-operation overhead dominates (measured in
    ``benchmarks/graph_term.py``). Edges are read from the upper triangle, as in the tiles, and
    their corrections applied to both ``(j, k)`` and ``(k, j)``.
    """
    L, g = W.shape
    dev, dt = W.device, W.dtype
    one_m_rho = 1.0 - rho
    a = (1 - kappa) * one_m_rho
    Wt, Cn = _operands(W, B, a)
    q = torch.mm(Wt, Cn).add_(a + rho)  # a + rho - a M
    if rho < _Q_CLAMP_EPS * torch.finfo(dt).eps:
        q.clamp_min_(rho)
    q.diagonal().fill_(1.0)  # no self pairs: log 1 = 0
    acc = torch.zeros((), dtype=torch.float64, device=dev)  # over ordered pairs
    plan = prior._plan(g, g, dev, dt) if prior is not None and prior.n_edges else None
    if plan is not None:
        idx, wgt = plan.flat, plan.weight  # upper-triangle edges, j * g + k
        qe = q.view(-1).index_select(0, idx)
        pe = 1.0 - qe
        p_floor = one_m_rho * kappa
        p_refine = _P_REFINE_EPS * torch.finfo(dt).eps
        if float(p_floor) < 2 * p_refine:  # see _blocked
            small = torch.nonzero(pe < p_refine).squeeze(1)
            if small.numel():
                sub = idx.index_select(0, small)
                pe[small] = _edge_p(Wt, Cn.T.contiguous(), sub, g, p_floor)
        acc += 2.0 * (wgt * torch.log(qe) - wgt * wgt * torch.log(pe)).sum(dtype=torch.float64)
    if not with_grad:
        acc -= torch.log_(q).sum().to(torch.float64)
        return acc.to(dt), None, None, None
    r = torch.reciprocal(q)
    r.diagonal().zero_()
    if plan is not None:
        corr = -(wgt * wgt / pe + wgt / qe)
        mirror = torch.remainder(idx, g) * g + torch.div(idx, g, rounding_mode="floor")
        r.view(-1).index_put_((torch.cat([idx, mirror]),), torch.cat([corr, corr]), accumulate=True)
    acc -= torch.log_(q).sum().to(torch.float64)
    sum_r = r.sum().to(torch.float64)
    return (acc.to(dt), *_grads(W, B, (r @ Wt)[:, :L], a, sum_r, one_m_rho))


class _GraphNLL(torch.autograd.Function):
    """Value and gradients in one blocked pass; backward scales the stored gradients."""

    @staticmethod
    def forward(
        ctx: Any,
        W: torch.Tensor,
        B: torch.Tensor,
        kappa: torch.Tensor,
        rho: float,
        prior: GraphPrior | None,
        block: int,
        col_block: int,
    ) -> torch.Tensor:
        with _tile_matmuls():
            value, dW, dB, dkappa = _blocked(W, B, kappa, rho, prior, block, col_block, True)
        ctx.save_for_backward(dW, dB, dkappa)
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        dW, dB, dkappa = ctx.saved_tensors
        need = ctx.needs_input_grad
        return (
            grad_out * dW if need[0] else None,
            grad_out * dB if need[1] else None,
            grad_out * dkappa if need[2] else None,
            None,
            None,
            None,
            None,
        )
