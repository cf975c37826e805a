r"""The model against a baseline on each held-out combination.

For a metric :math:`m` and each (fold, combination), the point is
:math:`(m_\text{baseline}, m_\text{model})`; above the diagonal the model is better (below it
for the metrics where lower is better: :data:`pertspectra.evaluate.LOWER_IS_BETTER` and any
name starting with ``mse`` or ``mae``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pertspectra.evaluate._metrics import LOWER_IS_BETTER

from ._common import annotate_points, check_frame, identity_line, new_axes
from ._style import METHOD_COLORS

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def lower_is_better(metric: str) -> bool:
    """Whether a lower ``metric`` is better (mse, mae and rank_l1 families)."""
    return metric in LOWER_IS_BETTER or metric.startswith(("mse", "mae"))


def interaction_summary(
    metrics: pd.DataFrame,
    *,
    metric: str = "pearson_delta",
    method: str = "pertspectra",
    baseline: str = "additive",
    max_labels: int = 10,
    ax: Axes | None = None,
) -> Axes:
    """One point per held-out combination: the baseline's score (x) against the model's (y).

    Parameters
    ----------
    metrics
        Tidy scorecard metrics (``regime, fold, label, method, metric, value``); only the
        ``combinations`` regime is read.
    metric
        Metric compared.
    method, baseline
        The model and the baseline.
    max_labels
        The ``max_labels`` points furthest from the diagonal are annotated with their label,
        but for those too close to one already labelled.
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on; the title gives the share of combinations on which ``method`` is better
    (above the line, or below for a metric where lower is better).
    """
    metrics = check_frame(
        metrics, ("regime", "fold", "label", "method", "metric", "value"), "metrics"
    )
    block = metrics[(metrics["regime"] == "combinations") & (metrics["metric"] == metric)]
    wide = block.pivot_table(
        index=["fold", "label"], columns="method", values="value", aggfunc="first"
    )
    for name in (method, baseline):
        if name not in wide.columns:
            msg = f"no {metric} of {name!r} in the combinations regime"
            raise ValueError(msg)
    wide = wide[[baseline, method]].dropna()
    if wide.empty:
        msg = f"no combination scored by both {method!r} and {baseline!r}"
        raise ValueError(msg)
    x, y = wide[baseline].to_numpy(dtype=float), wide[method].to_numpy(dtype=float)
    lower = lower_is_better(metric)
    better = float(np.mean(y < x if lower else y > x))
    ax = new_axes(ax, (5.5, 5.0))
    ax.scatter(x, y, s=18, color=METHOD_COLORS["model"], alpha=0.75, lw=0, zorder=3)
    identity_line(ax, x, y)
    names = [str(key[1]) for key in wide.index]
    order = np.argsort(-np.abs(y - x), kind="stable")[: max(max_labels, 0)]
    annotate_points(ax, x, y, names, order, max_n=max_labels)
    ax.set_xlabel(f"{baseline}: {metric}")
    ax.set_ylabel(f"{method}: {metric}")
    ax.set_title(
        f"{method} better on {better:.0%} of {len(x)} combinations ({'lower' if lower else 'higher'} is better)",
        fontsize="medium",
    )
    return ax
