"""Precision-recall curves of the pair benchmark: one line per gene-pair file and embedding."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._common import check_frame, new_axes
from ._style import category_colors

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def precision_recall(curves: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Draw precision against recall per (pairs file, embedding), with chance lines.

    Parameters
    ----------
    curves
        Columns ``pairs_file, embedding, precision, recall`` and optionally
        ``average_precision`` and ``prevalence`` (constant per curve):
        :func:`pertspectra.similarity.precision_recall_curves`, ``pr_curves.csv``.
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: one line per curve (colour: pairs file; style: embedding), a dashed
    line per pairs file at its prevalence (the precision of a random ranking).
    """
    curves = check_frame(curves, ("pairs_file", "embedding", "precision", "recall"), "curves")
    files = list(dict.fromkeys(curves["pairs_file"].astype(str)))
    embeddings = list(dict.fromkeys(curves["embedding"].astype(str)))
    colors = dict(zip(files, category_colors(len(files)), strict=True))
    styles = ["-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1))]
    ax = new_axes(ax, (6.5, 5.0))
    for (fname, ename), block in curves.groupby(["pairs_file", "embedding"], sort=False):
        block = block.sort_values("recall", kind="stable")
        label = f"{fname}, {ename}"
        if "average_precision" in block:
            label += f" (AP {float(block['average_precision'].iloc[0]):.3f})"
        ax.plot(
            block["recall"].to_numpy(dtype=float),
            block["precision"].to_numpy(dtype=float),
            color=colors[str(fname)],
            ls=styles[embeddings.index(str(ename)) % len(styles)],
            lw=1.4,
            label=label,
        )
    if "prevalence" in curves:
        for fname, block in curves.groupby("pairs_file", sort=False):
            prevalence = float(block["prevalence"].iloc[0])
            if np.isfinite(prevalence):
                ax.axhline(
                    prevalence,
                    color=colors[str(fname)],
                    ls="--",
                    lw=0.9,
                    alpha=0.8,
                    label=f"chance, {fname} ({prevalence:.3f})",
                )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall (known pairs found)")
    ax.set_ylabel("precision (share of ranked pairs that are known)")
    ax.set_title("Pairs of perturbations ranked by similarity", fontsize="medium")
    ax.legend(fontsize="x-small", frameon=False, loc="upper right")
    return ax
