r"""How many directions of the perturbations' changes stand above their sampling noise.

Each label's change from control, gene by gene, is divided by its standard error (from the
per-label sums and sums of squares of :func:`~pertspectra.stats.compute_group_stats`), and the
rows are whitened against the control mean's noise, which they all share:

.. math::

    Z_{pj} = \frac{\bar x_{pj} - \bar x_{cj}}{\sqrt{s^2_{pj}/n_p + s^2_{cj}/n_c}}

Without any effect ``Z`` is a matrix of (nearly) independent unit-variance entries; its
singular values then stay below the optimal hard threshold of :cite:t:`gavish2014`,
:math:`\lambda^*(\beta)\sqrt{n}` for an ``m x n`` matrix (``m <= n``, :math:`\beta = m/n`).
The number of singular values above it is the signal rank: the changes a low-rank fit can
recover rather than reproduce noise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .._keys import LAYER_SUM, LAYER_SUM_SQUARES, N_CELLS

if TYPE_CHECKING:
    from anndata import AnnData


#: Floor of a label mean's share of its change's variance (guards labels without variance).
_MIN_OWN_SHARE = 1e-3


def gavish_donoho_lambda(beta: float) -> float:
    r""":math:`\lambda^*(\beta)`, the optimal hard threshold over :math:`\sqrt n` for known unit noise.

    ``sqrt(2 (beta + 1) + 8 beta / (beta + 1 + sqrt(beta^2 + 14 beta + 1)))``; 4/sqrt(3) at
    ``beta = 1``.
    """
    b = float(beta)
    if not 0.0 < b <= 1.0:
        msg = f"beta must lie in (0, 1], got {beta}"
        raise ValueError(msg)
    return math.sqrt(2 * (b + 1) + 8 * b / (b + 1 + math.sqrt(b * b + 14 * b + 1)))


def standardized_changes(adata: AnnData, *, control: str = "ctrl") -> np.ndarray:
    """``Z``: each label's change from control over its standard error (labels x genes).

    Rows are the labels other than ``control`` with at least two cells; an entry whose
    standard error is zero (the gene is constant in both groups) is 0. Every row's change
    shares the control mean's noise; the rows are whitened per gene against it, so that without
    any effect the entries are uncorrelated with unit variance.

    Parameters
    ----------
    adata
        Per-label statistics of :func:`~pertspectra.stats.compute_group_stats` (with
        ``layers['sum']`` and ``layers['sum_squares']``).
    control
        The control label.
    """
    for key in (LAYER_SUM, LAYER_SUM_SQUARES):
        if key not in adata.layers:
            msg = (
                f"the statistics have no layers[{key!r}]: the signal rank needs per-cell "
                "variances (compute_group_stats); pseudobulk statistics have none"
            )
            raise ValueError(msg)
    labels = [str(x) for x in adata.obs_names]
    if control not in labels:
        msg = f"control label {control!r} not in the statistics' labels"
        raise ValueError(msg)
    n = adata.obs[N_CELLS].to_numpy(dtype=np.float64)
    total = np.asarray(adata.layers[LAYER_SUM], dtype=np.float64)
    squares = np.asarray(adata.layers[LAYER_SUM_SQUARES], dtype=np.float64)
    c = labels.index(control)
    if n[c] < 2:
        msg = f"control label {control!r} has {int(n[c])} cell(s); the signal rank needs >= 2"
        raise ValueError(msg)
    mean = total / n[:, None]
    var = np.maximum(squares / n[:, None] - mean**2, 0.0) * (n / np.maximum(n - 1, 1))[:, None]
    rows = [i for i in range(len(labels)) if i != c and n[i] >= 2]
    own = var[rows] / n[rows, None]  # each label mean's sampling variance
    shared = np.broadcast_to(var[c] / n[c], own.shape)  # the control mean's, in every row
    se = np.sqrt(own + shared)
    z = np.divide(mean[rows] - mean[c], se, out=np.zeros_like(own), where=se > 0)
    # Every row shares the control mean's noise: per gene, corr(z_p, z_q) = r_p r_q with
    # r_p = sqrt(shared / (own_p + shared)). Whiten R = diag(1 - r^2) + r r^T exactly:
    # R^(-1/2) = (I + u u^T)^(-1/2) diag(1 - r^2)^(-1/2), u = r / sqrt(1 - r^2).
    r2 = np.divide(shared, se**2, out=np.zeros_like(own), where=se > 0)
    d = np.maximum(1.0 - r2, _MIN_OWN_SHARE)
    y = z / np.sqrt(d)
    u = np.sqrt(r2 / d)
    uu = (u * u).sum(axis=0)
    coef = np.divide(1.0 - 1.0 / np.sqrt(1.0 + uu), uu, out=np.zeros_like(uu), where=uu > 0)
    return y - u * (coef * (u * y).sum(axis=0))


def signal_rank(adata: AnnData, *, control: str = "ctrl") -> int:
    """Number of directions of the labels' changes from control above their sampling noise.

    The singular values of :func:`standardized_changes` above the Gavish-Donoho threshold for
    unit noise (see the module docstring). ``ModelConfig(n_factors="signal")`` fits this
    many factors plus one (``basal``).

    Parameters
    ----------
    adata
        Per-label statistics of :func:`~pertspectra.stats.compute_group_stats` (with
        ``layers['sum']`` and ``layers['sum_squares']``).
    control
        The control label.

    Returns
    -------
    The signal rank (0 when no change stands above the noise).

    Examples
    --------
    >>> import numpy as np, anndata as ad, pertspectra as ps
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(["ctrl", "A", "B", "C"], 200)
    >>> x = rng.poisson(2.0, (800, 60)).astype(float)
    >>> x[labels == "A", :10] += 1.0  # one effect on ten genes
    >>> cells = ad.AnnData(x, obs={"perturbation": labels})
    >>> stats = ps.stats.compute_group_stats(cells, perturbation_key="perturbation", progress=False)
    >>> ps.stats.signal_rank(stats)
    1
    """
    z = standardized_changes(adata, control=control)
    if z.size == 0:
        return 0
    m, k = sorted(z.shape)
    threshold = gavish_donoho_lambda(m / k) * math.sqrt(k)
    singular = np.linalg.svd(z, compute_uv=False)
    return int((singular > threshold).sum())
