"""On-target effect: each perturbed gene's own change, observed against predicted.

For a perturbation of gene :math:`g`, the on-target change is :math:`x_g - c_g` (its mean in
the perturbed cells minus the control mean); CRISPRi knockdowns make it negative. A model that
learns the perturbations puts the points on the diagonal, at least with the right sign.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._common import annotate_points, check_frame, identity_line, new_axes
from ._style import METHOD_COLORS, REFERENCE_COLOR

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def on_target(table: pd.DataFrame, *, max_labels: int = 30, ax: Axes | None = None) -> Axes:
    """Scatter each targeted gene's observed change (x) against its predicted change (y).

    Parameters
    ----------
    table
        Columns ``label, gene, observed, predicted``: per perturbation, the targeted gene and
        its own change vs control, observed and predicted.
    max_labels
        The points with the ``max_labels`` largest ``|observed|`` are annotated with their
        label, but for those too close to one already labelled.
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: one point per row, the lines ``y = x``, ``x = 0`` and ``y = 0``, the
    labels of at most ``max_labels`` points, and the share of rows whose
    predicted sign matches the observed one in the title.
    """
    check_frame(table, ("label", "gene", "observed", "predicted"), "table")
    x = table["observed"].to_numpy(dtype=float)
    y = table["predicted"].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        msg = "table has no row with finite observed and predicted values"
        raise ValueError(msg)
    labels = table["label"].astype(str).to_numpy()[ok]
    x, y = x[ok], y[ok]
    ax = new_axes(ax, (5.5, 5.0))
    ax.scatter(x, y, s=18, color=METHOD_COLORS["model"], alpha=0.8, lw=0, zorder=3)
    identity_line(ax, x, y)
    ax.axhline(0, color=REFERENCE_COLOR, lw=0.8, zorder=0)
    ax.axvline(0, color=REFERENCE_COLOR, lw=0.8, zorder=0)
    ax.set_aspect("equal", adjustable="box")
    order = np.argsort(-np.abs(x), kind="stable")[: max(max_labels, 0)]
    annotate_points(ax, x, y, list(labels), order, max_n=max_labels)
    match = float(np.mean(np.sign(x) == np.sign(y)))
    ax.set_xlabel("observed change of the targeted gene")
    ax.set_ylabel("predicted change of the targeted gene")
    ax.set_title(
        f"On-target effect, {x.size} perturbations\nsign matches in {100 * match:.0f}%",
        fontsize="medium",
    )
    return ax
