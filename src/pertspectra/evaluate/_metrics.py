r"""Prediction metrics computed per label on mean profiles, and factor matching.

Notation, for one label and the genes :math:`g = 1..G` (the columns of ``observed``):
:math:`p` the predicted mean, :math:`o` the observed mean, :math:`c` the control mean,
:math:`r` the mean of the training perturbations (Systema's reference), :math:`a` the additive
prediction of a combination, :math:`t` the profile the top genes are ranked on (``top_from``,
by default :math:`t = o`). :math:`T_k(v)` is the set of the :math:`k` genes with the largest
:math:`|v_g|` (ties broken by gene order, :math:`k` capped at :math:`G`), :math:`T = T_{20}(t - c)`
and :math:`T' = T_{20}(t - r)` (20 is ``n_top``). Pearson and Spearman are taken across genes;
a constant vector gives NaN.

========================== =================================================================
name                       formula
========================== =================================================================
pearson_delta              Pearson(p - c, o - c) over all genes
pearson_delta_top20        Pearson(p - c, o - c) over :math:`T`
pearson_delta_pert         Pearson(p - r, o - r) over all genes (only with ``r``)
pearson_delta_pert_top20   Pearson(p - r, o - r) over :math:`T'` (only with ``r``)
mse                        mean over all genes of (p - o)²
mse_top20                  mean over :math:`T` of (p - o)²
mae                        mean over all genes of |p - o|
mae_top20                  mean over :math:`T` of |p - o|
direction_top20            share of :math:`g \in T` with sign(p_g - c_g) = sign(o_g - c_g)
de_overlap_20              :math:`|T_{20}(p - c) \cap T_{20}(t - c)| / k`, k = min(20, G)
de_overlap_50              :math:`|T_{50}(p - c) \cap T_{50}(t - c)| / k`, k = min(50, G)
spearman_raw               Spearman(p, o) on the raw means (the paper's metric)
interaction_pearson        Pearson(o - a, p - a) over all genes (only with ``a``)
rank_l1                    #{j ≠ i: |p_i - o_j|₁ < |p_i - o_i|₁} / (n - 1), ties count ½
========================== =================================================================

:func:`prediction_metrics` returns every row of this table but ``rank_l1``, which compares the
labels with each other and is computed over a set of labels by :func:`rank_l1` (0 is best,
about 0.5 when every label gets the same prediction). ``spearman_raw`` is saturated by the gene
baseline (any profile near the average expression scores high); the ``delta`` metrics are not.
Lower is better for the names in :data:`LOWER_IS_BETTER`, higher for the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

METRICS: dict[str, str] = {
    "pearson_delta": "Pearson(p - c, o - c) over all genes",
    "pearson_delta_top20": "Pearson(p - c, o - c) over the top-20 genes by |t - c|",
    "pearson_delta_pert": "Pearson(p - r, o - r) over all genes, r = mean training perturbation",
    "pearson_delta_pert_top20": "Pearson(p - r, o - r) over the top-20 genes by |t - r|",
    "mse": "mean((p - o)^2) over all genes",
    "mse_top20": "mean((p - o)^2) over the top-20 genes by |t - c|",
    "mae": "mean(|p - o|) over all genes",
    "mae_top20": "mean(|p - o|) over the top-20 genes by |t - c|",
    "direction_top20": "share of the top-20 genes by |t - c| with sign(p - c) == sign(o - c)",
    "de_overlap_20": "|top-20 by |p - c| ∩ top-20 by |t - c|| / min(20, n_genes)",
    "de_overlap_50": "|top-50 by |p - c| ∩ top-50 by |t - c|| / min(50, n_genes)",
    "spearman_raw": "Spearman(p, o) on the raw means",
    "interaction_pearson": "Pearson(o - a, p - a) over all genes, a = additive prediction",
    "rank_l1": "#{j != i: |p_i - o_j|_1 < |p_i - o_i|_1} / (n - 1), ties count half",
}
"""Metric name -> one-line formula (``p`` predicted, ``o`` observed, ``c`` control mean,
``t`` the profile the top genes are ranked on, by default ``o``)."""

LOWER_IS_BETTER: frozenset[str] = frozenset({"mse", "mse_top20", "mae", "mae_top20", "rank_l1"})
"""The metrics for which lower is better (higher is better for the others)."""


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN (without warnings) when undefined or given non-finite values."""
    if a.size < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    if a.max() == a.min() or b.max() == b.min():
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    denom = np.sqrt((da @ da) * (db @ db))
    if denom == 0:
        return float("nan")
    return float(np.clip((da @ db) / denom, -1.0, 1.0))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation (Pearson of average ranks), NaN-safe like :func:`_pearson`."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    return _pearson(sps.rankdata(a), sps.rankdata(b))


