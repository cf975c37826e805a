"""Precision-recall curves behind the pair benchmark's average precision (what the report draws)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._benchmark import _check_square, _positive_matrix
from ._distance import similarity_matrix

if TYPE_CHECKING:
    from ._distance import Metric


def precision_recall_curves(
    embeddings: Mapping[str, pd.DataFrame],
    pairs: Mapping[str, pd.DataFrame],
    *,
    metric: Metric = "correlation",
    genes: Mapping[str, str] | None = None,
    max_points: int = 200,
) -> pd.DataFrame:
    """Precision-recall curves of each embedding's similarity against each gene-pair file.

    Parameters
    ----------
    embeddings
        Name -> labels x features (:func:`embedding`).
    pairs
        Pairs-file name -> known gene pairs (:func:`read_gene_pairs`).
    metric
        Similarity metric (:func:`similarity_matrix`).
    genes
        Label -> gene; default each label is its own gene.
    max_points
        Points kept per curve (evenly spaced in recall, ends kept), so the table stays small.

    Returns
    -------
    Long table with columns ``pairs_file, embedding, recall, precision, average_precision,
    prevalence`` (the last two constant per curve); curves without positive or negative
    pairs are left out. What ``ps.pl.precision_recall`` draws.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    frames = []
    for ename, emb in embeddings.items():
        labels, s = _check_square(similarity_matrix(emb, metric=metric))
        iu, ju = np.triu_indices(len(labels), k=1)
        values = s[iu, ju]
        ok = np.isfinite(values)
        for fname, known in pairs.items():
            truth = _positive_matrix(labels, known, genes)[iu, ju][ok]
            if truth.all() or not truth.any():
                continue
            precision, recall, _ = precision_recall_curve(truth, values[ok])
            keep = np.unique(
                np.r_[0, np.searchsorted(-recall, -np.linspace(1, 0, max_points)), recall.size - 1]
            )
            keep = keep[keep < recall.size]
            frames.append(
                pd.DataFrame(
                    {
                        "pairs_file": fname,
                        "embedding": ename,
                        "recall": recall[keep],
                        "precision": precision[keep],
                        "average_precision": float(average_precision_score(truth, values[ok])),
                        "prevalence": float(truth.mean()),
                    }
                )
            )
    columns = ["pairs_file", "embedding", "recall", "precision", "average_precision", "prevalence"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
