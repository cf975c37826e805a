r"""Score a perturbation similarity against known gene pairs (CORUM, HuMAP, StringDB, ...).

Every unordered pair of distinct labels ``{a, b}`` is a prediction with score ``s(a, b)``
and truth ``y = 1`` when the labels' genes are a known pair. With the pairs ranked by
decreasing score and ``P_t``, ``R_t`` the precision and recall at the ``t``-th distinct score,

.. math::

    \mathrm{AP} = \sum_t (R_t - R_{t-1}) P_t, \qquad
    F_1^* = \max_t \frac{2 P_t R_t}{P_t + R_t},

(``sklearn.metrics.average_precision_score``); a random ranking has ``AP`` equal to the
prevalence, the share of positive pairs. The permutation test shuffles which gene is which
label (rows and columns of the similarity together) and asks how often a shuffled truth
scores at least as well. ``recall_tails`` is the EFAAR benchmark's recall
(``efaar_benchmarking.benchmarking.compute_recall``): the share of known pairs whose
similarity lies in the lower 5% or upper 5% of all pairs' similarities.

:func:`score_pairs_authors` reproduces the PertSpectra authors' score instead (ordered pairs,
diagonal included, per-column min-max scaled distances, trapezoidal area).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist, squareform

from ._distance import similarity_matrix
from ._pairs import canonical_pairs

if TYPE_CHECKING:
    from ._distance import Metric

logger = logging.getLogger(__name__)

#: Columns of :func:`benchmark_pairs`.
BENCHMARK_COLUMNS = [
    "pairs_file",
    "embedding",
    "metric",
    "score",
    "value",
    "prevalence",
    "n_positive",
    "p_value",
]
#: Scores of :func:`score_pairs` reported by :func:`benchmark_pairs`, with their p-value keys.
SCORES = {
    "average_precision": "p_value",
    "best_f1": "p_value_best_f1",
    "recall_tails": "p_value_recall_tails",
}
_CHUNK = 4_000_000  # permutation x pair entries held at once


def _genes_of(labels: Iterable[str], genes: Mapping[str, str] | None) -> list[str]:
    genes = genes or {}
    return [str(genes.get(lab, lab)) for lab in labels]


def _positive_matrix(
    labels: list[str], pairs: pd.DataFrame, genes: Mapping[str, str] | None
) -> np.ndarray:
    """Labels x labels boolean: the labels' genes are a known pair (symmetric, no diagonal)."""
    if not {"entity1", "entity2"} <= set(pairs.columns):
        msg = f"pairs need columns entity1, entity2 (got {list(pairs.columns)[:4]})"
        raise ValueError(msg)
    of = _genes_of(labels, genes)
    uniq = sorted(set(of))
    code = {g: i for i, g in enumerate(uniq)}
    known = canonical_pairs(pairs)
    known = known[known["entity1"].isin(code) & known["entity2"].isin(code)]
    adj = np.zeros((len(uniq), len(uniq)), dtype=bool)
    a = known["entity1"].map(code).to_numpy(dtype=int)
    b = known["entity2"].map(code).to_numpy(dtype=int)
    adj[a, b] = True
    adj[b, a] = True
    idx = np.array([code[g] for g in of], dtype=int)
    out = adj[np.ix_(idx, idx)]
    np.fill_diagonal(out, False)
    return out


