r"""The PertSpectra objective, over per-label sufficient statistics. It exists only here.

.. math::

    \mathcal L = \lambda \sum_c \sum_j \big(w_c\,\mu_{cj} - S_{cj}\log\mu_{cj}\big)
      \;+\; \mathcal L_{\text{graph}}(W, B, \kappa),
    \qquad \mu_c = (\nu + \delta)\odot(h_c P)W,

with :math:`S_c = \sum_{i\in c}\eta_i X_i` and :math:`w_c = \sum_{i\in c}\eta_i` for the per-cell
weights :math:`\eta_i` (the paper: :math:`1/|C_i|`). This equals the per-cell weighted Poisson
loss :math:`\sum_i\eta_i\sum_j(\mu_{ij} - X_{ij}\log\mu_{ij})` exactly, in value and gradient,
because :math:`\mu_i` depends on cell :math:`i` only through its design row. The graph term is
Spectra's Bernoulli likelihood of the prior adjacency (see :mod:`pertspectra.model._graph`).
Under several conditions (:mod:`pertspectra.model._condition_module`) the groups are (label,
condition) pairs and the graph term is summed over the program blocks,
:math:`\mathcal L_{\text{graph}}(W_0) + \sum_c (n_c/n)\,\mathcal L_{\text{graph}}(W_c)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ._condition_module import ConditionModule
from ._graph import graph_nll

if TYPE_CHECKING:
    from ._graph import GraphPrior
    from ._module import PertSpectraModule


@dataclass
class LossTerms:
    """The objective and its parts (0-dim tensors)."""

    total: torch.Tensor
    recon: torch.Tensor
    graph: torch.Tensor


def poisson_recon(
    mu: torch.Tensor, weighted_sum: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Constant-free weighted Poisson NLL over groups: ``sum(w_c mu - S log mu)``.

    ``S log mu`` is taken as 0 where ``S = 0`` in value *and* gradient: ``xlogy``'s gradient
    wrt ``mu`` is ``S / mu``, which is ``0 / 0 = nan`` where a mean has underflowed to zero on
    an all-zero entry (an all-zero gene, a fully knocked-down target). Elsewhere nothing
    changes (same value, same gradient, bit for bit).
    """
    observed = weighted_sum != 0
    safe_mu = torch.where(observed, mu, torch.ones_like(mu))
    return (weight[:, None] * mu).sum() - torch.xlogy(weighted_sum, safe_mu).sum()


def pertspectra_loss(
    module: PertSpectraModule | ConditionModule,
    design: torch.Tensor,
    *,
    weighted_sum: torch.Tensor,
    weight: torch.Tensor,
    prior: GraphPrior | None,
) -> LossTerms:
    """The PertSpectra objective from group statistics.

    Parameters
    ----------
    module
        Parameters.
    design
        Design rows of the groups (groups x design columns); for a
        :class:`~pertspectra.model._condition_module.ConditionModule` with each group's
        condition one-hot appended. Its graph term is the shared block's plus each
        condition's weighted by its share of the cells (the authors' cell-type model).
    weighted_sum
        ``S``: per-group weighted sums of expression (groups x genes).
    weight
        ``w``: per-group sums of cell weights.
    prior
        The prior graph, or ``None`` for an all-zero adjacency.
    """
    cfg = module.config
    recon = poisson_recon(module.mean(design), weighted_sum, weight)
    if cfg.graph and isinstance(module, ConditionModule):
        graph = recon.new_zeros(())
        for W, B, kappa, share in module.graph_blocks():
            graph = graph + share * graph_nll(W, B, kappa, rho=cfg.rho, prior=prior)
    elif cfg.graph:
        graph = graph_nll(module.W, module.B, module.kappa, rho=cfg.rho, prior=prior)
    else:
        graph = recon.new_zeros(())
    return LossTerms(total=cfg.lam * recon + graph, recon=recon, graph=graph)
