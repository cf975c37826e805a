"""Over-representation of gene lists in gene sets: the one-sided hypergeometric test, offline.

Used for a program's top genes, for a cluster of perturbed genes (:mod:`pertspectra.similarity`)
and, on terms instead of genes, by the paper's recovery test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = ["query", "gene_set", "overlap", "set_size", "query_size", "universe_size", "p", "fdr"]


def hypergeometric_sf(
    x: np.ndarray, M: int, n: np.ndarray | int, N: np.ndarray | int
) -> np.ndarray:
    """``P[X >= x]`` for ``X ~ Hypergeometric(population M, successes n, draws N)``."""
    x = np.asarray(x)
    return np.clip(stats.hypergeom.sf(x - 1, M, n, N), 0.0, 1.0)


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept as NaN)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def overrepresentation(
    queries: Mapping[str, Iterable[str]],
    gene_sets: Mapping[str, Iterable[str]],
    *,
    universe: Iterable[str] | None = None,
    min_size: int = 1,
    max_size: int | None = None,
) -> pd.DataFrame:
    """Hypergeometric over-representation of each query gene list in each gene set.

    Parameters
    ----------
    queries
        Name -> genes (a program's top genes, a cluster's target genes, ...).
    gene_sets
        Name -> genes (e.g. :func:`pertspectra.priors.read_gmt`).
    universe
        The background. Default: every gene of ``gene_sets``. Queries and sets are cut to it,
        and the size filter applies to the cut sets.
    min_size, max_size
        Keep sets with this many genes in the universe.

    Returns
    -------
    Tidy DataFrame, one row per query and set with at least one gene in common: ``query``,
    ``gene_set``, ``overlap``, ``set_size``, ``query_size``, ``universe_size``, ``p``
    (``P[X >= overlap]``) and ``fdr`` (Benjamini-Hochberg over the sets tested for that query),
    sorted by query then ``p``.
    """
    sets = {name: set(map(str, genes)) for name, genes in gene_sets.items()}
    if universe is None:
        uni: set[str] = set().union(*sets.values()) if sets else set()
    else:
        uni = set(map(str, universe))
    sets = {k: v & uni for k, v in sets.items()}
    sets = {
        k: v
        for k, v in sets.items()
        if len(v) >= min_size and (max_size is None or len(v) <= max_size)
    }
    M = len(uni)
    names = list(sets)
    sizes = np.array([len(sets[k]) for k in names])
    frames = []
    for qname, genes in queries.items():
        q = set(map(str, genes)) & uni
        if not q or not names:
            continue
        overlap = np.array([len(q & sets[k]) for k in names])
        p = hypergeometric_sf(overlap, M, sizes, len(q))
        fdr = bh(p)
        hit = overlap > 0
        frames.append(
            pd.DataFrame(
                {
                    "query": str(qname),
                    "gene_set": np.array(names, dtype=object)[hit],
                    "overlap": overlap[hit],
                    "set_size": sizes[hit],
                    "query_size": len(q),
                    "universe_size": M,
                    "p": p[hit],
                    "fdr": fdr[hit],
                }
            )
        )
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["query", "p", "gene_set"], kind="stable").reset_index(drop=True)
