r"""Groups of perturbations that act alike, and what their target genes share.

Clusters come from agglomerative (hierarchical) clustering of the distance
``d(a, b) = 1 - s(a, b)`` for a similarity ``s`` with ``s(a, a) = 1``: for cosine and
correlation this is the usual cosine / correlation distance, for the Euclidean similarity
``1 - ||x_a - x_b|| / max`` it is the Euclidean distance divided by its maximum. The tree is
cut into ``k`` flat clusters (``scipy.cluster.hierarchy.fcluster``, ``maxclust``); by default
``k`` maximises the mean silhouette width

.. math::

    \bar\sigma = \frac{1}{n} \sum_a \frac{b_a - a_a}{\max(a_a, b_a)}

(``a_a`` the mean distance of ``a`` to its own cluster, ``b_a`` to the nearest other one).
Each cluster's target genes are then tested for over-representation in gene sets
(:func:`pertspectra.enrich.overrepresentation`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
import pandas as pd

from ..enrich import overrepresentation

logger = logging.getLogger(__name__)

Linkage = Literal["average", "complete", "single", "weighted", "ward"]
#: Linkage methods accepted by :func:`cluster`.
METHODS: tuple[str, ...] = ("average", "complete", "single", "weighted", "ward")
#: Columns of :func:`cluster_terms`.
TERM_COLUMNS = ["cluster", "gene_set", "overlap", "set_size", "query_size", "p", "fdr"]


def _distances(similarity: pd.DataFrame) -> np.ndarray:
    if similarity.shape[0] != similarity.shape[1] or not similarity.index.equals(
        similarity.columns
    ):
        msg = "similarity must be square with the same labels, in the same order, on both axes"
        raise ValueError(msg)
    s = similarity.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(s)):
        bad = similarity.index[~np.isfinite(s).all(axis=1)].tolist()
        msg = f"similarity has NaN values (zero-variance labels?), drop these first: {bad[:10]}"
        raise ValueError(msg)
    d = np.maximum(1.0 - (s + s.T) / 2, 0.0)
    np.fill_diagonal(d, 0.0)
    return d


def similarity_linkage(similarity: pd.DataFrame, *, method: Linkage = "average") -> np.ndarray:
    """The hierarchical-clustering tree of a similarity matrix (scipy linkage matrix).

    Parameters
    ----------
    similarity
        Square labels x labels similarity, diagonal 1 (:func:`similarity_matrix`).
    method
        ``"average"`` (UPGMA), ``"complete"``, ``"single"``, ``"weighted"`` or ``"ward"``
        (Ward assumes Euclidean distances; use it with the Euclidean similarity).

    Returns
    -------
    The ``(n - 1) x 4`` linkage matrix of ``scipy.cluster.hierarchy.linkage`` on the condensed
    distance ``1 - similarity`` (e.g. for ``scipy.cluster.hierarchy.dendrogram``).
    """
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    if method not in METHODS:
        msg = f"unknown linkage method {method!r}; choose one of {', '.join(METHODS)}"
        raise ValueError(msg)
    d = _distances(similarity)
    if d.shape[0] < 2:
        msg = f"need at least two labels to cluster, got {d.shape[0]}"
        raise ValueError(msg)
    return linkage(squareform(d, checks=False), method=method)


def _renumber(raw: np.ndarray) -> np.ndarray:
    """Clusters 1.. by decreasing size, ties by the position of their first member."""
    ids, first, size = np.unique(raw, return_index=True, return_counts=True)
    order = sorted(range(ids.size), key=lambda i: (-size[i], first[i]))
    new = {ids[i]: rank + 1 for rank, i in enumerate(order)}
    return np.array([new[r] for r in raw], dtype=int)


def cluster(
    similarity: pd.DataFrame,
    *,
    n_clusters: int | None = None,
    method: Linkage = "average",
    max_clusters: int = 15,
) -> pd.Series:
    """Cluster perturbations hierarchically on ``1 - similarity``.

    Parameters
    ----------
    similarity
        Square labels x labels similarity, diagonal 1, no NaN (:func:`similarity_matrix`; drop
        zero-variance labels first).
    n_clusters
        Number of flat clusters (``fcluster`` ``maxclust``; fewer when the tree has ties).
        Default: the ``k`` in ``2 .. min(max_clusters, n - 1)`` with the largest mean
        silhouette (``sklearn.metrics.silhouette_score`` on the precomputed distances; ties
        to the smaller ``k``); one cluster when there are fewer than three labels.
    method
        Linkage method (:func:`similarity_linkage`).
    max_clusters
        Largest ``k`` tried when ``n_clusters`` is ``None``.

    Returns
    -------
    Series ``cluster`` indexed by label (``label``), in the similarity's order: clusters
    numbered 1, 2, ... by decreasing size, ties by their first label in that order.
    """
    from scipy.cluster.hierarchy import fcluster
    from sklearn.metrics import silhouette_score

    n = similarity.shape[0]
    if n_clusters is not None and not 1 <= n_clusters <= n:
        msg = f"n_clusters must be in 1..{n} (the number of labels), got {n_clusters}"
        raise ValueError(msg)
    tree = similarity_linkage(similarity, method=method)
    if n_clusters is None:
        d = _distances(similarity)
        best, best_k = -np.inf, 1
        for k in range(2, min(max_clusters, n - 1) + 1):
            raw = fcluster(tree, k, criterion="maxclust")
            if not 2 <= np.unique(raw).size <= n - 1:
                continue
            score = float(silhouette_score(d, raw, metric="precomputed"))
            if score > best + 1e-12:
                best, best_k = score, k
        logger.info("%d clusters (mean silhouette %.3f)", best_k, best)
        n_clusters = best_k
    raw = fcluster(tree, n_clusters, criterion="maxclust")
    return pd.Series(_renumber(raw), index=pd.Index(similarity.index, name="label"), name="cluster")


def cluster_terms(
    clusters: pd.Series,
    gene_sets: Mapping[str, Iterable[str]],
    *,
    universe: Iterable[str] | None = None,
    genes: Mapping[str, str] | None = None,
    min_size: int = 5,
    max_size: int | None = 500,
) -> pd.DataFrame:
    """Over-representation of each cluster's target genes in gene sets.

    Parameters
    ----------
    clusters
        Label -> cluster (:func:`cluster`).
    gene_sets
        Name -> genes (GO, CORUM complexes, ...).
    universe
        Background genes. Default: every gene of ``gene_sets`` (as
        :func:`pertspectra.enrich.overrepresentation`); passing the screen's targeted genes is
        the stricter choice, since a cluster can only hold targeted genes.
    genes
        Label -> target gene; default each label is its own gene.
    min_size, max_size
        Keep sets with this many genes in the universe.

    Returns
    -------
    Tidy DataFrame, one row per cluster and set sharing at least one gene: ``cluster``,
    ``gene_set``, ``overlap``, ``set_size``, ``query_size``, ``p`` and ``fdr``
    (Benjamini-Hochberg over the sets tested for that cluster), sorted by cluster, ``fdr``
    then ``p``.
    """
    members = _members(clusters, genes)
    res = overrepresentation(
        {str(c): g for c, g in members.items()},
        gene_sets,
        universe=universe,
        min_size=min_size,
        max_size=max_size,
    )
    if res.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TERM_COLUMNS})
    back = {str(c): c for c in members}
    res = res.assign(cluster=res["query"].map(back))[TERM_COLUMNS]
    return res.sort_values(["cluster", "fdr", "p", "gene_set"], kind="stable").reset_index(
        drop=True
    )


def _members(clusters: pd.Series, genes: Mapping[str, str] | None) -> dict[object, list[str]]:
    genes = genes or {}
    out: dict[object, list[str]] = {c: [] for c in sorted(pd.unique(clusters))}
    for label, c in clusters.items():
        out[c].append(str(genes.get(str(label), str(label))))
    return out


def cluster_summary(
    clusters: pd.Series,
    terms: pd.DataFrame | None = None,
    *,
    n_top: int = 2,
    max_fdr: float | None = 0.05,
) -> pd.DataFrame:
    """One row per cluster: its size, its labels and its top gene-set terms.

    Parameters
    ----------
    clusters
        Label -> cluster (:func:`cluster`).
    terms
        :func:`cluster_terms` of these clusters; ``None`` leaves ``top_terms`` empty.
    n_top
        Terms named per cluster, by increasing ``fdr`` (then ``p``).
    max_fdr
        Name only terms with ``fdr`` at most this (``None``: the best ones whatever their
        ``fdr``).

    Returns
    -------
    DataFrame indexed by ``cluster``: ``size``, ``labels`` (comma-separated, in the clusters'
    order) and ``top_terms`` (``"; "``-separated, ``""`` when none passes).
    """
    groups = {c: [str(lab) for lab in clusters.index[clusters == c]] for c in clusters.unique()}
    top: dict[object, str] = dict.fromkeys(groups, "")
    if terms is not None and not terms.empty:
        kept = terms if max_fdr is None else terms[terms["fdr"] <= max_fdr]
        kept = kept.sort_values(["cluster", "fdr", "p", "gene_set"], kind="stable")
        for c, block in kept.groupby("cluster", sort=False):
            if c in top:
                top[c] = "; ".join(block["gene_set"].astype(str).head(n_top))
    order = sorted(groups)
    return pd.DataFrame(
        {
            "size": [len(groups[c]) for c in order],
            "labels": [", ".join(groups[c]) for c in order],
            "top_terms": [top[c] for c in order],
        },
        index=pd.Index(order, name="cluster"),
    )
