"""Win rates: how often the model beats each baseline, per metric.

The win rate against a baseline is the share of held-out (fold, label) pairs where the model is
strictly better (ties count half; lower is better for mse, mae and rank_l1), from
:func:`pertspectra.evaluate.summarize`. 0.5 is a draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._common import SUMMARY_NEEDS, check_frame, heatmap, new_axes, resolve_regime, win_rate_table
from ._style import DIVERGING, method_order

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def win_rates(
    summary: pd.DataFrame,
    *,
    method: str = "pertspectra",
    regime: str | None = None,
    metrics: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Heat map of ``method``'s win rate per metric (rows) against each baseline (columns).

    Parameters
    ----------
    summary
        :func:`pertspectra.evaluate.summarize` output (columns ``regime, condition, method,
        metric, mean, sd, median, n, versus, win_rate, wilcoxon_p``).
    method
        The method whose win rates are shown.
    regime
        Regime to show; ``None`` takes the only one. Conditions of a regime are pooled
        (weighted by ``n``).
    metrics
        Metrics to show, in this order; by default all, in order of appearance.
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: the win rates (diverging colours centred at 0.5, from 0 to 1) with each
    value written in its cell, and a colorbar.
    """
    check_frame(summary, SUMMARY_NEEDS, "summary")
    regime = resolve_regime(summary, regime, "summary")
    table = win_rate_table(summary, method=method, regime=regime)
    if metrics is not None:
        missing = [m for m in metrics if m not in table.index]
        if missing or not metrics:
            msg = f"metrics without win rates of {method!r}: {missing or 'none given'}"
            raise ValueError(msg)
        table = table.loc[list(metrics)]
    table = table[method_order(list(table.columns))]
    ax = new_axes(ax, (2.5 + 0.9 * table.shape[1], 1.5 + 0.38 * table.shape[0]))
    values = table.to_numpy(dtype=float)
    heatmap(
        ax,
        values,
        rows=list(table.index),
        columns=list(table.columns),
        cmap=DIVERGING,
        vmin=0.0,
        vmax=1.0,
        xrotation=30,
        colorbar="win rate",
    )
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            dark = abs(v - 0.5) > 0.3
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize="small",
                color="white" if dark else "black",
            )
    ax.set_xlabel("versus")
    ax.set_title(f"{method} win rate, regime {regime}", fontsize="medium")
    return ax
