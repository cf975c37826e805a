"""Edge tables -> a sparse gene x gene prior aligned to ``var_names``.

The prior adjacency ``A`` is symmetric with a zero diagonal. An undirected gene pair
``{j, k}`` gets the largest weight among all rows naming it (either orientation, and every
protein that maps to the same symbol): ``A_jk = A_kj = max w``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._files import CHUNKSIZE, read_header, split_header

logger = logging.getLogger(__name__)


def read_edge_list(
    path: str | Path,
    *,
    source: str = "source",
    target: str = "target",
    weight: str | None = "weight",
    sep: str | None = None,
    min_weight: float | None = None,
    genes: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Read a generic edge list (TSV or CSV, possibly gzipped).

    Parameters
    ----------
    path
        File with a header naming at least the ``source`` and ``target`` columns.
    source, target
        Column names of the two ends.
    weight
        Weight column; when ``None`` or absent from the file every edge weighs 1.
    sep
        Field separator; detected from the header line when ``None``.
    min_weight
        Keep edges with at least this weight.
    genes
        Keep only edges whose two ends are among these names.

    Returns
    -------
    DataFrame with columns ``source``, ``target``, ``weight``.
    """
    edges, _ = read_edge_list_detailed(
        path,
        source=source,
        target=target,
        weight=weight,
        sep=sep,
        min_weight=min_weight,
        genes=genes,
    )
    return edges


def read_edge_list_detailed(
    path: str | Path,
    *,
    source: str = "source",
    target: str = "target",
    weight: str | None = "weight",
    sep: str | None = None,
    min_weight: float | None = None,
    genes: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, frozenset[str]]:
    """Like :func:`read_edge_list`, also returning every name the file holds."""
    path = Path(path)
    cols, detected = split_header(read_header(path))
    sep = sep or detected
    if source not in cols or target not in cols:
        msg = f"{path}: columns {source!r} and {target!r} not in the header {cols[:8]}"
        raise ValueError(msg)
    has_weight = weight is not None and weight in cols
    usecols = [source, target, *([weight] if has_weight else [])]
    wanted = None if genes is None else set(map(str, genes))
    parts = []
    names: set[str] = set()
    for chunk in pd.read_csv(
        path,
        sep=sep,
        usecols=usecols,
        dtype={source: str, target: str},
        chunksize=CHUNKSIZE,
        keep_default_na=False,
    ):
        out = pd.DataFrame(
            {
                "source": chunk[source].to_numpy(),
                "target": chunk[target].to_numpy(),
                "weight": pd.to_numeric(chunk[weight]).to_numpy(np.float64) if has_weight else 1.0,
            }
        )
        if wanted is not None:
            out = out[out["source"].isin(wanted) & out["target"].isin(wanted)]
        if min_weight is not None:
            out = out[out["weight"] >= min_weight]
        names.update(pd.unique(chunk[source]), pd.unique(chunk[target]))
        parts.append(out)
    edges = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["source", "target", "weight"])
    )
    edges.attrs["pertspectra"] = {"file": str(path), "format": "edge_list"}
    return edges, frozenset(names)


def _index(var_names: Sequence[str], aliases: Mapping[str, str] | None) -> dict[str, int]:
    names = pd.Index([str(v) for v in var_names])
    if not names.is_unique:
        dup = names[names.duplicated()].unique()[:5].tolist()
        msg = f"var_names are not unique (e.g. {dup}); call adata.var_names_make_unique() first"
        raise ValueError(msg)
    index = {n: i for i, n in enumerate(names)}
    for alias, name in (aliases or {}).items():
        if alias not in index and name in index:
            index[alias] = index[name]
    return index


def prior_matrix(
    edges: pd.DataFrame,
    var_names: Sequence[str],
    *,
    binary: bool = False,
    aliases: Mapping[str, str] | None = None,
    dtype: type = np.float32,
) -> sp.csr_matrix:
    """Build the symmetric, zero-diagonal gene x gene prior from an edge table.

    Parameters
    ----------
    edges
        DataFrame with ``source``, ``target`` and (unless ``binary``) ``weight`` in [0, 1].
    var_names
        Gene names giving the rows/columns, in order (``adata.var_names``); must be unique.
    binary
        Every kept edge weighs 1 instead of its score.
    aliases
        Extra names -> a var name (e.g. the current symbol of a var name given as an Ensembl
        id), used to look up edge ends only.
    dtype
        Floating dtype of the result.

    Returns
    -------
    ``scipy.sparse.csr_matrix`` of shape ``(len(var_names), len(var_names))``; a pair named by
    several rows keeps the largest weight; self-pairs are dropped.
    """
    missing = {"source", "target"} - set(edges.columns)
    if missing:
        msg = f"edge table lacks column(s) {sorted(missing)} (has {list(edges.columns)})"
        raise ValueError(msg)
    index = _index(var_names, aliases)
    g = len(var_names)
    i = edges["source"].astype(str).map(index).to_numpy(np.float64, na_value=np.nan)
    j = edges["target"].astype(str).map(index).to_numpy(np.float64, na_value=np.nan)
    if "weight" not in edges.columns:
        w = np.ones(len(edges))
    else:
        w = pd.to_numeric(edges["weight"]).to_numpy(np.float64)
        bad = ~np.isfinite(w) | (w < 0) | ((w > 1) & (not binary))
        if bad.any():
            msg = (
                f"{int(bad.sum())} edge weight(s) outside [0, 1] (e.g. {w[bad][:3].tolist()}); "
                "rescale them or use binary=True"
            )
            raise ValueError(msg)
    ok = ~np.isnan(i) & ~np.isnan(j) & (i != j) & (w > 0)  # a zero weight is no edge
    if binary:
        w = np.ones(len(w))
    i, j, w = i[ok].astype(np.int64), j[ok].astype(np.int64), w[ok]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = lo * g + hi
    order = np.lexsort((-w, key))
    key, w = key[order], w[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, w = key[first], w[first]
    lo, hi = key // g, key % g
    mat = sp.coo_matrix(
        (
            np.concatenate([w, w]).astype(dtype),
            (np.concatenate([lo, hi]), np.concatenate([hi, lo])),
        ),
        shape=(g, g),
    ).tocsr()
    mat.sort_indices()
    logger.info(
        "prior: %d undirected edges on %d of %d genes",
        len(key),
        int((mat.getnnz(axis=1) > 0).sum()),
        g,
    )
    return mat
