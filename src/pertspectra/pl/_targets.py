"""The targeted gene's own change: does the model keep each knockdown (or activation)?"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._common import check_frame, identity_line, new_axes
from ._style import METHOD_COLORS, REFERENCE_COLOR

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def on_target(table: pd.DataFrame, *, max_labels: int = 30, ax: Axes | None = None) -> Axes:
    """Scatter each perturbation's observed change of its own target (x) against the predicted.

    Parameters
    ----------
    table
        Columns ``label``, ``gene`` (the targeted gene), ``observed`` and ``predicted`` (its
        change against control; a CRISPRi knockdown is negative).
    max_labels
        Points annotated with their label (the largest ``|observed|`` when there are more).
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: one point per row, ``y = x`` and zero lines, the title giving the
    share of rows whose predicted change has the observed sign.
    """
    table = check_frame(table, ("label", "gene", "observed", "predicted"), "table")
    x = table["observed"].to_numpy(dtype=float)
    y = table["predicted"].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        msg = "table has no finite observed and predicted pair"
        raise ValueError(msg)
    ax = new_axes(ax, (5.5, 5.0))
    ax.scatter(x[ok], y[ok], s=22, color=METHOD_COLORS["model"], zorder=3, lw=0)
    identity_line(ax, x[ok], y[ok])
    ax.axhline(0, color=REFERENCE_COLOR, lw=0.8, zorder=0)
    ax.axvline(0, color=REFERENCE_COLOR, lw=0.8, zorder=0)
    order = np.argsort(-np.abs(np.where(ok, x, 0)), kind="stable")[:max_labels]
    for i in order:
        if ok[i]:
            ax.annotate(
                str(table["label"].iloc[i]), (x[i], y[i]), fontsize="x-small",
                xytext=(3, 3), textcoords="offset points",
            )  # fmt: skip
    same = float(np.mean(np.sign(x[ok]) == np.sign(y[ok])))
    ax.set_xlabel("observed change of the targeted gene")
    ax.set_ylabel("predicted change of the targeted gene")
    ax.set_title(
        f"Targeted genes: {same:.0%} of {int(ok.sum())} predicted with the observed sign",
        fontsize="medium",
    )
    return ax
