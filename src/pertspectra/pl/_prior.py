"""Prior coverage: how much of the measured and perturbed genes the prior graph reaches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ._common import new_axes
from ._style import METHOD_COLORS, REFERENCE_COLOR

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: With a degree histogram, the share of the axes' width left to the bars (the rest: the inset).
BAR_SHARE = 0.55


def prior_coverage(
    report: Mapping[str, Any], *, degrees: np.ndarray | None = None, ax: Axes | None = None
) -> Axes:
    """Horizontal bars of genes and perturbed genes with and without prior edges.

    Parameters
    ----------
    report
        :meth:`pertspectra.priors.PriorReport.to_dict` (or the ``uns`` provenance of a prior):
        ``n_genes``, ``n_genes_with_edges``, ``n_edges``, ``n_perturbed``,
        ``perturbed_without_edges``, ``perturbed_not_measured``.
    degrees
        Edges per gene; drawn as a histogram in an inset on the right part of the axes (the
        bars keep the left part).
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: one bar per count (genes with / without edges; perturbed genes with
    edges, measured without edges, not measured).
    """
    need = ("n_genes", "n_genes_with_edges", "n_edges")
    missing = [k for k in need if k not in report]
    if missing:
        msg = f"report lacks {missing} (a PriorReport.to_dict())"
        raise ValueError(msg)
    n_genes, with_edges = int(report["n_genes"]), int(report["n_genes_with_edges"])
    if not 0 <= with_edges <= n_genes:
        msg = f"n_genes_with_edges ({with_edges}) must lie between 0 and n_genes ({n_genes})"
        raise ValueError(msg)
    bad_degrees = degrees is not None and (
        np.size(degrees) == 0 or bool(np.any(np.asarray(degrees, dtype=float) < 0))
    )
    if bad_degrees:
        msg = "degrees must be a non-empty array of edge counts (>= 0) per gene"
        raise ValueError(msg)
    no_edge = len(list(report.get("perturbed_without_edges", []) or []))
    absent = len(list(report.get("perturbed_not_measured", []) or []))
    n_pert = int(report.get("n_perturbed", 0) or 0)
    bars = [
        ("genes with an edge", with_edges, METHOD_COLORS["model"]),
        ("genes without an edge", n_genes - with_edges, REFERENCE_COLOR),
    ]
    if n_pert or absent:
        bars += [
            ("perturbed, with an edge", max(n_pert - no_edge - absent, 0), METHOD_COLORS["model"]),
            ("perturbed, measured, no edge", no_edge, METHOD_COLORS["ceiling"]),
            ("perturbed, not measured", absent, REFERENCE_COLOR),
        ]
    ax = new_axes(ax, (10.0 if degrees is not None else 7.0, 3.8))
    y = np.arange(len(bars))[::-1]
    ax.barh(y, [b[1] for b in bars], color=[b[2] for b in bars])
    ax.set_yticks(y, [b[0] for b in bars], fontsize="small")
    for yi, (_, count, _) in zip(y, bars, strict=True):
        ax.annotate(
            str(count),
            (count, yi),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
        )
    ax.set_xlabel("genes")
    ax.set_title(
        f"Prior graph: {int(report['n_edges'])} edges on {n_genes} genes",
        fontsize="medium",
        loc="left" if degrees is not None else "center",  # above the bars, not the inset
    )
    positive = [b[1] for b in bars if b[1] > 0]
    # with degrees the bars keep the left part of the axes and the histogram the right part,
    # inside the axes' box (a layout engine does not make room for an inset outside it)
    share = BAR_SHARE if degrees is not None else 1.0
    top = max(positive, default=1)
    if positive and top > 30 * min(positive):
        ax.set_xscale("log")  # perturbed genes are few next to all genes
        lo, hi = np.log10(0.8), np.log10(3 * top)
        ax.set_xlim(0.8, 10 ** (lo + (hi - lo) / share))
        ax.set_xlabel("genes (log scale)")
    elif share < 1.0:
        ax.set_xlim(0, 1.15 * top / share)
    if degrees is not None:
        _bars_axis_only(ax, share)
        inset = ax.inset_axes((0.68, 0.16, 0.29, 0.66))
        d = np.asarray(degrees, dtype=float)
        inset.hist(d[d > 0] if (d > 0).any() else d, bins=30, color=METHOD_COLORS["model"])
        inset.set_title("edges per gene\n(genes with >= 1 edge)", fontsize="small")
        inset.set_xlabel("edges", fontsize="small")
        inset.tick_params(labelsize="x-small")
    return ax


def _bars_axis_only(ax: Axes, share: float) -> None:
    """Draw the x axis (spine, ticks, label) under the bars' part of the axes only."""
    from matplotlib.ticker import FixedLocator

    x0, x1 = ax.get_xlim()
    if ax.get_xscale() == "log":
        end = 10 ** (np.log10(x0) + share * (np.log10(x1) - np.log10(x0)))
    else:
        end = x0 + share * (x1 - x0)
    major, minor = ax.xaxis.get_majorticklocs(), ax.xaxis.get_minorticklocs()
    ax.xaxis.set_major_locator(FixedLocator([t for t in major if x0 <= t <= end]))
    ax.xaxis.set_minor_locator(FixedLocator([t for t in minor if x0 <= t <= end]))
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines["bottom"].set_bounds(x0, end)
    ax.xaxis.set_label_coords(share / 2, -0.1)
