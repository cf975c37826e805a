r"""Similarity of perturbations from an embedding (labels x features): higher means more alike.

For rows :math:`x_a, x_b` of the embedding:

.. math::

    s_\text{cosine}(a, b) = \frac{x_a \cdot x_b}{\lVert x_a \rVert \lVert x_b \rVert},
    \qquad
    s_\text{correlation}(a, b) = s_\text{cosine}(x_a - \bar x_a, x_b - \bar x_b),
    \qquad
    s_\text{euclidean}(a, b) = 1 - \frac{\lVert x_a - x_b \rVert}{\max_{c, d} \lVert x_c - x_d \rVert},

(``bar x_a`` the mean of row ``a`` over features; one global scaling keeps the Euclidean
similarity symmetric). The matching distances (:func:`distance_matrix`) are ``1 - s`` for
cosine and correlation and ``||x_a - x_b||`` itself for Euclidean.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist, squareform

logger = logging.getLogger(__name__)

Metric = Literal["correlation", "cosine", "euclidean"]
#: Similarity metrics.
METRICS: tuple[str, ...] = ("correlation", "cosine", "euclidean")


def _values(embedding: pd.DataFrame, metric: str) -> np.ndarray:
    if metric not in METRICS:
        msg = f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}"
        raise ValueError(msg)
    if not isinstance(embedding, pd.DataFrame):
        msg = f"embedding must be a labels x features DataFrame, got {type(embedding).__name__}"
        raise TypeError(msg)
    if not embedding.index.is_unique:
        dup = embedding.index[embedding.index.duplicated()].unique().tolist()
        msg = f"embedding has duplicated labels: {dup[:10]}"
        raise ValueError(msg)
    x = embedding.to_numpy(dtype=np.float64)
    if x.shape[1] == 0:
        msg = "embedding has no features (columns)"
        raise ValueError(msg)
    if not np.all(np.isfinite(x)):
        msg = "embedding has NaN or infinite values"
        raise ValueError(msg)
    return x


def _cosine(x: np.ndarray, bad: np.ndarray, embedding: pd.DataFrame, what: str) -> np.ndarray:
    if bad.any():
        logger.warning(
            "%d label(s) have zero %s, their similarities are NaN: %s",
            int(bad.sum()),
            what,
            [str(v) for v in embedding.index[bad][:10]],
        )
    norm = np.linalg.norm(x, axis=1)
    unit = np.divide(x, norm[:, None], out=np.zeros_like(x), where=~bad[:, None])
    s = np.clip(unit @ unit.T, -1.0, 1.0)
    s[bad, :] = np.nan
    s[:, bad] = np.nan
    return s


def similarity_matrix(embedding: pd.DataFrame, *, metric: Metric = "correlation") -> pd.DataFrame:
    """Pairwise similarity of the embedding's rows (labels x labels, higher = more alike).

    Parameters
    ----------
    embedding
        Labels x features (e.g. :func:`pertspectra.similarity.embedding`).
    metric
        ``"correlation"`` (Pearson correlation of rows), ``"cosine"`` or ``"euclidean"``
        (``1 - d / max d``), see the module docstring.

    Returns
    -------
    Symmetric DataFrame indexed and columned by the labels, diagonal 1. A row with zero norm
    (cosine) or zero variance (correlation) has NaN similarity to every other label; a warning
    is logged.

    Raises
    ------
    ValueError
        For an unknown metric, duplicated labels, no features or non-finite values.
    """
    x = _values(embedding, metric)
    n = x.shape[0]
    if metric == "euclidean":
        d = squareform(pdist(x, metric="euclidean")) if n > 1 else np.zeros((n, n))
        top = d.max(initial=0.0)
        s = 1.0 - d / top if top > 0 else np.ones((n, n))
    elif metric == "cosine":
        s = _cosine(x, ~np.any(x != 0, axis=1), embedding, "norm")
    else:
        centred = x - x.mean(axis=1, keepdims=True)
        # constant rows: zero spread, up to rounding relative to the row's magnitude
        spread = np.abs(centred).max(axis=1)
        bad = spread <= 1e-12 * np.abs(x).max(axis=1)
        s = _cosine(centred, bad, embedding, "variance")
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    labels = pd.Index(embedding.index, name="label")
    return pd.DataFrame(s, index=labels, columns=labels.rename("label"))


def distance_matrix(embedding: pd.DataFrame, *, metric: Metric = "correlation") -> pd.DataFrame:
    """Pairwise distance of the embedding's rows (labels x labels, 0 on the diagonal).

    Parameters
    ----------
    embedding
        Labels x features.
    metric
        ``"correlation"`` or ``"cosine"`` (``1 - similarity``, in ``[0, 2]``) or
        ``"euclidean"`` (the Euclidean distance itself, unscaled).

    Returns
    -------
    Symmetric DataFrame of distances (NaN where :func:`similarity_matrix` gives NaN).
    """
    if metric == "euclidean":
        x = _values(embedding, metric)
        n = x.shape[0]
        d = squareform(pdist(x, metric="euclidean")) if n > 1 else np.zeros((n, n))
        labels = pd.Index(embedding.index, name="label")
        return pd.DataFrame(d, index=labels, columns=labels)
    s = similarity_matrix(embedding, metric=metric)
    d = 1.0 - s.to_numpy()
    np.fill_diagonal(d, 0.0)
    return pd.DataFrame(np.maximum(d, 0.0), index=s.index, columns=s.columns)
