"""Predicted against observed change of expression, gene by gene, for a few perturbations.

For label :math:`i` and gene :math:`g`, the observed change is :math:`o_{ig} - c_g` and the
predicted change :math:`p_{ig} - c_g` (:math:`c` the control mean); a perfect model puts every
point on the diagonal. The legend gives Pearson's :math:`r` across genes per label (the
``pearson_delta`` metric of :mod:`pertspectra.evaluate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._common import identity_line, new_axes
from ._style import category_colors

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def predicted_vs_observed(
    predicted: pd.DataFrame,
    observed: pd.DataFrame,
    control: pd.Series,
    *,
    labels: Sequence[str] | None = None,
    n_labels: int = 4,
    ax: Axes | None = None,
) -> Axes:
    """Scatter each gene's observed change (x) against its predicted change (y).

    Parameters
    ----------
    predicted
        Predicted mean expression, labels x genes.
    observed
        Observed mean expression, labels x genes.
    control
        Control mean expression per gene.
    labels
        Labels to draw (each must be in both frames); by default the ``n_labels`` labels of
        both frames whose observed change has the largest Euclidean norm.
    n_labels
        How many labels to draw when ``labels`` is ``None``.
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: one scatter (colour) per label over the genes common to the three
    inputs, the line ``y = x`` and a legend with Pearson's r per label.
    """
    for name, frame in (("predicted", predicted), ("observed", observed)):
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            msg = f"{name} must be a non-empty labels x genes DataFrame"
            raise ValueError(msg)
    genes = [g for g in observed.columns if g in set(predicted.columns) and g in control.index]
    if not genes:
        msg = "predicted, observed and control share no gene"
        raise ValueError(msg)
    common = [lab for lab in observed.index if lab in set(predicted.index)]
    obs = observed.loc[common, genes].astype(float).sub(control[genes].astype(float), axis=1)
    pred = predicted.loc[common, genes].astype(float).sub(control[genes].astype(float), axis=1)
    if labels is None:
        if not common:
            msg = "predicted and observed share no label"
            raise ValueError(msg)
        if n_labels < 1:
            msg = f"n_labels must be at least 1, got {n_labels}"
            raise ValueError(msg)
        norm = np.sqrt(np.nansum(obs.to_numpy() ** 2, axis=1))
        chosen = [common[i] for i in np.argsort(-norm, kind="stable")[:n_labels]]
    else:
        chosen = list(labels)
        missing = [lab for lab in chosen if lab not in set(common)]
        if missing or not chosen:
            msg = f"labels not in both predicted and observed: {missing or 'none given'}"
            raise ValueError(msg)
    ax = new_axes(ax, (5.5, 5.0))
    colors = category_colors(len(chosen))
    for lab, color in zip(chosen, colors, strict=True):
        x, y = obs.loc[lab].to_numpy(), pred.loc[lab].to_numpy()
        r = _pearson(x, y)
        ax.scatter(x, y, s=10, alpha=0.6, color=color, label=f"{lab} (r = {r:.2f})", lw=0)
    identity_line(ax, obs.loc[chosen].to_numpy(), pred.loc[chosen].to_numpy())
    ax.axhline(0, color="#dddddd", lw=0.8, zorder=0)
    ax.axvline(0, color="#dddddd", lw=0.8, zorder=0)
    ax.set_xlabel("observed change vs control")
    ax.set_ylabel("predicted change vs control")
    ax.set_title(f"Predicted vs observed change, {len(genes)} genes", fontsize="medium")
    ax.legend(fontsize="small", frameon=False, loc="upper left", markerscale=1.5)
    ax.set_aspect("equal", adjustable="box")
    return ax