def positive_pairs(
    labels: Iterable[str], pairs: pd.DataFrame, *, genes: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The unordered label pairs whose genes are a known pair.

    Parameters
    ----------
    labels
        Perturbation labels (e.g. an embedding's index).
    pairs
        Known gene pairs (``entity1``, ``entity2``; see :func:`read_gene_pairs`); duplicated,
        reversed and self pairs count once or not at all.
    genes
        Label -> gene; a label not in it is its own gene (a single perturbation's label is its
        target gene).

    Returns
    -------
    DataFrame ``label1``, ``label2`` (``label1`` before ``label2`` in ``labels`` order).
    """
    labels = [str(x) for x in labels]
    pos = _positive_matrix(labels, pairs, genes)
    i, j = np.nonzero(np.triu(pos, k=1))
    names = np.array(labels, dtype=object)
    return pd.DataFrame({"label1": names[i], "label2": names[j]})


def _check_square(similarity: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    if similarity.shape[0] != similarity.shape[1]:
        msg = f"similarity must be square (labels x labels), got shape {similarity.shape}"
        raise ValueError(msg)
    if not similarity.index.is_unique:
        msg = "similarity has duplicated labels"
        raise ValueError(msg)
    if set(similarity.index) != set(similarity.columns):
        msg = "similarity's rows and columns are not the same labels"
        raise ValueError(msg)
    s = similarity.loc[:, similarity.index].to_numpy(dtype=np.float64)
    if not np.allclose(s, s.T, equal_nan=True, rtol=1e-10, atol=1e-12):
        msg = "similarity is not symmetric (the authors' asymmetric score: score_pairs_authors)"
        raise ValueError(msg)
    return [str(x) for x in similarity.index], s


def _batch_scores(
    y: np.ndarray, last: np.ndarray, tail: np.ndarray, n_pos: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AP, best F1 and tail recall of truth rows ``y`` (batch x pairs, ranked by score)."""
    tp = np.cumsum(y, axis=1, dtype=np.int64)[:, last]
    k = (last + 1).astype(np.float64)
    ap = (np.diff(tp, axis=1, prepend=0) * (tp / k)).sum(axis=1) / n_pos
    f1 = (2.0 * tp / (k + n_pos)).max(axis=1)
    rec = (y & tail).sum(axis=1) / n_pos
    return ap, f1, rec


def _tail_mask(values: np.ndarray, tails: tuple[float, float]) -> np.ndarray:
    """Pairs in the lower or upper tail of all pairs' similarities (EFAAR's percentile ranks)."""
    lo, hi = min(tails), max(tails)
    null = np.sort(values)
    left = np.searchsorted(null, values, side="left") / null.size
    right = np.searchsorted(null, values, side="right") / null.size
    return (right <= lo) | (left >= hi)


def score_pairs(
    similarity: pd.DataFrame,
    pairs: pd.DataFrame,
    *,
    n_permutations: int = 1000,
    seed: int = 0,
    genes: Mapping[str, str] | None = None,
    tails: tuple[float, float] = (0.05, 0.95),
) -> dict[str, float]:
    """Score a similarity matrix against known gene pairs, with a label-permutation p-value.

    Parameters
    ----------
    similarity
        Symmetric labels x labels similarity (:func:`similarity_matrix`); only the upper
        triangle is read, each unordered pair of distinct labels once. Pairs with a NaN
        similarity are left out (logged).
    pairs
        Known gene pairs (``entity1``, ``entity2``): :func:`read_gene_pairs`; de-duplicated
        again here, and cut to the labels' genes.
    n_permutations
        Label shuffles for the p-values (``0``: no test, p-values NaN).
    seed
        Seed of the shuffles.
    genes
        Label -> gene; default each label is its own gene.
    tails
        Percentiles (as fractions) bounding the tails of ``recall_tails`` (EFAAR: 5% and 95%).

    Returns
    -------
    Dict with ``average_precision``, ``best_f1``, ``recall_tails``, ``prevalence`` (positive
    share, the AP of a random ranking), ``n_positive``, ``n_pairs``, and the one-sided
    permutation p-values ``p_value`` (of AP), ``p_value_best_f1``, ``p_value_recall_tails``,
    each ``(1 + #{shuffled >= observed}) / (1 + n_permutations)``. Scores are NaN when there
    are no positive or no negative pairs.
    """
    return _score_pairs(
        similarity, pairs, n_permutations=n_permutations, seed=seed, genes=genes, tails=tails
    )


def _score_pairs(
    similarity: pd.DataFrame,
    pairs: pd.DataFrame,
    *,
    n_permutations: int,
    seed: int,
    genes: Mapping[str, str] | None,
    tails: tuple[float, float] = (0.05, 0.95),
    quiet: bool = False,
) -> dict[str, float]:
    """:func:`score_pairs`; ``quiet`` leaves the "nothing to score" warning to the caller."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    if n_permutations < 0:
        msg = f"n_permutations must be >= 0, got {n_permutations}"
        raise ValueError(msg)
    labels, s = _check_square(similarity)
    n = len(labels)
    pos = _positive_matrix(labels, pairs, genes)
    iu, ju = np.triu_indices(n, k=1)
    values = s[iu, ju]
    ok = np.isfinite(values)
    if not ok.all():
        logger.warning("%d of %d pairs have NaN similarity, left out", int((~ok).sum()), ok.size)
        iu, ju, values = iu[ok], ju[ok], values[ok]
    truth = pos[iu, ju]
    n_pairs, n_pos = int(values.size), int(truth.sum())
    out: dict[str, float] = dict.fromkeys([*SCORES, *SCORES.values()], np.nan)
    out.update(prevalence=n_pos / n_pairs if n_pairs else np.nan, n_positive=n_pos, n_pairs=n_pairs)
    if n_pos == 0 or n_pos == n_pairs:
        if not quiet:
            logger.warning("%d positive of %d pairs: nothing to score", n_pos, n_pairs)
        return out
    out["average_precision"] = float(average_precision_score(truth, values))
    precision, recall, _ = precision_recall_curve(truth, values)
    out["best_f1"] = float(_f1(precision, recall).max())
    order = np.argsort(-values, kind="stable")
    ranked = values[order]
    last = np.r_[np.nonzero(np.diff(ranked))[0], ranked.size - 1]
    tail = _tail_mask(values, tails)[order]
    i_r, j_r = iu[order], ju[order]
    obs = _batch_scores(truth[order][None, :], last, tail, n_pos)
    out["recall_tails"] = float(obs[2][0])
    if n_permutations == 0:
        return out
    rng = np.random.default_rng(seed)
    hits = np.zeros(3, dtype=np.int64)
    chunk = max(1, _CHUNK // n_pairs)
    done = 0
    while done < n_permutations:
        b = min(chunk, n_permutations - done)
        perm = rng.permuted(np.tile(np.arange(n), (b, 1)), axis=1)
        y = pos[perm[:, i_r], perm[:, j_r]]
        for h, (got, want) in enumerate(zip(_batch_scores(y, last, tail, n_pos), obs, strict=True)):
            hits[h] += int((got >= want[0] - 1e-12).sum())
        done += b
    p = (1 + hits) / (1 + n_permutations)
    out["p_value"], out["p_value_best_f1"], out["p_value_recall_tails"] = map(float, p)
    return out


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)


def score_pairs_authors(
    embedding: pd.DataFrame, pairs: pd.DataFrame, *, genes: Mapping[str, str] | None = None
) -> dict[str, float]:
    """The PertSpectra authors' precision-recall score, to compare with their published numbers.

    As in the authors' ``auprc`` (``utils.py`` of insitro/PertSpectra): Euclidean distances
    ``D`` of the embedding's rows, min-max scaled per column
    (``(D_ab - min_a D_ab) / (max_a D_ab - min_a D_ab)``, so not symmetric), similarity
    ``1 - scaled``; every ordered pair ``(a, b)`` is a prediction, the diagonal included and
    counted positive, and a known pair positive in both orientations. The area is the
    trapezoid under the precision-recall curve (``sklearn.metrics.auc``), which is not the
    average precision of :func:`score_pairs` and is inflated by the diagonal.

    Parameters
    ----------
    embedding
        Labels x features.
    pairs
        Known gene pairs (``entity1``, ``entity2``).
    genes
        Label -> gene; default each label is its own gene.

    Returns
    -------
    Dict with ``auprc_trapezoid``, ``best_f1``, ``best_f1_threshold``, ``prevalence``,
    ``n_positive`` (ordered positive pairs, diagonal included) and ``n_pairs`` (``n**2``).
    """
    from sklearn.metrics import auc, precision_recall_curve

    x = embedding.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(x)):
        msg = "embedding has NaN or infinite values"
        raise ValueError(msg)
    labels = [str(v) for v in embedding.index]
    n = len(labels)
    if n < 2:
        msg = f"need at least two labels, got {n}"
        raise ValueError(msg)
    d = squareform(pdist(x, metric="euclidean"))
    lo, hi = d.min(axis=0), d.max(axis=0)
    span = hi - lo
    scaled = np.divide(d - lo, span, out=np.zeros_like(d), where=span > 0)
    sim = 1.0 - scaled
    truth = _positive_matrix(labels, pairs, genes) | np.eye(n, dtype=bool)
    precision, recall, thresholds = precision_recall_curve(truth.ravel(), sim.ravel())
    f1 = _f1(precision, recall)
    best = int(np.argmax(f1))
    return {
        "auprc_trapezoid": float(auc(recall, precision)),
        "best_f1": float(f1[best]),
        "best_f1_threshold": float(thresholds[min(best, thresholds.size - 1)]),
        "prevalence": float(truth.mean()),
        "n_positive": int(truth.sum()),
        "n_pairs": n * n,
    }


def benchmark_pairs(
    embeddings: Mapping[str, pd.DataFrame],
    pairs: Mapping[str, pd.DataFrame],
    *,
    metric: Metric = "correlation",
    n_permutations: int = 1000,
    seed: int = 0,
    min_positive: int = 0,
    genes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Score several embeddings against several known-pair files, as one tidy table.

    Parameters
    ----------
    embeddings
        Name -> labels x features (e.g. ``{"P": embedding(model), "data_change": ...}``).
    pairs
        Name (e.g. the file's stem, ``"CORUM"``) -> known gene pairs (:func:`read_gene_pairs`);
        each is cut to the labels of the embedding scored.
    metric
        Similarity metric (:func:`similarity_matrix`).
    n_permutations, seed
        Label shuffles of :func:`score_pairs` (the same seed for every combination).
    min_positive
        Combinations with fewer positive pairs get NaN values and p-values (not tested).
    genes
        Label -> gene; default each label is its own gene.

    Returns
    -------
    Long DataFrame with columns ``pairs_file``, ``embedding``, ``metric``, ``score``
    (``average_precision``, ``best_f1``, ``recall_tails``), ``value``, ``prevalence``,
    ``n_positive`` and ``p_value`` (the permutation p-value of that score), one row per
    pairs file, embedding and score.
    """
    rows = []
    unscorable: dict[str, tuple[int, int]] = {}
    for ename, emb in embeddings.items():
        sim = similarity_matrix(emb, metric=metric)
        for pname, known in pairs.items():
            res = _score_pairs(sim, known, n_permutations=0, seed=seed, genes=genes, quiet=True)
            n_pos, n_pairs = int(res["n_positive"]), int(res["n_pairs"])
            if n_pos == 0 or n_pos == n_pairs:
                unscorable.setdefault(str(pname), (n_pos, n_pairs))
            elif n_pos < min_positive:
                logger.info("%s on %s: too few positive pairs, not scored", ename, pname)
                res = {**res, **dict.fromkeys([*SCORES, *SCORES.values()], np.nan)}
            elif n_permutations > 0:
                res = score_pairs(sim, known, n_permutations=n_permutations, seed=seed, genes=genes)
            for score, pkey in SCORES.items():
                rows.append(
                    {
                        "pairs_file": str(pname),
                        "embedding": str(ename),
                        "metric": metric,
                        "score": score,
                        "value": res[score],
                        "prevalence": res["prevalence"],
                        "n_positive": int(res["n_positive"]),
                        "p_value": res[pkey],
                    }
                )
    for pname, (n_pos, n_pairs) in unscorable.items():
        logger.warning(
            "%s: %d positive of %d pairs among the labels: nothing to score", pname, n_pos, n_pairs
        )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in BENCHMARK_COLUMNS})
    return pd.DataFrame(rows, columns=BENCHMARK_COLUMNS)
