"""Clustered similarity of perturbations, with a strip marking clusters and their terms.

The order is the leaf order of average-linkage (UPGMA) clustering of :math:`d = 1 - s` (made
symmetric, clipped at 0); with given clusters, the clusters come in the order of their first
member in that tree and each is ordered by its own tree.
"""

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
        Square labels x labels similarity (e.g. correlation in [-1, 1]). Rows and columns are
        ordered by average-linkage clustering of the distance ``1 - sim``.
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
    The Axes drawn on: the first image is ``sim`` reordered (rows and columns alike), with a
    colorbar; with ``clusters``, a second image left of it is the cluster strip (cluster
    ``i`` of the legend drawn as code ``i``) and the legend lists each cluster's size and
    terms (the first 20 clusters).
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
    n = len(names)
    side = min(max(6.0, 3.0 + 0.17 * n), 14.0)
    ax = new_axes(ax, (side + (3.5 if clusters is not None else 1.0), side))
    image = heatmap(
        ax,
        ordered,
        rows=names,
        columns=names,
        cmap=DIVERGING,
        vmin=-1,
        vmax=1,
        max_ticks=max_ticks,
    )
    if n > 30:
        ax.tick_params(labelsize="x-small")
    ax.set_title(f"Similarity of {n} perturbations", fontsize="medium")
    if clusters is None:
        bar = ax.figure.colorbar(image, ax=ax, shrink=0.6, pad=0.02)
        bar.set_label("similarity")
        return ax
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    ids = list(pd.unique(clusters.reindex(names)))
    colors = category_colors(len(ids))
    code = np.array([ids.index(clusters[lab]) for lab in names])
    # the strip: one cell per label, left of the map, in data coordinates
    width = max(0.8, 0.03 * n)
    right = -0.5 - 0.3 * width
    ax.imshow(
        code[:, None],
        aspect="auto",
        cmap=ListedColormap(colors),
        vmin=-0.5,
        vmax=len(ids) - 0.5,
        interpolation="nearest",
        extent=(right - width, right, n - 0.5, -0.5),
    )
    ax.set_xlim(right - width, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    bar = ax.figure.colorbar(image, ax=ax, location="bottom", shrink=0.4, pad=0.02, aspect=30)
    bar.set_label("similarity")
    text = {} if terms is None else {str(k): str(v) for k, v in dict(terms).items()}
    handles = [
        Patch(
            color=colors[i],
            label=f"{cid} ({int((code == i).sum())}): " + truncate(text.get(str(cid), ""), 45),
        )
        for i, cid in enumerate(ids[:20])
    ]
    ax.legend(
        handles=handles,
        fontsize="x-small",
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        title="cluster (size): top terms",
        title_fontsize="small",
    )
    return ax


def _order(dist: np.ndarray) -> np.ndarray:
    """Leaf order of average linkage on a square distance matrix (identity below 3)."""
    n = dist.shape[0]
    if n < 3:
        return np.arange(n)
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    return np.asarray(leaves_list(linkage(squareform(dist, checks=False), method="average")))
