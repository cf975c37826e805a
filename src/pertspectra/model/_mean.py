r"""The model's expected expression, in numpy: the prediction formula, written once.

.. math::

    \mu(h) = (\nu + \delta) \odot \max\big((hP)W,\ f\big)

for a design row :math:`h` (``basal`` plus the perturbations' columns; an unseen combination
simply sets more than one perturbation column), with the clamp at the floor :math:`f` only
under the ``"effects"`` parametrization. The torch module's ``mean`` computes the same during
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

    Returns
    -------
    Rows x genes, float64.
    """
    hpw = (np.asarray(design_rows, dtype=np.float64) @ P) @ W
    if parametrization == "effects":
        hpw = np.maximum(hpw, floor)
    return (np.asarray(gene_scale, dtype=np.float64) + delta) * hpw
