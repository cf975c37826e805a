r"""The model's expected expression, in numpy: the prediction formula, written once.

.. math::

    \mu(h) = (\nu + \delta) \odot \max\big((hP)W,\ f\big) \odot \exp(hT)

for a design row :math:`h` (``basal`` plus the perturbations' columns; an unseen combination
simply sets more than one perturbation column), with the clamp at the floor :math:`f` only
under the ``"effects"`` parametrization. :math:`T` (design columns x genes) holds the on-target
terms: :math:`T_{k,j} = t_k` when perturbation :math:`k` targets the measured gene :math:`j`,
zero elsewhere (absent unless ``on_target``). The torch module's ``mean`` computes the same during
training; :func:`pertspectra.predict.expected_expression` is this function.
"""

from __future__ import annotations

import numpy as np


def expected_expression(
    design_rows: np.ndarray,
    P: np.ndarray,
    W: np.ndarray,
    *,
    gene_scale: np.ndarray,
    delta: float = 0.001,
    parametrization: str = "paper",
    floor: float = 1e-3,
    on_target: np.ndarray | None = None,
    on_target_gene: np.ndarray | None = None,
) -> np.ndarray:
    """Expected expression of design rows (rows x genes).

    Parameters
    ----------
    design_rows
        Rows x design columns (0/1).
    P
        Design columns x factors.
    W
        Factors x genes.
    gene_scale
        The gene scaling ``nu`` (genes).
    delta
        Floor added to the gene scaling.
    parametrization
        ``"paper"`` or ``"effects"`` (clamps ``(hP)W`` below at ``floor``).
    floor
        Lower clamp under ``"effects"``.
    on_target, on_target_gene
        Per design column: the on-target log-factor ``t_k`` and the index of its target gene
        (``-1``: none). Both or neither.

    Returns
    -------
    Rows x genes, float64.
    """
    h = np.asarray(design_rows, dtype=np.float64)
    hpw = (h @ P) @ W
    if parametrization == "effects":
        hpw = np.maximum(hpw, floor)
    if on_target is not None and on_target_gene is not None:
        gene = np.asarray(on_target_gene, dtype=np.int64)
        cols = np.flatnonzero(gene >= 0)
        logm = np.zeros_like(hpw)
        np.add.at(logm.T, gene[cols], (h[:, cols] * np.asarray(on_target)[cols]).T)
        hpw = hpw * np.exp(logm)
    return (np.asarray(gene_scale, dtype=np.float64) + delta) * hpw
