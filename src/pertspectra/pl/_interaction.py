"""Combinations: observed, additive and predicted change of one double; model vs additive."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pertspectra.evaluate._metrics import LOWER_IS_BETTER

from ._common import check_frame, identity_line, new_axes
from ._style import METHOD_COLORS, PROFILE_COLORS

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
            x + (i - 1) * width, values[top].to_numpy(), width, label=name,
            color=PROFILE_COLORS[name],
        )  # fmt: skip
    ax.axhline(0, color="#666666", lw=0.8)
    ax.set_xticks(x, list(top), rotation=90, fontsize="small")
    ax.set_ylabel("change vs control")
    ax.set_title(label or "combination", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return ax


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
        Points furthest from the diagonal annotated with their label.
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
    lower = metric in LOWER_IS_BETTER or metric.startswith(("mse", "mae"))
    better = float(np.mean(y < x if lower else y > x))
    ax = new_axes(ax, (5.5, 5.0))
    ax.scatter(x, y, s=18, color=METHOD_COLORS["model"], alpha=0.75, lw=0, zorder=3)
    identity_line(ax, x, y)
    for i in np.argsort(-np.abs(y - x), kind="stable")[:max_labels]:
        ax.annotate(
            str(wide.index[i][1]), (x[i], y[i]), fontsize="x-small", xytext=(3, 3),
            textcoords="offset points",
        )  # fmt: skip
    ax.set_xlabel(f"{baseline}: {metric}")
    ax.set_ylabel(f"{method}: {metric}")
    ax.set_title(
        f"{method} better on {better:.0%} of {len(x)} combinations ({'lower' if lower else 'higher'} is better)",
        fontsize="medium",
    )
    return ax
