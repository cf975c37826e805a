"""The graph likelihood written naively with full ``g x g`` tensors (reference and baseline)."""

from __future__ import annotations

import torch

from ._graph_prior import GraphPrior

__all__ = ["graph_nll_dense"]


def graph_nll_dense(
    W: torch.Tensor,
    B: torch.Tensor,
    kappa: torch.Tensor | float,
    *,
    rho: float,
    prior: torch.Tensor | GraphPrior | None,
) -> torch.Tensor:
    """The graph NLL written naively with full ``g x g`` tensors (reference and baseline).

    Parameters
    ----------
    W
        Gene loadings, ``L x g``.
    B
        Symmetric factor affinities, ``L x L``.
    kappa
        Background edge rate (0-dim tensor or float).
    rho
        Non-edge rate.
    prior
        The ``g x g`` adjacency, a :class:`GraphPrior`, or ``None`` (all zeros).

    Returns
    -------
    torch.Tensor
        The 0-dim loss; differentiable by autograd.
    """
    g = W.shape[1]
    if isinstance(prior, GraphPrior):
        prior = prior.to(W.device, W.dtype).to_dense()
    kappa = torch.as_tensor(kappa, dtype=W.dtype, device=W.device)
    M = W.T @ B @ W
    a = (1 - kappa) * (1 - rho)
    off = ~torch.eye(g, dtype=torch.bool, device=W.device)
    q = a * (1 - M) + rho
    if prior is None:
        return -torch.log(q)[off].sum()
    A = prior.to(W.device, W.dtype)
    p = a * M + (1 - rho) * kappa
    ll = A**2 * torch.log(p) + (1 - A) * torch.log(q)
    return -ll[off].sum()
