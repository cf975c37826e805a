"""Scorecard: the distribution of one metric per method over held-out labels and folds.

Each point is one (fold, label) of the chosen regime (all of its conditions pooled); boxes
show quartiles and whiskers 1.5 IQR, the diamond the mean. Baseline boxes can carry the model's
win rate against them: the share of (fold, label) pairs where the model is strictly better
(ties count half), from :func:`pertspectra.evaluate.summarize`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._common import SUMMARY_NEEDS, check_frame, new_axes, resolve_regime, win_rate_table
from ._style import METHOD_COLORS, method_kind, method_order

if TYPE_CHECKING:
    from matplotlib.axes import Axes

METRIC_NEEDS = ("regime", "condition", "fold", "label", "method", "metric", "value")


def scorecard(
    metrics: pd.DataFrame,
    *,
    metric: str = "pearson_delta",
    regime: str | None = None,
    summary: pd.DataFrame | None = None,
    method: str = "pertspectra",
    ax: Axes | None = None,
) -> Axes:
    """Box plot of ``metric`` per method, with every (fold, label) as a jittered point.

    Parameters
    ----------
    metrics
        Tidy metrics (columns ``regime, condition, fold, label, method, metric, value``), as in
        :attr:`pertspectra.evaluate.Scorecard.metrics`.
    metric
        Metric to show.
    regime
        Regime to show (e.g. ``"combinations"``, ``"cells"``); ``None`` takes the only one.
    summary
        :func:`pertspectra.evaluate.summarize` of ``metrics``: when given, each baseline's box
        is annotated with ``method``'s win rate against it.
    method
        The model whose win rates are written (and whose box comes first).
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: one box and one scatter per method (models, then baselines, then the
    ceiling, coloured by kind) with the mean as a white diamond.
    """
    check_frame(metrics, METRIC_NEEDS, "metrics")
    regime = resolve_regime(metrics, regime, "metrics")
    block = metrics[(metrics["regime"].astype(str) == regime) & (metrics["metric"] == metric)]
    block = block[np.isfinite(block["value"].astype(float))]
    if block.empty:
        present = sorted(metrics.loc[metrics["regime"].astype(str) == regime, "metric"].unique())
        msg = f"no finite {metric!r} values in regime {regime!r} (metrics: {present})"
        raise ValueError(msg)
    methods = method_order(list(block["method"].astype(str).unique()), first=method)
    rates: dict[str, float] = {}
    if summary is not None:
        check_frame(summary, SUMMARY_NEEDS, "summary")
        table = win_rate_table(summary, method=method, regime=regime)
        if metric in table.index:
            rates = {str(k): float(v) for k, v in table.loc[metric].dropna().items()}
    ax = new_axes(ax, (max(4.0, 1.0 + 0.9 * len(methods)), 4.5))
    values = [block.loc[block["method"] == m, "value"].to_numpy(dtype=float) for m in methods]
    colors = [METHOD_COLORS[method_kind(m)] for m in methods]
    positions = np.arange(len(methods))
    boxes = ax.boxplot(
        values,
        positions=positions,
        widths=0.6,
        patch_artist=True,
        showfliers=False,
        medianprops={"color": "black"},
    )
    for patch, color in zip(boxes["boxes"], colors, strict=True):
        patch.set_facecolor(color)
        patch.set_alpha(0.35)
    jitter = np.random.default_rng(0)
    for pos, vals, color in zip(positions, values, colors, strict=True):
        x = pos + jitter.uniform(-0.18, 0.18, vals.size)
        ax.scatter(x, vals, s=9, color=color, alpha=0.7, lw=0, zorder=3)
    ax.plot(
        positions,
        [v.mean() for v in values],
        ls="none",
        marker="D",
        mec="black",
        mfc="white",
        ms=6,
        zorder=4,
        label="mean",
    )
    for pos, m in zip(positions, methods, strict=True):
        if m in rates and m != method:
            ax.text(
                float(pos),
                1.01,
                f"wins {100 * rates[m]:.0f}%",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize="x-small",
            )
    ax.set_xticks(positions, methods, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.set_ylabel(metric)
    n = int((block["method"] == methods[0]).sum())
    title = f"{metric}, regime {regime} ({n} held-out labels x folds)"
    if rates:
        title += f"\nabove the boxes: {method}'s win rate against each"
    ax.set_title(title, fontsize="medium", pad=14 if rates else 6)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", frameon=False, loc="best")
    return ax
