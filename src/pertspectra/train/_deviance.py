r"""How much of the labels' differences a fit reproduces: the deviance explained.

The reconstruction term is a Poisson negative log-likelihood without its constant, so its value
has an arbitrary offset (it is negative on log-normalized screens with small weights) and a
change relative to it says little. Two fits of the same statistics bound it:

* the *saturated* fit, every group at its own mean :math:`\mu_c = S_c / w_c` (the lowest value
  any model reaches; the training means);
* the *null* fit, every group at the pooled mean :math:`\bar\mu = \sum_c S_c / \sum_c w_c`.

The deviance explained is :math:`1 - (R - R_{\text{sat}}) / (R_{\text{null}} - R_{\text{sat}})`:
1 for a fit that reproduces every group mean, 0 for one that predicts no difference between
groups. Because the weighted Poisson deviance over cells is :math:`2(R + C)` with a constant
:math:`C`, this is the share of the *between-group* part of the cells' deviance that the fit
explains (the Poisson GLM's :math:`D^2` with the within-group part, which no model of group
means can explain, taken out). A check cycle's improvement is also recorded in units of
:math:`\lambda (R_{\text{null}} - R_{\text{sat}})`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._keys import LAYER_WEIGHTED_SUM, WEIGHT

if TYPE_CHECKING:
    from anndata import AnnData


def recon_bounds(stats: AnnData) -> tuple[float, float]:
    """The reconstruction term of the saturated and of the null fit (float64).

    Computed by the objective's own reconstruction term
    (:func:`~pertspectra.model._loss.poisson_recon`) at the group means and at the pooled mean.
    """
    import torch

    from ..model._loss import poisson_recon

    s = torch.as_tensor(np.asarray(stats.layers[LAYER_WEIGHTED_SUM]), dtype=torch.float64)
    w = torch.as_tensor(stats.obs[WEIGHT].to_numpy(), dtype=torch.float64)
    saturated = s / w[:, None]
    pooled = (s.sum(0) / w.sum()).expand_as(s)
    return float(poisson_recon(saturated, s, w)), float(poisson_recon(pooled, s, w))


def deviance_record(
    stats: AnnData, recon: float, *, lam: float, checks: list[dict[str, Any]]
) -> dict[str, Any]:
    """The deviance explained by a fit whose reconstruction term is ``recon``.

    Adds ``improvement_deviance`` (the objective's fall in units of the weighted null-to-saturated
    range) to each of ``checks`` in place. Where all groups share one mean (the range is 0)
    ``deviance_explained`` and the check units are ``None``.
    """
    r_sat, r_null = recon_bounds(stats)
    span = r_null - r_sat
    usable = span > 1e-12 * max(abs(r_sat), 1.0)
    for check in checks:
        check["improvement_deviance"] = (
            (check["before"] - check["after"]) / (lam * span) if usable else None
        )
    return {
        "deviance_explained": 1.0 - (recon - r_sat) / span if usable else None,
        "saturated_recon": r_sat,
        "null_recon": r_null,
    }