def _top(v: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``|v|`` (ties by position), largest first."""
    return np.argsort(-np.abs(v), kind="stable")[:k]


def _mean(v: np.ndarray) -> float:
    return float(np.mean(v)) if v.size else float("nan")


def _overlap(pred_change: np.ndarray, ref_change: np.ndarray, k: int) -> float:
    k = min(k, pred_change.size)
    if k == 0:
        return float("nan")
    both = np.intersect1d(_top(pred_change, k), _top(ref_change, k))
    return both.size / k


def _rows(frame: pd.DataFrame, labels: pd.Index, genes: pd.Index, what: str) -> np.ndarray:
    """``frame`` restricted to ``labels`` x ``genes``, with a KeyError naming what is missing."""
    missing = labels.difference(frame.index)
    if len(missing):
        msg = f"{what} has no row for labels {list(missing[:5])}"
        raise KeyError(msg)
    return _columns(frame.loc[labels], genes, what)


def _columns(frame: pd.DataFrame, genes: pd.Index, what: str) -> np.ndarray:
    missing = genes.difference(frame.columns)
    if len(missing):
        msg = f"{what} lacks genes {list(missing[:5])}"
        raise KeyError(msg)
    return frame.loc[:, genes].to_numpy(float)


def _profile(series: pd.Series, genes: pd.Index, what: str) -> np.ndarray:
    missing = genes.difference(series.index)
    if len(missing):
        msg = f"{what} lacks genes {list(missing[:5])}"
        raise KeyError(msg)
    return series.loc[genes].to_numpy(float)


def prediction_metrics(
    predicted: pd.DataFrame,
    observed: pd.DataFrame,
    control: pd.Series,
    *,
    perturbation_mean: pd.Series | None = None,
    additive: pd.DataFrame | None = None,
    top_from: pd.DataFrame | None = None,
    n_top: int = 20,
) -> pd.DataFrame:
    """Per-label metrics of predicted vs observed mean profiles (formulas: module docstring).

    Parameters
    ----------
    predicted
        Predicted means (labels x genes); must hold every label and gene of ``observed``.
    observed
        Observed means of held-out cells (labels x genes); its labels and genes are scored.
    control
        Observed control mean (genes), ``c``.
    perturbation_mean
        Mean of the training perturbations (genes), ``r``: adds ``pearson_delta_pert`` and
        ``pearson_delta_pert_top20`` (the change measured against the average perturbation,
        as in Systema, instead of against control).
    additive
        Additive prediction of each label (labels x genes), ``a``, for combinations: adds
        ``interaction_pearson``.
    top_from
        Profiles (labels x genes, like ``observed``) the top differentially expressed genes are
        ranked on, for every ``*_top20`` metric, ``direction_top20`` and the observed side of
        ``de_overlap_*``. Defaults to ``observed``. The noise ceiling scores one half-split of
        the cells against the other and passes the full observed profile here, so that it is
        scored on the same genes as the predictions.
    n_top
        Number of top genes of the ``*_top20`` metrics and ``direction_top20`` (the names stay
        the same for another value); ``de_overlap_20`` and ``de_overlap_50`` always use 20 and
        50. Capped at the number of genes.

    Returns
    -------
    DataFrame indexed by the labels of ``observed``, with the columns ``pearson_delta``,
    ``pearson_delta_top20``, [``pearson_delta_pert``, ``pearson_delta_pert_top20``], ``mse``,
    ``mse_top20``, ``mae``, ``mae_top20``, ``direction_top20``, ``de_overlap_20``,
    ``de_overlap_50``, ``spearman_raw``, [``interaction_pearson``] in this order (bracketed
    columns only with ``perturbation_mean`` / ``additive``). ``rank_l1`` is :func:`rank_l1`.

    Raises
    ------
    KeyError
        A label or gene of ``observed`` missing from ``predicted`` (or from ``additive``,
        ``top_from``, ``control``, ``perturbation_mean``).
    ValueError
        ``n_top`` below 1.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> genes = list("abcd")
    >>> obs = pd.DataFrame([[1.0, 2.0, 0.0, 3.0]], index=["x"], columns=genes)
    >>> ctrl = pd.Series(0.0, index=genes)
    >>> m = prediction_metrics(2 * obs, obs, ctrl)
    >>> float(m.loc["x", "pearson_delta"]), float(m.loc["x", "mse"])
    (1.0, 3.5)
    """
    if n_top < 1:
        msg = f"n_top must be at least 1, got {n_top}"
        raise ValueError(msg)
    labels, genes = observed.index, observed.columns
    pred = _rows(predicted, labels, genes, "predicted")
    obs = observed.to_numpy(float)
    ctrl = _profile(control, genes, "control")
    ref = (
        None
        if perturbation_mean is None
        else _profile(perturbation_mean, genes, "perturbation_mean")
    )
    add = None if additive is None else _rows(additive, labels, genes, "additive")
    tops = obs if top_from is None else _rows(top_from, labels, genes, "top_from")
    k = min(n_top, len(genes))

    columns = ["pearson_delta", "pearson_delta_top20"]
    if ref is not None:
        columns += ["pearson_delta_pert", "pearson_delta_pert_top20"]
    columns += ["mse", "mse_top20", "mae", "mae_top20", "direction_top20"]
    columns += ["de_overlap_20", "de_overlap_50", "spearman_raw"]
    if add is not None:
        columns.append("interaction_pearson")

    rows = []
    for i in range(len(labels)):
        p, o, t = pred[i], obs[i], tops[i]
        dp, do = p - ctrl, o - ctrl
        top = _top(t - ctrl, k)
        row = {
            "pearson_delta": _pearson(dp, do),
            "pearson_delta_top20": _pearson(dp[top], do[top]),
        }
        if ref is not None:
            top_r = _top(t - ref, k)
            rp, ro = p - ref, o - ref
            row["pearson_delta_pert"] = _pearson(rp, ro)
            row["pearson_delta_pert_top20"] = _pearson(rp[top_r], ro[top_r])
        err = p - o
        row |= {
            "mse": _mean(err**2),
            "mse_top20": _mean(err[top] ** 2),
            "mae": _mean(np.abs(err)),
            "mae_top20": _mean(np.abs(err[top])),
            "direction_top20": _mean(np.sign(dp[top]) == np.sign(do[top])),
            "de_overlap_20": _overlap(dp, t - ctrl, 20),
            "de_overlap_50": _overlap(dp, t - ctrl, 50),
            "spearman_raw": _spearman(p, o),
        }
        if add is not None:
            row["interaction_pearson"] = _pearson(o - add[i], p - add[i])
        rows.append(row)
    return pd.DataFrame(rows, index=labels, columns=columns, dtype=float)


def rank_l1(predicted: pd.DataFrame, observed: pd.DataFrame) -> pd.Series:
    """Rank of each label's own observed profile among all, by L1 distance to its prediction.

    For label ``i`` of ``n``: the share of the other labels ``j`` whose observed profile is
    closer (L1, over the genes of ``observed``) to the prediction ``p_i`` than ``o_i`` is,
    ``#{j != i: |p_i - o_j|_1 < |p_i - o_i|_1} / (n - 1)``, ties counting one half. 0 is best;
    a prediction that collapses to one profile for every label averages 0.5. Pass all held-out
    labels of a regime (across folds) at once.

    Parameters
    ----------
    predicted
        Predicted means (labels x genes); must hold every label and gene of ``observed``.
    observed
        Observed means (labels x genes).

    Returns
    -------
    Series indexed by the labels of ``observed``, named ``"rank_l1"``; NaN with fewer than 2
    labels, or for a label whose distances are not finite.

    Raises
    ------
    KeyError
        A label or gene of ``observed`` missing from ``predicted``.
    """
    from scipy.spatial.distance import cdist

    labels, genes = observed.index, observed.columns
    pred = _rows(predicted, labels, genes, "predicted")
    obs = observed.to_numpy(float)
    n = len(labels)
    if n < 2:
        return pd.Series(np.nan, index=labels, name="rank_l1", dtype=float)
    dist = cdist(pred, obs, metric="cityblock")  # dist[i, j] = |p_i - o_j|_1
    own = np.diag(dist)[:, None]
    closer = (dist < own).sum(axis=1)
    ties = (dist == own).sum(axis=1) - 1  # minus j == i itself
    out = (closer + 0.5 * ties) / (n - 1)
    out[~np.isfinite(dist).all(axis=1)] = np.nan
    return pd.Series(out, index=labels, name="rank_l1", dtype=float)


def matched_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Correlations of the best one-to-one matching of the rows of ``a`` and ``b``.

    Compares two sets of factors (e.g. ``W`` of two fits, or a fit and the simulated truth):
    rows are matched by maximizing the summed Pearson correlation across columns (Hungarian
    algorithm); rows with zero variance count as correlation 0.

    Parameters
    ----------
    a, b
        Factors x features arrays with the same number of columns.

    Returns
    -------
    The matched correlations, one per matched pair (``min(len(a), len(b))`` values), in the
    order of ``a``'s rows.
    """
    from scipy.optimize import linear_sum_assignment

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        msg = f"need two 2-d arrays with the same number of columns, got {a.shape} and {b.shape}"
        raise ValueError(msg)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(a, b)[: a.shape[0], a.shape[0] :]
    corr = np.nan_to_num(corr)
    rows, cols = linear_sum_assignment(-corr)
    return corr[rows, cols]
