r"""One combination gene by gene: observed, additive expectation and predicted change.

For a double perturbation :math:`A+B` and gene :math:`g`, the additive expectation of the change
is :math:`(a_g - c_g) + (b_g - c_g)` (:math:`c` the control mean); the genes where the observed
change departs from it show the interaction a model has to capture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._common import new_axes
from ._style import PROFILE_COLORS

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def interaction(
    observed: pd.Series,
    additive: pd.Series,
    predicted: pd.Series,
    *,
    control: pd.Series,
    n_genes: int = 20,
    label: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Grouped bars of one combination's change per gene: observed, additive, predicted.

    Parameters
    ----------
    observed, additive, predicted
        Mean expression of the combination per gene: observed, the additive expectation
        (``ctrl + (A - ctrl) + (B - ctrl)``) and the model's prediction.
    control
        Control mean per gene.
    n_genes
        Genes shown: the largest ``|observed - control|``.
    label
        The combination (title).
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on, with three bars per gene (in that order).
    """
    if n_genes < 1:
        msg = f"n_genes must be at least 1, got {n_genes}"
        raise ValueError(msg)
    series = {"observed": observed, "additive": additive, "predicted": predicted}
    genes = [g for g in observed.index if all(g in s.index for s in (additive, predicted, control))]
    if not genes:
        msg = "observed, additive, predicted and control share no gene"
        raise ValueError(msg)
    changes = {k: s[genes].astype(float) - control[genes].astype(float) for k, s in series.items()}
    top = changes["observed"].abs().sort_values(ascending=False, kind="stable").index[:n_genes]
    x = np.arange(len(top))
    ax = new_axes(ax, (8.0, 4.0))
    width = 0.27
    for i, (name, values) in enumerate(changes.items()):
        ax.bar(
            x + (i - 1) * width,
            values[top].to_numpy(),
            width,
            label=name,
            color=PROFILE_COLORS[name],
        )
    ax.axhline(0, color="#666666", lw=0.8)
    ax.set_xticks(x, list(top), rotation=90, fontsize="small")
    ax.set_ylabel("change vs control")
    ax.set_title(label or "combination", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return ax
