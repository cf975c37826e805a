"""Helpers shared by the figures: input checks, new axes, heat maps, clustering order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax`` itself, or the Axes of a new figure of ``figsize`` inches (constrained layout)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def check_frame(table: object, columns: Iterable[str], name: str) -> pd.DataFrame:
    """``table`` as a non-empty DataFrame holding ``columns``, or a ValueError naming the gap."""
    if not isinstance(table, pd.DataFrame):
        msg = f"{name} must be a pandas DataFrame, got {type(table).__name__}"
        raise TypeError(msg)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        msg = f"{name} lacks the columns {missing} (has {list(table.columns)})"
        raise ValueError(msg)
    if table.empty:
        msg = f"{name} is empty"
        raise ValueError(msg)
    return table


def resolve_regime(table: pd.DataFrame, regime: str | None, name: str) -> str:
    """``regime`` checked against ``table["regime"]``, or the only regime present."""
    present = list(dict.fromkeys(table["regime"].astype(str)))
    if regime is None:
        if len(present) != 1:
            msg = f"{name} holds several regimes {present}: pass regime= to choose one"
            raise ValueError(msg)
        return present[0]
    if regime not in present:
        msg = f"regime {regime!r} is not in {name} (regimes: {present})"
        raise ValueError(msg)
    return regime


def truncate(text: object, width: int = 40) -> str:
    """``text`` as a string of at most ``width`` characters (an ellipsis marks a cut)."""
    s = str(text)
    return s if len(s) <= width else s[: width - 1].rstrip() + "…"


def display_names(
    ids: Iterable[object], names: Mapping[str, str] | None, width: int = 40
) -> list[str]:
    """Column labels ``names[id]`` (or the id itself), truncated to ``width`` characters."""
    names = {} if names is None else {str(k): str(v) for k, v in dict(names).items()}
    return [truncate(names.get(str(i), str(i)), width) for i in ids]


def leaf_order(matrix: np.ndarray, *, metric: str = "euclidean") -> np.ndarray:
    """Row order of an average-linkage clustering of ``matrix``'s rows (identity below 3 rows)."""
    n = matrix.shape[0]
    if n < 3:
        return np.arange(n)
    from scipy.cluster.hierarchy import leaves_list, linkage

    data = np.nan_to_num(np.asarray(matrix, dtype=float))
    if metric == "correlation" and np.any(data.std(axis=1) == 0):
        metric = "euclidean"  # correlation is undefined for constant rows
    return np.asarray(leaves_list(linkage(data, method="average", metric=metric)))


def heatmap(
    ax: Axes,
    matrix: np.ndarray,
    *,
    rows: list[str],
    columns: list[str],
    cmap: str,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: str | None = None,
    max_ticks: int = 80,
    xrotation: float = 90,
    **imshow: Any,
) -> AxesImage:
    """Draw ``matrix`` (rows x columns) with ``imshow``, tick labels and an optional colorbar."""
    image = ax.imshow(
        matrix, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", **imshow
    )
    if len(columns) <= max_ticks:
        ha = "center" if xrotation in (0, 90) else "right"
        ax.set_xticks(np.arange(len(columns)), columns, rotation=xrotation, ha=ha, fontsize="small")
    else:
        ax.set_xticks([])
    if len(rows) <= max_ticks:
        ax.set_yticks(np.arange(len(rows)), rows, fontsize="small")
    else:
        ax.set_yticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if colorbar is not None:
        bar = ax.figure.colorbar(image, ax=ax, shrink=0.6, pad=0.02)
        bar.set_label(colorbar)
    return image


def identity_line(ax: Axes, x: np.ndarray, y: np.ndarray, *, label: str | None = "y = x") -> None:
    """Dashed ``y = x`` over the range of ``x`` and ``y`` (a margin around it)."""
    from ._style import REFERENCE_COLOR

    values = np.concatenate([np.ravel(x), np.ravel(y)]).astype(float)
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], ls="--", lw=1, color=REFERENCE_COLOR, label=label, zorder=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)


SUMMARY_NEEDS = ("regime", "condition", "method", "metric", "n", "versus", "win_rate")


def win_rate_table(summary: pd.DataFrame, *, method: str, regime: str) -> pd.DataFrame:
    """``method``'s win rate per ``metric`` (rows) and ``versus`` (columns) in ``regime``.

    When the regime has several conditions, their win rates are pooled weighted by ``n``.
    """
    block = summary[
        (summary["regime"].astype(str) == regime) & (summary["method"].astype(str) == method)
    ].copy()
    block["versus"] = block["versus"].fillna("").astype(str)
    block = block[(block["versus"] != "") & block["win_rate"].notna()]
    if block.empty:
        methods = sorted(summary["method"].astype(str).unique())
        msg = f"summary has no win rate of {method!r} in regime {regime!r} (methods: {methods})"
        raise ValueError(msg)
    weight = block["n"].fillna(0).astype(float).clip(lower=0) + 1e-12
    block["_w"] = weight
    block["_wv"] = weight * block["win_rate"].astype(float)
    pooled = block.groupby(["metric", "versus"], sort=False)[["_w", "_wv"]].sum()
    rates = (pooled["_wv"] / pooled["_w"]).unstack("versus")
    rates.index = rates.index.astype(str)
    return rates.reindex(index=list(dict.fromkeys(block["metric"].astype(str))))


def annotate_points(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    texts: list[str],
    order: Iterable[int],
    *,
    max_n: int,
    min_distance: float = 12.0,
) -> None:
    """Label up to ``max_n`` points, taken in ``order``, so that labels do not pile up.

    A point closer than ``min_distance`` display points to one already labelled is skipped.
    """
    placed: list[np.ndarray] = []
    scale = ax.figure.dpi / 72.0
    for i in order:
        if len(placed) >= max_n:
            break
        where = ax.transData.transform((x[i], y[i])) / scale
        if any(np.hypot(*(where - p)) < min_distance for p in placed):
            continue
        placed.append(where)
        ax.annotate(
            texts[i],
            (x[i], y[i]),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize="x-small",
            color="#333333",
        )
