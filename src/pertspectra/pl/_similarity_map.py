"""Clustered similarity of perturbations, with a strip marking clusters and their terms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._common import heatmap, new_axes, truncate
from ._style import DIVERGING, category_colors

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def similarity(
    sim: pd.DataFrame,
    *,
    clusters: pd.Series | None = None,
    terms: Mapping | pd.Series | None = None,
    max_ticks: int = 60,
    ax: Axes | None = None,
) -> Axes:
    """Heat map of a square similarity, ordered by clustering, clusters marked beside it.

    Parameters
    ----------
    sim
        Square labels x labels similarity (e.g. correlation in [-1, 1]).
    clusters
        Label -> cluster; rows are then grouped by cluster (clustered within each) and a
        coloured strip left of the map marks them.
    terms
        Cluster -> text (its top gene-set terms), listed in the legend.
    max_ticks
        Tick labels are written up to this many labels.
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on (the map is ``sim`` reordered; the cluster strip is an image on an
    inset axes to the left).
    """
    if not isinstance(sim, pd.DataFrame) or sim.empty or sim.shape[0] != sim.shape[1]:
        msg = "sim must be a non-empty square labels x labels DataFrame"
        raise ValueError(msg)
    labels = [str(x) for x in sim.index]
    if labels != [str(x) for x in sim.columns]:
        msg = "sim's rows and columns must be the same labels in the same order"
        raise ValueError(msg)
    values = sim.to_numpy(dtype=float)
    dist = 1.0 - np.nan_to_num(values)
    np.fill_diagonal(dist, 0.0)
    dist = np.clip((dist + dist.T) / 2, 0.0, None)
    if clusters is not None:
        clusters = pd.Series(clusters)
        clusters.index = clusters.index.astype(str)
        missing = [lab for lab in labels if lab not in clusters.index]
        if missing:
            msg = f"clusters lacks labels {missing[:5]}"
            raise ValueError(msg)
        order: list[int] = []
        for cid in pd.unique(clusters.reindex(labels).iloc[_order(dist)]):
            members = [i for i, lab in enumerate(labels) if clusters[lab] == cid]
            sub = _order(dist[np.ix_(members, members)])
            order += [members[i] for i in sub]
        idx = np.asarray(order)
    else:
        idx = _order(dist)
    ordered = values[np.ix_(idx, idx)]
    names = [labels[i] for i in idx]
    ax = new_axes(ax, (8.5, 7.5))
    heatmap(
        ax, ordered, rows=names, columns=names, cmap=DIVERGING, vmin=-1, vmax=1,
        colorbar="similarity", max_ticks=max_ticks,
    )  # fmt: skip
    ax.set_title(f"Similarity of {len(labels)} perturbations", fontsize="medium")
    if clusters is not None:
        ids = list(pd.unique(clusters.reindex(names)))
        colors = category_colors(len(ids))
        code = np.array([ids.index(clusters[lab]) for lab in names])
        strip = ax.inset_axes((-0.04, 0.0, 0.025, 1.0))
        from matplotlib.colors import ListedColormap

        strip.imshow(
            code[:, None], aspect="auto", cmap=ListedColormap(colors), vmin=-0.5,
            vmax=len(ids) - 0.5, interpolation="nearest",
        )  # fmt: skip
        strip.set_axis_off()
        if len(names) <= max_ticks:
            ax.tick_params(axis="y", pad=14)
        from matplotlib.patches import Patch

        text = {} if terms is None else {str(k): str(v) for k, v in dict(terms).items()}
        handles = [
            Patch(
                color=colors[i],
                label=f"{cid}: "
                + truncate(text.get(str(cid), f"{int((code == i).sum())} labels"), 45),
            )
            for i, cid in enumerate(ids[:12])
        ]
        ax.legend(
            handles=handles, fontsize="x-small", frameon=False, loc="upper left",
            bbox_to_anchor=(1.18, 1.0), title="clusters",
        )  # fmt: skip
    return ax


def _order(dist: np.ndarray) -> np.ndarray:
    """Leaf order of average linkage on a square distance matrix (identity below 3)."""
    n = dist.shape[0]
    if n < 3:
        return np.arange(n)
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    return np.asarray(leaves_list(linkage(squareform(dist, checks=False), method="average")))
